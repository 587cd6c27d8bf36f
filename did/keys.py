"""Key material: Ed25519 (DID / signing), X25519 (key agreement), did:key encoding, JWK for didkit.

A ``did:key`` Ed25519 DID *is* its public key (multicodec 0xed01, base58btc multibase), so
anyone can resolve it offline; we decode it here with no network and no didkit call.
"""
from __future__ import annotations

import base64
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from did.errors import UnknownDid
from chain.cid import b58decode, b58encode  # one base58 for the project (re-exported)

ED25519_CODEC = b"\xed\x01"
X25519_CODEC = b"\xec\x01"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64url text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def raw_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def multibase_key(codec: bytes, raw: bytes) -> str:
    return "z" + b58encode(codec + raw)


def did_from_ed25519(public: Ed25519PublicKey | bytes) -> str:
    raw = public if isinstance(public, bytes) else raw_public(public)
    return "did:key:" + multibase_key(ED25519_CODEC, raw)


def ed25519_from_did(did: str) -> Ed25519PublicKey:
    """The Ed25519 public key a ``did:key`` names (offline resolution)."""
    if not isinstance(did, str) or not did.startswith("did:key:z"):
        raise UnknownDid(f"{did!r} is not a did:key DID; only Ed25519 did:key DIDs resolve offline")
    ident = did[len("did:key:"):].split("#", 1)[0]
    try:
        decoded = b58decode(ident[1:])
    except ValueError as exc:
        raise UnknownDid(f"{did!r} is not valid base58btc: {exc}") from None
    if decoded[:2] != ED25519_CODEC or len(decoded) != 34:
        raise UnknownDid(f"{did!r} is not an Ed25519 did:key (wrong multicodec or length)")
    return Ed25519PublicKey.from_public_bytes(decoded[2:])


def verification_method_id(did: str) -> str:
    """did:key's one verification method: ``<did>#<multibase key>``."""
    return f"{did}#{did[len('did:key:'):]}"


def x25519_multibase(public: X25519PublicKey | bytes) -> str:
    raw = public if isinstance(public, bytes) else raw_public(public)
    return multibase_key(X25519_CODEC, raw)


def x25519_from_multibase(text: str) -> X25519PublicKey:
    if not isinstance(text, str) or not text.startswith("z"):
        raise ValueError("not a base58btc multibase key")
    decoded = b58decode(text[1:])
    if decoded[:2] != X25519_CODEC or len(decoded) != 34:
        raise ValueError("not an X25519 multicodec key")
    return X25519PublicKey.from_public_bytes(decoded[2:])


def ed25519_jwk(key: Ed25519PrivateKey) -> str:
    """The private key as the OKP JWK didkit signs with."""
    return json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64u(raw_public(key.public_key())),
                       "d": b64u(raw_private(key))})


def verify_ed25519(did: str, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` over ``message`` verifies under the key of ``did``."""
    try:
        ed25519_from_did(did).verify(signature, message)
        return True
    except InvalidSignature:
        return False
