"""SM2 (GB/T 32918): signatures, key agreement and sealing to a public key, for the ``sm`` profile.

Two independent implementations, measured on this machine (docs/crypto-profile.md):

- ``tongsuopy`` (Tongsuo, the OpenSSL fork of the Ant group, through cffi) signs and verifies:
  about 1 400 signatures and 1 700 verifications per second — the one used;
- ``snowland-smx`` (``pysmx``, pure Python): about 90 / 70 per second. It is the second opinion
  the tests cross-check signatures against, the deterministic-``k`` signer that reproduces the
  standard's example signature, and the point multiplication of key agreement (Tongsuo's
  ``EVP_PKEY_derive`` refuses SM2 keys: "operation not supported for this keytype").

Signatures follow GM/T 0003.2: ``e = SM3(Z_A ‖ M)`` with the default distinguishing identifier
``1234567812345678``; on the wire ``r ‖ s`` (64 bytes). Public keys are 65-byte uncompressed points
``04 ‖ x ‖ y``. :func:`sm2_seal` is SM2 public-key encryption's key encapsulation (an ephemeral
``C1 = kG``, ``KDF(x2 ‖ y2)`` of GM/T 0003.4) with SM4-GCM as the data encapsulation."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cached_property

from chain.errors import TdsError
from chain.sm import GCM_NONCE_BYTES, SM4_KEY_BYTES, InvalidTag, sm3, sm4_gcm_open, sm4_gcm_seal

DEFAULT_ID = b"1234567812345678"
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
PUBLIC_BYTES, SIGNATURE_BYTES = 65, 64


class Sm2Error(TdsError, ValueError):
    """An SM2 key, point or signature that is malformed; names what was wrong."""


class Sm2SealError(Sm2Error):
    """A sealed box did not open: not sealed to this key, or altered."""


def _point(public: bytes) -> tuple[int, int]:
    """(x, y) of an uncompressed point, checked to lie on the SM2 curve (no invalid-curve points)."""
    if len(public) != PUBLIC_BYTES or public[0] != 4:
        raise Sm2Error(f"an SM2 public key is 65 bytes 04‖x‖y, not {len(public)} bytes")
    x, y = int.from_bytes(public[1:33], "big"), int.from_bytes(public[33:], "big")
    if not (x < P and y < P and (y * y - x * x * x - A * x - B) % P == 0):
        raise Sm2Error("the SM2 public key is not a point on the curve")
    return x, y


@dataclass(frozen=True)
class Sm2PrivateKey:
    """A 32-byte SM2 secret scalar ``d`` (1 ≤ d ≤ n − 2)."""

    secret: bytes

    def __post_init__(self) -> None:
        d = int.from_bytes(self.secret, "big")
        if len(self.secret) != 32 or not 1 <= d <= N - 2:
            raise Sm2Error("an SM2 private key is a 32-byte scalar in [1, n-2]")

    @classmethod
    def generate(cls) -> "Sm2PrivateKey":
        """A fresh key from the operating system's randomness."""
        return cls((secrets.randbelow(N - 2) + 1).to_bytes(32, "big"))

    @cached_property
    def _tongsuo(self):  # type: ignore[no-untyped-def]
        from tongsuopy.crypto.asymciphers import ec
        return ec.derive_private_key(int.from_bytes(self.secret, "big"), ec.SM2())

    @cached_property
    def public(self) -> bytes:
        """The 65-byte uncompressed public point ``04 ‖ x ‖ y``."""
        from tongsuopy.crypto import serialization as ser
        return self._tongsuo.public_key().public_bytes(ser.Encoding.X962, ser.PublicFormat.UncompressedPoint)

    def sign(self, message: bytes) -> bytes:
        """SM2 signature ``r ‖ s`` over ``SM3(Z_A ‖ message)`` (default identifier)."""
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        from tongsuopy.crypto import hashes
        from tongsuopy.crypto.asymciphers import ec
        r, s = decode_dss_signature(self._tongsuo.sign(message, ec.ECDSA(hashes.SM3())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sm2_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` (``r ‖ s``) is ``public``'s SM2 signature of ``message``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from tongsuopy.crypto import hashes
    from tongsuopy.crypto.asymciphers import ec
    from tongsuopy.crypto.exceptions import InvalidSignature as TongsuoInvalid
    _point(public)
    if len(signature) != SIGNATURE_BYTES:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (1 <= r < N and 1 <= s < N):
        return False
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), bytes(public))
    try:
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SM3()))
    except (InvalidSignature, TongsuoInvalid):
        return False
    return True


# --- the second implementation (snowland-smx) --------------------------------------------------
def reference_sign(secret: bytes, message: bytes, k: bytes) -> bytes:
    """``snowland-smx``'s SM2 signature with a chosen ``k`` (the standard's example fixes one)."""
    from pysmx.SM2._SM2 import Sign
    sig = Sign(message, secret, k.hex(), 64, uid=DEFAULT_ID)
    if sig is None:
        raise Sm2Error("this k gives r = 0 or r + k = n; choose another")
    return sig


def reference_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """``snowland-smx``'s SM2 verification (default identifier)."""
    from pysmx.SM2._SM2 import Verify
    _point(public)
    return bool(Verify(signature, message, public[1:], 64, uid=DEFAULT_ID))


def reference_public(secret: bytes) -> bytes:
    """``snowland-smx``'s ``d·G`` as 04‖x‖y."""
    from pysmx.SM2._SM2 import kG, sm2_G
    return b"\x04" + bytes.fromhex(kG(int.from_bytes(secret, "big"), sm2_G, 64))


# --- key agreement and sealing ----------------------------------------------------------------
def sm2_kdf(z: bytes, length: int) -> bytes:
    """The GM/T 0003 key derivation: ``SM3(Z ‖ ct)`` for ct = 1, 2, … (32-bit big endian)."""
    out = b"".join(sm3(z + ct.to_bytes(4, "big")) for ct in range(1, (length + 31) // 32 + 1))
    return out[:length]


def sm2_shared_point(secret: bytes, peer_public: bytes) -> bytes:
    """``x2 ‖ y2`` of ``d·P`` (ECDH on the SM2 curve; the peer point is checked first)."""
    from pysmx.SM2._SM2 import kG
    _point(peer_public)
    d = int.from_bytes(secret, "big")
    out = bytes.fromhex(kG(d, peer_public[1:].hex(), 64))
    if not any(out):
        raise Sm2Error("key agreement gave the point at infinity")
    return out


def sm2_seal(peer_public: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Seal ``plaintext`` to ``peer_public``: ``C1 (65) ‖ SM4-GCM(KDF(x2‖y2), …)``.

    The ephemeral ``C1`` is bound in as associated data, so a box cannot be re-wrapped."""
    eph = Sm2PrivateKey.generate()
    c1 = eph.public
    okm = sm2_kdf(sm2_shared_point(eph.secret, peer_public), SM4_KEY_BYTES + GCM_NONCE_BYTES)
    return c1 + sm4_gcm_seal(okm[:SM4_KEY_BYTES], okm[SM4_KEY_BYTES:], plaintext, c1 + aad)


def sm2_open(key: Sm2PrivateKey, sealed: bytes, aad: bytes = b"") -> bytes:
    """Open an :func:`sm2_seal` box with the recipient's key; :class:`Sm2SealError` otherwise."""
    c1 = bytes(sealed[:PUBLIC_BYTES])
    try:
        okm = sm2_kdf(sm2_shared_point(key.secret, c1), SM4_KEY_BYTES + GCM_NONCE_BYTES)
        return sm4_gcm_open(okm[:SM4_KEY_BYTES], okm[SM4_KEY_BYTES:], sealed[PUBLIC_BYTES:], c1 + aad)
    except (InvalidTag, Sm2Error):
        raise Sm2SealError("the SM2 sealed box does not open under this key (other recipient, "
                           "or altered)") from None
