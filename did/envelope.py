"""Sealed delivery ("digital envelope") to one named recipient.

seal: fresh ephemeral X25519 key; ``shared = ECDH(ephemeral, recipient key-agreement key)``;
``key = HKDF-SHA256(shared, salt = epk || rpk, info = "tds-envelope/v1" || canonical{from, to,
purpose})``; AES-256-GCM over the payload with the canonical header as associated data; the
sender's DID key (Ed25519) signs ``"tds-envelope/v1" || header || ciphertext``.

open: refuse if the envelope names another recipient DID or key (:class:`EnvelopeNotForYou`),
then check the sender signature against the sender's did:key and decrypt
(:class:`EnvelopeAuthError` on any failure). ``to_bytes`` is canonical JSON, so the oracle can
store a sealed result and post ``keccak256(to_bytes())`` on chain.

Profiles: an SM2 participant (:class:`did.sm2_identity.Sm2Participant`, ``TDS_CRYPTO_PROFILE=sm``)
seals and opens through the same two calls, which hand over to :mod:`did.sm2` (SM2 agreement,
SM3 KDF, SM4-GCM, SM2 signature). Either call refuses a party or an envelope of another profile
than the one in force with :class:`did.errors.CryptoProfileMismatch`.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_utils import keccak

from chain.crypto_profile import DEFAULT, SM, CryptoProfileMismatch, configured_profile
from did.document import canonical_json
from did.errors import EnvelopeAuthError, EnvelopeNotForYou, MalformedEnvelope, UnknownDid
from did.keys import b64u, b64u_decode, ed25519_from_did, raw_public, verify_ed25519

if TYPE_CHECKING:
    from did.identity import Identity

VERSION = 1
ALG = "X25519-HKDF-SHA256-A256GCM+Ed25519"
SM2_ALG = "SM2-KDF-SM3-SM4GCM+SM2"          # the sm profile's envelopes: did/sm2.py seals and opens them
DOMAIN = b"tds-envelope/v1"
HEADER_KEYS = {"v", "alg", "from", "to", "purpose", "epk", "rpk", "nonce", "created"}


@dataclass(frozen=True)
class Envelope:
    header: dict[str, Any]
    ciphertext: bytes
    signature: bytes

    @property
    def sender(self) -> str:
        return self.header["from"]

    @property
    def recipient(self) -> str:
        return self.header["to"]

    @property
    def purpose(self) -> str:
        return self.header["purpose"]

    def to_bytes(self) -> bytes:
        return canonical_json({"header": self.header, "ciphertext": b64u(self.ciphertext),
                               "signature": b64u(self.signature)})

    def digest(self) -> bytes:
        """keccak256 of the canonical bytes (what goes on chain)."""
        return keccak(self.to_bytes())

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        try:
            obj = json.loads(raw)
            header = obj["header"]
            if set(obj) != {"header", "ciphertext", "signature"} or set(header) != HEADER_KEYS:
                raise MalformedEnvelope("envelope has unexpected or missing fields")
            if header["v"] != VERSION or header["alg"] not in (ALG, SM2_ALG):
                raise MalformedEnvelope(f"unsupported envelope version/algorithm {header['v']}/{header['alg']}")
            env = cls(header, b64u_decode(obj["ciphertext"]), b64u_decode(obj["signature"]))
        except MalformedEnvelope:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedEnvelope(f"not a sealed envelope: {exc!r}") from None
        if env.to_bytes() != raw:
            raise MalformedEnvelope("envelope bytes are not in canonical form")
        return env


def _key(shared: bytes, epk: bytes, rpk: bytes, header: dict[str, Any]) -> bytes:
    info = DOMAIN + canonical_json({"from": header["from"], "to": header["to"], "purpose": header["purpose"]})
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + rpk, info=info).derive(shared)


def _signed_bytes(header: dict[str, Any], ciphertext: bytes) -> bytes:
    return DOMAIN + canonical_json(header) + ciphertext


def seal(sender: "Identity", recipient_did: str, recipient_key: bytes | X25519PublicKey, plaintext: bytes,
         purpose: str) -> Envelope:
    """Encrypt ``plaintext`` so only ``recipient_did`` (holder of ``recipient_key``) opens it."""
    _require_in_force(getattr(sender, "profile", DEFAULT), f"envelope sealed by {sender.did}")
    if getattr(sender, "profile", DEFAULT) == SM:
        from did.sm2 import seal_sm2
        from did.sm2_identity import agreement_point
        rpk = recipient_key if isinstance(recipient_key, bytes) else raw_public(recipient_key)
        return seal_sm2(sender.sm2, recipient_did, agreement_point(rpk), plaintext, purpose)  # type: ignore[attr-defined]
    try:
        ed25519_from_did(recipient_did)
    except UnknownDid as exc:
        raise EnvelopeNotForYou(f"cannot seal to {recipient_did!r}: {exc}") from None
    rpk = recipient_key if isinstance(recipient_key, bytes) else raw_public(recipient_key)
    recipient_pub = X25519PublicKey.from_public_bytes(rpk)
    eph = X25519PrivateKey.generate()
    epk = raw_public(eph.public_key())
    nonce = os.urandom(12)
    header = {"v": VERSION, "alg": ALG, "from": sender.did, "to": recipient_did, "purpose": str(purpose),
              "epk": b64u(epk), "rpk": b64u(rpk), "nonce": b64u(nonce), "created": int(time.time())}
    key = _key(eph.exchange(recipient_pub), epk, rpk, header)
    ct = AESGCM(key).encrypt(nonce, bytes(plaintext), canonical_json(header))
    return Envelope(header, ct, sender.ed25519.sign(_signed_bytes(header, ct)))


def _require_in_force(profile: str, subject: str) -> None:
    """Refuse an envelope (or a party) of another profile than ``TDS_CRYPTO_PROFILE``'s."""
    from did.errors import CryptoProfileMismatch as Refused
    if profile != configured_profile().name:
        raise Refused(configured_profile().name, profile, subject)


def check_header(h: dict[str, Any], did: str, agreement_key: bytes, name: str, expected_sender: str | None,
                 purpose: str | None) -> tuple[bytes, bytes, bytes]:
    """The checks every envelope profile makes before decrypting: addressed to ``did`` and its
    key-agreement key, from the expected sender, for the expected purpose; returns the recipient
    key, ephemeral key and nonce."""
    if h["to"] != did:
        raise EnvelopeNotForYou(f"envelope is sealed to {h['to']}, not to {did}")
    try:
        rpk, epk, nonce = b64u_decode(h["rpk"]), b64u_decode(h["epk"]), b64u_decode(h["nonce"])
    except ValueError as exc:
        raise MalformedEnvelope(f"envelope header is malformed: {exc}") from None
    if rpk != agreement_key:
        raise EnvelopeNotForYou(f"envelope is sealed to another key-agreement key than {name}'s")
    if expected_sender is not None and h["from"] != expected_sender:
        raise EnvelopeAuthError(f"envelope is from {h['from']}, expected {expected_sender}")
    if purpose is not None and h["purpose"] != purpose:
        raise EnvelopeAuthError(f"envelope purpose is {h['purpose']!r}, expected {purpose!r}")
    return rpk, epk, nonce


def open_envelope(recipient: "Identity", envelope: Envelope | bytes, *, expected_sender: str | None = None,
                  purpose: str | None = None) -> bytes:
    """Check and decrypt an envelope addressed to ``recipient``; return the plaintext."""
    env = Envelope.from_bytes(envelope) if isinstance(envelope, (bytes, bytearray)) else envelope
    h = env.header
    mine, found = getattr(recipient, "profile", DEFAULT), (SM if h["alg"] == SM2_ALG else DEFAULT)
    if found != mine:
        raise CryptoProfileMismatch(mine, found, f"sealed envelope from {h['from']} (a {mine} recipient's keys)")
    _require_in_force(found, f"sealed envelope from {h['from']}")
    if mine == SM:
        from did.sm2 import open_sm2
        return open_sm2(recipient.sm2, env, expected_sender=expected_sender, purpose=purpose)  # type: ignore[attr-defined]
    rpk, epk, nonce = check_header(h, recipient.did, recipient.x25519_public, recipient.name, expected_sender,
                                   purpose)
    try:
        ok = verify_ed25519(h["from"], env.signature, _signed_bytes(h, env.ciphertext))
    except UnknownDid as exc:
        raise EnvelopeAuthError(f"envelope sender is not resolvable: {exc}") from None
    if not ok:
        raise EnvelopeAuthError(f"envelope signature of {h['from']} does not verify (altered in transit?)")
    try:
        key = _key(recipient.x25519.exchange(X25519PublicKey.from_public_bytes(epk)), epk, rpk, h)
        return AESGCM(key).decrypt(nonce, env.ciphertext, canonical_json(h))
    except (InvalidTag, ValueError):
        raise EnvelopeAuthError("envelope ciphertext does not decrypt (altered, or sealed with another key)") from None
