"""SM2 identities for the ``sm`` cryptography profile: did:key DIDs over SM2 public keys, DID
signatures that verify under either key type, and sealed envelopes with SM2 throughout.

- DID: ``did:key:z…`` = base58btc of the multicodec ``sm2-pub`` (0x1206, varint ``86 24``) and the
  33-byte compressed point — resolvable offline like the Ed25519 ones (:func:`sm2_from_did`);
- signatures: SM2 with SM3 and the default identifier (:mod:`chain.sm2`), ``r ‖ s``;
- envelopes (:func:`seal_sm2`, :func:`open_sm2`): an ephemeral SM2 key agreed with the
  recipient's SM2 key-agreement key, ``KDF_SM3(x2 ‖ y2 ‖ domain ‖ from, to, purpose ‖ epk ‖ rpk)``
  → an SM4-GCM key, the canonical header as associated data, the sender's SM2 DID key signing
  ``"tds-envelope/v1" ‖ header ‖ ciphertext`` — the :class:`~did.envelope.Envelope` format with
  ``alg`` = :data:`SM2_ALG`. :func:`did.envelope.open_envelope` refuses such an envelope by
  profile name, and this module refuses a default one.

A participant's SM2 identity (files, DID document, on-chain key) is :mod:`did.sm2_identity`; the
SM2 proofs of its binding, credentials and presentations are :mod:`did.binding` and
:mod:`did.sm2_jws` (didkit signs Ed25519 only), chosen by profile in :mod:`did.proofs`."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from chain.cid import b58decode, b58encode
from chain.crypto_profile import CryptoProfileMismatch
from chain.sm import InvalidTag, sm4_gcm_open, sm4_gcm_seal
from chain.sm2 import P, Sm2Error, Sm2PrivateKey, sm2_kdf, sm2_shared_point, sm2_verify
from did.document import canonical_json
from did.envelope import ALG, DOMAIN, SM2_ALG, VERSION, Envelope, check_header
from did.errors import EnvelopeAuthError, UnknownDid
from did.keys import ED25519_CODEC, b64u, verify_ed25519

SM2_CODEC = b"\x86\x24"                 # multicodec sm2-pub = 0x1206 as an unsigned varint
__all__ = ["SM2_ALG", "SM2_CODEC", "Sm2Identity", "compress", "decompress", "did_from_sm2", "sm2_from_did",
           "verify_did_signature", "seal_sm2", "open_sm2"]


def compress(public: bytes) -> bytes:
    """The 33-byte compressed form ``02|03 ‖ x`` of a 65-byte ``04 ‖ x ‖ y`` point."""
    if len(public) != 65 or public[0] != 4:
        raise Sm2Error("an SM2 public key is 65 bytes 04‖x‖y")
    return bytes([2 | (public[-1] & 1)]) + public[1:33]


def decompress(point: bytes) -> bytes:
    """``04 ‖ x ‖ y`` of a compressed SM2 point (p ≡ 3 mod 4: y = (x³ + ax + b)^((p+1)/4))."""
    from chain.sm2 import A, B
    if len(point) != 33 or point[0] not in (2, 3):
        raise Sm2Error("a compressed SM2 point is 33 bytes starting 02 or 03")
    x = int.from_bytes(point[1:], "big")
    rhs = (x * x * x + A * x + B) % P
    y = pow(rhs, (P + 1) // 4, P)
    if y * y % P != rhs or x >= P:
        raise Sm2Error("not the x coordinate of a point on the SM2 curve")
    if y & 1 != point[0] & 1:
        y = P - y
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def did_from_sm2(public: bytes) -> str:
    """The did:key of an SM2 public key (multicodec ``sm2-pub``, compressed point)."""
    return "did:key:z" + b58encode(SM2_CODEC + compress(public))


def sm2_from_did(did: str) -> bytes:
    """The SM2 public key (65 bytes) an SM2 did:key names; :class:`UnknownDid` otherwise."""
    if not isinstance(did, str) or not did.startswith("did:key:z"):
        raise UnknownDid(f"{did!r} is not a did:key DID")
    try:
        decoded = b58decode(did[len("did:key:z"):].split("#", 1)[0])
    except ValueError as exc:
        raise UnknownDid(f"{did!r} is not valid base58btc: {exc}") from None
    if decoded[:2] != SM2_CODEC or len(decoded) != 35:
        raise UnknownDid(f"{did!r} is not an SM2 did:key (wrong multicodec or length)")
    try:
        return decompress(decoded[2:])
    except Sm2Error as exc:
        raise UnknownDid(f"{did!r}: {exc}") from None


def verify_did_signature(did: str, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` over ``message`` verifies under ``did``'s key, Ed25519 or SM2."""
    try:
        decoded = b58decode(did[len("did:key:z"):].split("#", 1)[0]) if did.startswith("did:key:z") else b""
    except ValueError:
        decoded = b""
    if decoded[:2] == ED25519_CODEC:
        return verify_ed25519(did, signature, message)
    return sm2_verify(sm2_from_did(did), message, signature)


@dataclass
class Sm2Identity:
    """An SM2 signing (DID) key and an SM2 key-agreement key (kept apart, as Ed25519 / X25519 are)."""

    name: str
    signing: Sm2PrivateKey = field(default_factory=Sm2PrivateKey.generate)
    agreement: Sm2PrivateKey = field(default_factory=Sm2PrivateKey.generate)

    @property
    def did(self) -> str:
        return did_from_sm2(self.signing.public)

    @property
    def agreement_public(self) -> bytes:
        return self.agreement.public


def _key(shared: bytes, epk: bytes, rpk: bytes, header: dict[str, Any]) -> bytes:
    info = DOMAIN + canonical_json({"from": header["from"], "to": header["to"], "purpose": header["purpose"]})
    return sm2_kdf(shared + info + epk + rpk, 16)


def _signed_bytes(header: dict[str, Any], ciphertext: bytes) -> bytes:
    return DOMAIN + canonical_json(header) + ciphertext


def seal_sm2(sender: Sm2Identity, recipient_did: str, recipient_key: bytes, plaintext: bytes,
             purpose: str) -> Envelope:
    """Encrypt ``plaintext`` so only ``recipient_did`` (holder of the SM2 ``recipient_key``) opens it."""
    sm2_from_did(recipient_did)                       # an SM2 DID, or UnknownDid
    eph = Sm2PrivateKey.generate()
    epk, rpk, nonce = eph.public, bytes(recipient_key), os.urandom(12)
    header = {"v": VERSION, "alg": SM2_ALG, "from": sender.did, "to": recipient_did, "purpose": str(purpose),
              "epk": b64u(epk), "rpk": b64u(rpk), "nonce": b64u(nonce), "created": int(time.time())}
    key = _key(sm2_shared_point(eph.secret, rpk), epk, rpk, header)
    ct = sm4_gcm_seal(key, nonce, bytes(plaintext), canonical_json(header))
    return Envelope(header, ct, sender.signing.sign(_signed_bytes(header, ct)))


def open_sm2(recipient: Sm2Identity, envelope: Envelope | bytes, *, expected_sender: str | None = None,
             purpose: str | None = None) -> bytes:
    """Check and decrypt an SM2 envelope addressed to ``recipient``; return the plaintext."""
    env = Envelope.from_bytes(envelope) if isinstance(envelope, (bytes, bytearray)) else envelope
    h = env.header
    if h["alg"] != SM2_ALG:
        raise CryptoProfileMismatch("sm", "default" if h["alg"] == ALG else str(h["alg"]), "sealed envelope")
    rpk, epk, nonce = check_header(h, recipient.did, recipient.agreement_public, recipient.name, expected_sender,
                                   purpose)
    try:
        ok = sm2_verify(sm2_from_did(h["from"]), _signed_bytes(h, env.ciphertext), env.signature)
    except (UnknownDid, Sm2Error) as exc:
        raise EnvelopeAuthError(f"envelope sender is not an SM2 DID: {exc}") from None
    if not ok:
        raise EnvelopeAuthError(f"envelope SM2 signature of {h['from']} does not verify (altered in transit?)")
    try:
        key = _key(sm2_shared_point(recipient.agreement.secret, epk), epk, rpk, h)
        return sm4_gcm_open(key, nonce, env.ciphertext, canonical_json(h))
    except (InvalidTag, Sm2Error):
        raise EnvelopeAuthError("envelope ciphertext does not decrypt (altered, or sealed with another key)") from None
