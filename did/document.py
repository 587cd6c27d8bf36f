"""DID documents: the did:key Ed25519 key plus the participant's X25519 key-agreement key.

A did:key document resolved by didkit has no ``keyAgreement`` for our separate X25519 key, so
each participant publishes its own document (IPFS) whose digest and key are recorded in the
IdentityRegistry. A verifier checks the document against its DID (the Ed25519 key must be
the one the DID encodes) and against the chain (digest and key-agreement key).

``document_digest`` is the sha2-256 digest inside the document's CIDv0 — exactly what
``ipfs add`` of the canonical bytes names (one UnixFS file chunk in a dag-pb node) — so the
``didDocDigest`` on chain and the CID are the same fact.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from did.errors import InvalidDocument
from did.keys import (ED25519_CODEC, b58encode, ed25519_from_did, multibase_key, raw_public,
                      verification_method_id, x25519_from_multibase, x25519_multibase)

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
ED_VM_TYPE = "Ed25519VerificationKey2020"
X_VM_TYPE = "X25519KeyAgreementKey2020"
_CHUNK = 256 * 1024


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_document(did: str, x25519_public: X25519PublicKey | bytes) -> dict[str, Any]:
    """The DID document of ``did`` with its X25519 key-agreement key."""
    ed_raw = raw_public(ed25519_from_did(did))
    ed_id = verification_method_id(did)
    x_mb = x25519_multibase(x25519_public)
    x_id = f"{did}#{x_mb}"
    return {
        "@context": [DID_CONTEXT],
        "id": did,
        "verificationMethod": [
            {"id": ed_id, "type": ED_VM_TYPE, "controller": did,
             "publicKeyMultibase": multibase_key(ED25519_CODEC, ed_raw)},
            {"id": x_id, "type": X_VM_TYPE, "controller": did, "publicKeyMultibase": x_mb},
        ],
        "authentication": [ed_id],
        "assertionMethod": [ed_id],
        "keyAgreement": [x_id],
    }


def document_bytes(doc: dict[str, Any]) -> bytes:
    return canonical_json(doc)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _dag_pb_file_block(data: bytes) -> bytes:
    """The single dag-pb block ``ipfs add`` (CIDv0 defaults) makes for a file of one chunk."""
    if not 0 < len(data) <= _CHUNK:
        raise InvalidDocument(f"DID document must be 1..{_CHUNK} bytes, got {len(data)}")
    unixfs = _varint(1 << 3) + _varint(2) + _field(2, data) + _varint(3 << 3) + _varint(len(data))
    return _field(1, unixfs)


def document_digest(doc_bytes: bytes) -> bytes:
    """bytes32 ``didDocDigest``: the sha2-256 digest inside the document's CIDv0."""
    return hashlib.sha256(_dag_pb_file_block(doc_bytes)).digest()


def document_cid(doc_bytes: bytes) -> str:
    """The CIDv0 (``Qm…``) under which IPFS stores the canonical document bytes."""
    return b58encode(b"\x12\x20" + document_digest(doc_bytes))


def key_agreement_key(doc: dict[str, Any]) -> bytes:
    """The raw X25519 public key named by the document's ``keyAgreement``."""
    try:
        ref = doc["keyAgreement"][0]
        vm = next(v for v in doc["verificationMethod"] if v["id"] == ref)
        if vm["type"] != X_VM_TYPE:
            raise InvalidDocument(f"keyAgreement method has type {vm['type']!r}, expected {X_VM_TYPE}")
        return raw_public(x25519_from_multibase(vm["publicKeyMultibase"]))
    except InvalidDocument:
        raise
    except (KeyError, IndexError, StopIteration, TypeError, ValueError) as exc:
        raise InvalidDocument(f"DID document has no usable X25519 keyAgreement key ({exc!r})") from None


def verify_document(doc: dict[str, Any], did: str | None = None) -> bytes:
    """Check ``doc`` belongs to its DID (and to ``did`` if given); return its X25519 key."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise InvalidDocument("DID document must be a JSON object with an 'id'")
    if did is not None and doc["id"] != did:
        raise InvalidDocument(f"DID document is for {doc['id']}, not {did}")
    x_raw = key_agreement_key(doc)
    if doc != build_document(doc["id"], x_raw):
        raise InvalidDocument(f"DID document of {doc['id']} does not match the key its DID encodes")
    return x_raw


def parse_document(raw: bytes, did: str | None = None) -> tuple[dict[str, Any], bytes]:
    """Parse canonical document bytes; return ``(doc, x25519_key)``."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidDocument(f"DID document is not JSON: {exc}") from None
    x_raw = verify_document(doc, did)
    if canonical_json(doc) != raw:
        raise InvalidDocument("DID document bytes are not canonical JSON")
    return doc, x_raw


class PublishedDocument:
    """The bytes, digest and CID of a participant's DID ``document`` (a property the class
    defines), as they are published to the store and recorded on chain."""

    @property
    def document_bytes(self) -> bytes:
        return document_bytes(self.document)  # type: ignore[attr-defined]

    @property
    def document_digest(self) -> bytes:
        return document_digest(self.document_bytes)

    @property
    def document_cid(self) -> str:
        return document_cid(self.document_bytes)
