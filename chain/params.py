"""Job parameters: the consumer's query, stored content-addressed, committed on chain by hash.

``paramsHash`` (on chain) = sha-256 of the canonical query JSON. Stored as a single raw block,
its CIDv1 is ``raw`` + sha2-256 of exactly those bytes, so the oracle derives the CID from the
hash on chain alone and the store cannot substitute other parameters.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from chain.cid import Cid

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
# The consumer seals the query to the X25519 key-agreement keys (on chain, IdentityRegistry) of
# the parties that must read it — the provider's key service — so the shared content store holds
# ciphertext only; the oracle gets tokens from the key service, never the constants. A random
# content key and a 32-byte salt inside make the hash on chain unguessable even for a query
# drawn from a small set.
PARAMS_FORMAT = "tds-params/1"
_PARAMS_INFO = b"tds/job-params/v1"


def _wrap_key(shared: bytes, epk: bytes, rpk: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + rpk, info=_PARAMS_INFO).derive(shared)


def seal_params(query: dict[str, Any], recipients: list[bytes]) -> bytes:
    """The parameter block of a job: ``query`` (salted) encrypted to every recipient's raw X25519
    public key (X25519 + HKDF-SHA256 wrapping one AES-256-GCM content key). Its sha-256 is the
    ``paramsHash`` the consumer commits on chain."""
    import os

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    if not recipients:
        raise ParamsError("job parameters need at least one recipient key (the provider's key-agreement key)")
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


def is_sealed(params: dict[str, Any]) -> bool:
    """True for a parsed parameter block in the sealed format."""
    return params.get("format") == PARAMS_FORMAT


def open_params(params: dict[str, Any], private_key: Any) -> dict[str, Any]:
    """The query inside a sealed parameter block, for the holder of ``private_key``
    (an X25519PrivateKey). Raises :class:`ParamsError` if it is not sealed to that key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    if not is_sealed(params):
        raise ParamsError("job parameters are not sealed (plaintext in a shared store is refused)")
    mine = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        entry = next((r for r in params["recipients"] if bytes.fromhex(r["key"]) == mine), None)
        if entry is None:
            raise ParamsError("job parameters are not sealed to this key service's key-agreement key")
        epk = bytes.fromhex(entry["epk"])
        key = _wrap_key(private_key.exchange(X25519PublicKey.from_public_bytes(epk)), epk, mine)
        cek = AESGCM(key).decrypt(bytes.fromhex(entry["nonce"]), bytes.fromhex(entry["wrapped"]), mine)
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
