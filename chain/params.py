"""Job parameters: the consumer's query, stored content-addressed, committed on chain by hash.

``paramsHash`` (on chain) = sha-256 of the canonical query JSON. Stored as a single raw block,
its CIDv1 is ``raw`` + sha2-256 of exactly those bytes, so the oracle derives the CID from the
hash on chain alone and the store cannot substitute other parameters. Sealed blocks follow the
cryptography profile (below and docs/crypto-profile.md).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from chain.cid import Cid
from chain.crypto_profile import DEFAULT, SM, CryptoProfileError, configured_profile, get_profile
from chain.crypto_profile import CryptoProfileMismatch as ProfileMismatch

RAW_CODEC = 0x55
MAX_PARAMS = 256 * 1024  # one raw block


class ParamsError(ValueError):
    """Parameters that are missing, oversized, not JSON or not matching the hash on chain."""


def canonical_params(query: dict[str, Any]) -> bytes:
    data = json.dumps(query, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > MAX_PARAMS:
        raise ParamsError(f"job parameters are {len(data)} bytes; the limit is {MAX_PARAMS}")
    return data


def params_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def params_cid(digest: bytes) -> str:
    """The CIDv1 (raw, sha2-256) of a parameter block with sha-256 ``digest``."""
    return Cid(version=1, codec=RAW_CODEC, digest=digest).encode()


def parse_params(data: bytes, expected: bytes) -> dict[str, Any]:
    """Check ``data`` against the on-chain hash and decode it."""
    if params_hash(data) != expected:
        raise ParamsError("job parameters do not match paramsHash on chain")
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ParamsError(f"job parameters are not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ParamsError("job parameters must be a JSON object")
    return obj


# --- sealed parameters ---------------------------------------------------------------------
# The consumer seals the query to the key-agreement keys (on chain, IdentityRegistry) of the
# parties that must read it — the provider's key service — so the shared content store holds
# ciphertext only; the oracle gets tokens from the key service, never the constants. A random
# content key and a 32-byte salt inside make the hash on chain unguessable even for a query
# drawn from a small set.
#
# Profiles (docs/crypto-profile.md): under ``default`` the content key is wrapped with X25519 +
# HKDF-SHA256 + AES-256-GCM and the block has no "profile" member (its bytes are those of every
# block made before profiles existed); under ``sm`` the block says ``"profile": "sm"``, the body is
# SM4-GCM and the content key is sealed to each recipient's SM2 key-agreement point (the chain's
# 32-byte ``x``, even ``y``) with :func:`chain.sm2.sm2_seal` (SM2 key agreement, GM/T 0003 SM3 KDF,
# SM4-GCM). A block is opened only with a key of its own profile, under that profile.
PARAMS_FORMAT = "tds-params/1"
_PARAMS_INFO = b"tds/job-params/v1"


class CryptoProfileMismatch(ProfileMismatch, ParamsError):
    """A parameter block of one profile met a key (or a ``TDS_CRYPTO_PROFILE``) of the other: a
    :class:`chain.crypto_profile.CryptoProfileMismatch` (same name, as :mod:`did.errors` does) and a
    :class:`ParamsError`, so a key service refuses the job's parameters rather than failing."""


def _wrap_key(shared: bytes, epk: bytes, rpk: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + rpk, info=_PARAMS_INFO).derive(shared)


def seal_params(query: dict[str, Any], recipients: list[bytes], profile: str | None = None) -> bytes:
    """The parameter block of a job: ``query`` (salted) encrypted to every recipient's 32-byte
    on-chain key-agreement key — under ``default`` a raw X25519 key (X25519 + HKDF-SHA256 wrapping
    one AES-256-GCM content key), under ``sm`` the ``x`` of an even-``y`` SM2 point (SM2 + SM3 KDF
    + SM4-GCM). ``profile`` defaults to the one in force. Its sha-256 is the ``paramsHash`` the
    consumer commits on chain."""
    if not recipients:
        raise ParamsError("job parameters need at least one recipient key (the provider's key-agreement key)")
    name = configured_profile().name if profile is None else get_profile(profile).name
    if name == SM:
        return _seal_sm(query, recipients)
    import os

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    plain = canonical_params({"query": query, "salt": os.urandom(32).hex()})
    cek, nonce = AESGCM.generate_key(256), os.urandom(12)
    wrapped = []
    for rpk in recipients:
        if len(rpk) != 32:
            raise ParamsError(f"a recipient key must be a raw 32-byte X25519 key, got {len(rpk)} bytes")
        eph = X25519PrivateKey.generate()
        epk = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        key = _wrap_key(eph.exchange(X25519PublicKey.from_public_bytes(rpk)), epk, rpk)
        wnonce = os.urandom(12)
        wrapped.append({"key": rpk.hex(), "epk": epk.hex(), "nonce": wnonce.hex(),
                        "wrapped": AESGCM(key).encrypt(wnonce, cek, rpk).hex()})
    body = AESGCM(cek).encrypt(nonce, plain, PARAMS_FORMAT.encode())
    doc = {"format": PARAMS_FORMAT, "recipients": wrapped, "nonce": nonce.hex(), "ciphertext": body.hex()}
    return canonical_params(doc)


def _sm_aad(part: bytes = b"") -> bytes:
    return PARAMS_FORMAT.encode() + b"|" + SM.encode() + part


def _even_y_point(x: bytes) -> bytes:
    """``04 ‖ x ‖ y`` of the SM2 point with ``x`` and an even ``y`` (the on-chain convention of
    :func:`did.sm2_identity.agreement_point`; the chain layer cannot import ``did``)."""
    from chain.sm2 import A, B, P
    xi = int.from_bytes(x, "big")
    rhs = (xi * xi * xi + A * xi + B) % P
    y = pow(rhs, (P + 1) // 4, P)
    if xi >= P or y * y % P != rhs:
        raise ParamsError("a recipient key is not the x coordinate of an SM2 key-agreement point")
    y = y if y % 2 == 0 else P - y
    return b"\x04" + x + y.to_bytes(32, "big")


def _seal_sm(query: dict[str, Any], recipients: list[bytes]) -> bytes:
    import os

    from chain.sm import GCM_NONCE_BYTES, SM4_KEY_BYTES, sm4_gcm_seal
    from chain.sm2 import sm2_seal

    plain = canonical_params({"query": query, "salt": os.urandom(32).hex()})
    cek, nonce = os.urandom(SM4_KEY_BYTES), os.urandom(GCM_NONCE_BYTES)
    wrapped = []
    for rpk in recipients:
        if len(rpk) != 32:
            raise ParamsError(f"a recipient key must be the 32-byte x of an SM2 key-agreement key, got {len(rpk)} bytes")
        wrapped.append({"key": bytes(rpk).hex(), "sealed": sm2_seal(_even_y_point(bytes(rpk)), cek, _sm_aad(rpk)).hex()})
    body = sm4_gcm_seal(cek, nonce, plain, _sm_aad())
    doc = {"format": PARAMS_FORMAT, "profile": SM, "recipients": wrapped, "nonce": nonce.hex(),
           "ciphertext": body.hex()}
    return canonical_params(doc)


def is_sealed(params: dict[str, Any]) -> bool:
    """True for a parsed parameter block in the sealed format."""
    return params.get("format") == PARAMS_FORMAT


def params_profile(params: dict[str, Any]) -> str:
    """The profile a sealed block records (no ``"profile"`` member: ``default``)."""
    try:
        return get_profile(params.get("profile")).name
    except CryptoProfileError as exc:
        raise ParamsError(f"sealed job parameters name {exc}") from None


def params_key(identity: Any) -> Any:
    """The private key that opens parameter blocks sealed to ``identity``'s on-chain key: its
    X25519 key (``default``) or its SM2 key-agreement key (``sm``, an
    :class:`~did.sm2_identity.Sm2Participant`)."""
    return identity.agreement if getattr(identity, "profile", DEFAULT) == SM else identity.x25519


def _key_profile(private_key: Any) -> str:
    from chain.sm2 import Sm2PrivateKey
    return SM if isinstance(private_key, Sm2PrivateKey) else DEFAULT


def open_params(params: dict[str, Any], private_key: Any) -> dict[str, Any]:
    """The query inside a sealed parameter block, for the holder of ``private_key`` (an
    X25519PrivateKey, or an SM2 :class:`~chain.sm2.Sm2PrivateKey` for an ``sm`` block). Raises
    :class:`ParamsError` if it is not sealed to that key, :class:`CryptoProfileMismatch` (a
    ``CryptoProfileMismatch``) if the block's profile is not the key's or the one in force."""
    if not is_sealed(params):
        raise ParamsError("job parameters are not sealed (plaintext in a shared store is refused)")
    found, mine = params_profile(params), _key_profile(private_key)
    if found != mine:
        raise CryptoProfileMismatch(mine, found, f"sealed job parameter block (opened with a {mine} key-agreement key)")
    in_force = configured_profile().name
    if found != in_force:
        raise CryptoProfileMismatch(in_force, found, "sealed job parameter block")
    if found == SM:
        return _open_sm(params, private_key)
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    mine_pk = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        entry = next((r for r in params["recipients"] if bytes.fromhex(r["key"]) == mine_pk), None)
        if entry is None:
            raise ParamsError("job parameters are not sealed to this key service's key-agreement key")
        epk = bytes.fromhex(entry["epk"])
        key = _wrap_key(private_key.exchange(X25519PublicKey.from_public_bytes(epk)), epk, mine_pk)
        cek = AESGCM(key).decrypt(bytes.fromhex(entry["nonce"]), bytes.fromhex(entry["wrapped"]), mine_pk)
        plain = AESGCM(cek).decrypt(bytes.fromhex(params["nonce"]), bytes.fromhex(params["ciphertext"]),
                                    PARAMS_FORMAT.encode())
        inner = json.loads(plain)
        return dict(inner["query"])
    except InvalidTag:
        raise ParamsError("job parameters do not decrypt with this key (tampered, or sealed to another key)") from None
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ParamsError):
            raise
        raise ParamsError(f"sealed job parameters are malformed: {exc}") from None


def _open_sm(params: dict[str, Any], private_key: Any) -> dict[str, Any]:
    from chain.sm import InvalidTag, sm4_gcm_open
    from chain.sm2 import Sm2SealError, sm2_open

    mine = private_key.public[1:33]
    if private_key.public[-1] & 1:
        raise ParamsError("this SM2 key-agreement key has an odd y; on-chain keys are made with an even y")
    try:
        entry = next((r for r in params["recipients"] if bytes.fromhex(r["key"]) == mine), None)
        if entry is None:
            raise ParamsError("job parameters are not sealed to this key service's key-agreement key")
        cek = sm2_open(private_key, bytes.fromhex(entry["sealed"]), _sm_aad(mine))
        plain = sm4_gcm_open(cek, bytes.fromhex(params["nonce"]), bytes.fromhex(params["ciphertext"]), _sm_aad())
        return dict(json.loads(plain)["query"])
    except (InvalidTag, Sm2SealError):
        raise ParamsError("job parameters do not decrypt with this key (tampered, or sealed to another key)") from None
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ParamsError):
            raise
        raise ParamsError(f"sealed job parameters are malformed: {exc}") from None
