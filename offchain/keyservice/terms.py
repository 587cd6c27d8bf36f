"""A grant's terms document: purpose, field-level scope and the privacy option, bound by hash.

The contract keeps one 32-byte field per grant, ``purposeHash``. When it is the sha-256 of a
terms document (canonical JSON, stored in the content store as a raw block, so its CIDv1 follows
from the hash alone), the provider's key service enforces what the document says:

``{"format": "tds-grant-terms/1", "purpose": "...",
   "scope": ["sum:amount", "range:amount", "count"],          # optional: the only operations allowed
   "dp": {"epsilon_per_query": "0.5", "budget": "5"}}`` # optional: noise on every released cell

``scope`` names each operation with its column (``"sum:amount"`` allows SUM over ``amount`` and
nothing else; ``"count"`` allows COUNT); the grant's operation classes on chain still bound it.
A grant whose ``purposeHash`` is not such a document (e.g. ``keccak256(purpose)``) has no field
scope, unless the key service requires one (``require_terms``), in which case it is refused.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from chain.params import params_cid
from offchain.canonical import canonical_json
from offchain.errors import GrantRefused
from offchain.keyservice.privacy import DpTerms

TERMS_FORMAT = "tds-grant-terms/1"
MAX_TERMS = 64 * 1024


@dataclass(frozen=True)
class GrantTermsDoc:
    """What a provider grants beyond the on-chain operation classes."""

    purpose: str
    scope: frozenset[str] | None = None
    dp: DpTerms | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": TERMS_FORMAT, "purpose": self.purpose}
        if self.scope is not None:
            out["scope"] = sorted(self.scope)
        if self.dp is not None:
            out["dp"] = self.dp.to_dict()
        return out

    def to_bytes(self) -> bytes:
        """The canonical bytes whose sha-256 is the grant's ``purposeHash``."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> "GrantTermsDoc":
        if len(raw) > MAX_TERMS:
            raise GrantRefused(f"grant terms document is {len(raw)} bytes (limit {MAX_TERMS})", code="BadTerms")
        try:
            d = json.loads(raw)
            if d.get("format") != TERMS_FORMAT:
                raise ValueError(f"format {d.get('format')!r} is not {TERMS_FORMAT}")
            scope = d.get("scope")
            if scope is not None and (not isinstance(scope, list) or not all(isinstance(s, str) for s in scope)):
                raise ValueError("scope must be a list of operation strings such as 'sum:amount'")
            dp = DpTerms.from_dict(d["dp"]) if d.get("dp") is not None else None
            return cls(str(d["purpose"]), frozenset(scope) if scope is not None else None, dp)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GrantRefused(f"grant terms document is malformed: {exc}", code="BadTerms") from None


def terms_hash(doc: GrantTermsDoc) -> bytes:
    """``purposeHash`` for a grant with these terms (sha-256 of the canonical document)."""
    import hashlib

    return hashlib.sha256(doc.to_bytes()).digest()


def publish_terms(doc: GrantTermsDoc, add_bytes: Callable[..., str]) -> bytes:
    """Store the document (raw block, CIDv1) and return its hash for the grant's terms."""
    digest = terms_hash(doc)
    cid = add_bytes(doc.to_bytes(), cid_version=1)
    if cid != params_cid(digest):
        raise RuntimeError(f"the store answered CID {cid} for the grant terms, expected {params_cid(digest)}")
    return digest


def load_terms(purpose_hash: bytes, fetch: Callable[[str], bytes]) -> GrantTermsDoc | None:
    """The terms document behind ``purpose_hash``, or None if the store has no block for it."""
    try:
        raw = fetch(params_cid(purpose_hash))
    except Exception:
        return None
    import hashlib

    if hashlib.sha256(raw).digest() != purpose_hash:
        raise GrantRefused("the store served other bytes for the grant terms than their hash on chain",
                           code="BadTerms")
    return GrantTermsDoc.from_bytes(raw)
