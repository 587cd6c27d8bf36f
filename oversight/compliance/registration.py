"""What a registration carries for compliance, and what the certificate template says about it.

The registration document (``tds-registration/1``, canonical JSON) is the certificate's
*metadata document*: it is stored in the content store as a raw block (CIDv1, so its sha-256 is
in the CID) and its binary CID is the ``metadataCid`` of ``AssetRegistry.mint`` — the chain holds
its hash, no contract changes. It names the manifest (CID and hash), the dataset's classification,
the sha-256 of the data subjects' **consent record** and of the **ownership proof**, where the
sealed copies of both are (one envelope per recipient — the operator and the regulator, sealed to
their on-chain key-agreement keys with ``did.envelope``), the purposes the consent covers, the
dataset's residency (``domestic_only`` within a jurisdiction), the services the provider runs for
it (URLs) and the compliance status it was registered with.

The template's policy lives in the template's off-chain terms document (``tds-template-terms/1``
under ``termsCid``, ``termsHash`` = keccak-256 of its bytes): ``CertificateTemplates`` has no field
for it. ``compliance.personal_data`` is ``refuse`` (a personal dataset without both documents is
not registered) or ``register-non-compliant`` (it is registered, marked non-compliant, and every
scan reports it). A template without a readable document falls back to ``refuse``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

from chain.cid import Cid, cid_from_bytes
from chain.errors import TdsError
from chain.params import RAW_CODEC
from did.envelope import open_envelope, seal
from did.identity import Identity
from offchain.canonical import canonical_json

REGISTRATION_FORMAT = "tds-registration/1"
TEMPLATE_FORMAT = "tds-template-terms/1"
DOCUMENT_PURPOSE = "tds/compliance-document"
DOCUMENT_KINDS = ("consent", "ownership")
PERSONAL_LEVELS = ("sensitive", "confidential")
POLICIES = ("refuse", "register-non-compliant")
DEFAULT_POLICY = "register-non-compliant"
MAX_DOCUMENT = 256 * 1024

AddBytes = Callable[..., str]
Fetch = Callable[[str], bytes]


class MalformedRegistration(TdsError):
    """A registration document that is not ``tds-registration/1`` (names the CID and the field)."""


class MalformedTemplateTerms(TdsError):
    """A template terms document that is not ``tds-template-terms/1`` (names the field)."""


class RegistrationRefused(TdsError):
    """The template refuses a personal dataset without its consent record or ownership proof."""

    def __init__(self, dataset: str, level: str, missing: list[str], template: int):
        self.dataset, self.level, self.missing, self.template = dataset, level, missing, template
        super().__init__(f"dataset {dataset} is {level} (personal data) and has no {' or '.join(missing)}: "
                         f"template {template} refuses it; pass --consent FILE and --ownership FILE")


class DocumentMismatch(TdsError):
    """A sealed compliance document whose plaintext does not hash to the registered hash."""


def is_personal(level: str) -> bool:
    """Personal data, for compliance: classified sensitive or confidential (offchain.ingest)."""
    return level in PERSONAL_LEVELS


def sha256_hex(data: bytes) -> str:
    """``0x`` + the sha-256 of ``data``."""
    return "0x" + hashlib.sha256(data).hexdigest()


def raw_cid(data: bytes) -> Cid:
    """The CIDv1 (raw codec, sha2-256) of ``data``: its hash is in the CID."""
    return Cid(1, RAW_CODEC, hashlib.sha256(data).digest())


@dataclass(frozen=True)
class SealedDocument:
    """A consent record or ownership proof: its sha-256 and the CIDs of its sealed copies."""

    kind: str
    hash: str
    copies: dict[str, str] = field(default_factory=dict)     # recipient role -> CID of the envelope

    def to_dict(self) -> dict[str, Any]:
        """As the registration document holds it."""
        return {"hash": self.hash, "copies": dict(sorted(self.copies.items()))}


@dataclass(frozen=True)
class Residency:
    jurisdiction: str
    domestic_only: bool = True


@dataclass(frozen=True)
class RegistrationDoc:
    """The certificate's metadata document (see the module docstring)."""

    dataset_id: str
    manifest_cid: str
    manifest_hash: str
    classification: str
    consent: SealedDocument | None = None
    ownership: SealedDocument | None = None
    purposes: tuple[str, ...] = ()
    residency: Residency | None = None
    endpoints: tuple[str, ...] = ()
    status: str = "compliant"
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The document as JSON."""
        out: dict[str, Any] = {"format": REGISTRATION_FORMAT, "dataset_id": self.dataset_id,
                               "manifest": {"cid": self.manifest_cid, "hash": self.manifest_hash},
                               "classification": self.classification, "purposes": list(self.purposes),
                               "endpoints": list(self.endpoints),
                               "compliance": {"status": self.status, "missing": list(self.missing)}}
        for doc in (self.consent, self.ownership):
            if doc is not None:
                out[doc.kind] = doc.to_dict()
        if self.residency is not None:
            out["residency"] = {"jurisdiction": self.residency.jurisdiction,
                                "domestic_only": self.residency.domestic_only}
        return out

    def to_bytes(self) -> bytes:
        """Canonical JSON: the bytes whose CID is the certificate's metadata CID."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes, where: str = "<registration>") -> RegistrationDoc:
        """Parse; raises :class:`MalformedRegistration` naming ``where`` and the field."""
        try:
            d = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedRegistration(f"{where} is not JSON: {exc}") from None
        if not isinstance(d, dict) or d.get("format") != REGISTRATION_FORMAT:
            raise MalformedRegistration(f"{where} is not a {REGISTRATION_FORMAT} document")
        try:
            docs = {k: SealedDocument(k, str(d[k]["hash"]), {str(r): str(c) for r, c in d[k].get("copies", {}).items()})
                    for k in DOCUMENT_KINDS if d.get(k) is not None}
            res = d.get("residency")
            comp = d.get("compliance") or {}
            return cls(str(d["dataset_id"]), str(d["manifest"]["cid"]), str(d["manifest"]["hash"]),
                       str(d["classification"]), docs.get("consent"), docs.get("ownership"),
                       tuple(str(p) for p in d.get("purposes", [])),
                       Residency(str(res["jurisdiction"]), bool(res.get("domestic_only", True))) if res else None,
                       tuple(str(u) for u in d.get("endpoints", [])), str(comp.get("status", "compliant")),
                       tuple(str(m) for m in comp.get("missing", [])))
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedRegistration(f"{where}: field {exc} missing or malformed") from None


# --- the template's policy --------------------------------------------------------------------
def template_terms(name: str, personal_data: str = DEFAULT_POLICY, **extra: Any) -> bytes:
    """The bytes of a template terms document carrying the compliance policy."""
    if personal_data not in POLICIES:
        raise MalformedTemplateTerms(f"compliance.personal_data {personal_data!r}: expected one of {POLICIES}")
    return canonical_json({"format": TEMPLATE_FORMAT, "name": name, **extra,
                           "compliance": {"personal_data": personal_data, "requires": list(DOCUMENT_KINDS)}})


def parse_template_policy(raw: bytes | None) -> str:
    """``refuse`` or ``register-non-compliant`` from a template terms document (None: the default)."""
    if raw is None:
        return DEFAULT_POLICY
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return DEFAULT_POLICY            # an opaque terms document says nothing about compliance
    if not isinstance(d, dict) or d.get("format") != TEMPLATE_FORMAT:
        return DEFAULT_POLICY
    policy = (d.get("compliance") or {}).get("personal_data", DEFAULT_POLICY)
    if policy not in POLICIES:
        raise MalformedTemplateTerms(f"template terms: compliance.personal_data {policy!r} is not one of {POLICIES}")
    return policy


def template_policy(templates: Any, template_id: int, fetch: Fetch, from_block: int = 0) -> str:
    """The policy of ``template_id``: its ``TemplatePublished`` terms CID, fetched and checked against
    ``termsHash`` (keccak-256); anything unreadable gives the default."""
    logs = templates.events.TemplatePublished().get_logs(from_block=from_block,
                                                       argument_filters={"templateId": template_id})
    return published_policy(logs[-1]["args"] if logs else None, fetch)


def published_policy(args: Any, fetch: Fetch) -> str:
    """The policy of the template whose latest ``TemplatePublished`` arguments are ``args`` (None:
    never published — the default)."""
    if args is None:
        return DEFAULT_POLICY
    try:
        raw = fetch(cid_from_bytes(bytes(args["termsCid"])).encode())
    except Exception:   # noqa: BLE001 - no such block, or termsCid is not a CID: the default applies
        return DEFAULT_POLICY
    if keccak(raw) != bytes(args["termsHash"]):
        return DEFAULT_POLICY
    return parse_template_policy(raw)


def publish_template(sender: Any, templates: Any, name: str, terms: bytes, add_bytes: AddBytes, rights: int,
                     allowed_ops: int, split_bps: list[int]) -> int:
    """Store ``terms`` (raw block) and publish the template with its CID and keccak-256 hash."""
    cid = add_bytes(terms, cid_version=1)
    if cid != raw_cid(terms).encode():
        raise MalformedTemplateTerms(f"the store answered CID {cid} for the template terms, expected a raw CIDv1")
    r = sender.send(templates.functions.publish(name, raw_cid(terms).to_bytes(), keccak(terms), rights, allowed_ops,
                                                split_bps))
    from web3.logs import DISCARD

    return templates.events.TemplatePublished().process_receipt(r, errors=DISCARD)[0]["args"]["templateId"]


# --- sealing and the decision -------------------------------------------------------------------
def seal_document(sender: Identity, kind: str, plaintext: bytes, recipients: dict[str, tuple[str, bytes]],
                  add_bytes: AddBytes) -> SealedDocument:
    """Seal ``plaintext`` to each recipient (role -> (DID, X25519 key)), store the envelopes and
    return the document's hash and the CIDs of its sealed copies."""
    if kind not in DOCUMENT_KINDS:
        raise MalformedRegistration(f"unknown compliance document kind {kind!r}; expected {DOCUMENT_KINDS}")
    if len(plaintext) > MAX_DOCUMENT:
        raise MalformedRegistration(f"the {kind} document is {len(plaintext)} bytes (limit {MAX_DOCUMENT})")
    copies = {role: add_bytes(seal(sender, did, key, plaintext, f"{DOCUMENT_PURPOSE}/{kind}").to_bytes(),
                              cid_version=1)
              for role, (did, key) in sorted(recipients.items())}
    return SealedDocument(kind, sha256_hex(plaintext), copies)


def open_document(recipient: Identity, doc: SealedDocument, role: str, fetch: Fetch) -> bytes:
    """The plaintext of ``role``'s sealed copy, checked against the registered hash."""
    plain = open_envelope(recipient, fetch(doc.copies[role]), purpose=f"{DOCUMENT_PURPOSE}/{doc.kind}")
    if sha256_hex(plain) != doc.hash:
        raise DocumentMismatch(f"the {doc.kind} document sealed to the {role} hashes to {sha256_hex(plain)}, "
                               f"not the registered {doc.hash}")
    return plain


def decide(dataset: str, level: str, docs: dict[str, SealedDocument | None], policy: str,
           template: int) -> tuple[str, tuple[str, ...]]:
    """(status, missing) for a registration; raises :class:`RegistrationRefused` when the template
    refuses a personal dataset without its documents."""
    missing = tuple(k for k in DOCUMENT_KINDS if docs.get(k) is None)
    if not is_personal(level) or not missing:
        return "compliant", ()
    if policy == "refuse":
        raise RegistrationRefused(dataset, level, list(missing), template)
    return "non-compliant", missing


def build_registration(sender: Identity, recipients: Callable[[], dict[str, tuple[str, bytes]]], *, dataset_id: str,
                       manifest_cid: str, manifest_hash: str, level: str, documents: dict[str, bytes],
                       purposes: tuple[str, ...] = (), residency: str | None = None, endpoints: tuple[str, ...] = (),
                       policy: str = DEFAULT_POLICY, template: int = 0, add_bytes: AddBytes,
                       keep: dict[str, SealedDocument] | None = None) -> RegistrationDoc:
    """Seal each plaintext document (``kind`` -> bytes) to the recipients, keep the already sealed
    ones in ``keep`` that are not replaced, apply ``policy`` (raises :class:`RegistrationRefused`)
    and return the registration document (not yet stored)."""
    docs: dict[str, SealedDocument | None] = dict(keep or {})
    if documents:
        to = recipients()
        for kind, plain in sorted(documents.items()):
            docs[kind] = seal_document(sender, kind, plain, to, add_bytes)
    status, missing = decide(dataset_id, level, docs, policy, template)
    return RegistrationDoc(dataset_id, manifest_cid, manifest_hash, level, docs.get("consent"), docs.get("ownership"),
                           tuple(purposes), Residency(residency.upper()) if residency else None, tuple(endpoints),
                           status, missing)


def publish_registration(doc: RegistrationDoc, add_bytes: AddBytes) -> Cid:
    """Store the registration document as a raw block; its CID is the certificate's metadata CID."""
    raw = doc.to_bytes()
    cid = add_bytes(raw, cid_version=1)
    expected = raw_cid(raw)
    if cid != expected.encode():
        raise MalformedRegistration(f"the store answered CID {cid} for the registration, expected {expected.encode()}")
    return expected


def load_registration(metadata_cid: bytes, fetch: Fetch) -> RegistrationDoc | None:
    """The registration document behind a certificate's metadata CID; None when that CID is not a
    raw block (older registrations point at the manifest). Raises :class:`MalformedRegistration`
    if the store serves other bytes than the CID's hash, or a document that does not parse."""
    cid = cid_from_bytes(metadata_cid)
    if cid.version != 1 or cid.codec != RAW_CODEC:
        return None
    text = cid.encode()
    raw = fetch(text)
    if hashlib.sha256(raw).digest() != cid.digest:
        raise MalformedRegistration(f"the store served other bytes for {text} than its hash")
    return RegistrationDoc.from_bytes(raw, text)


# --- amendments -------------------------------------------------------------------------------
AMENDMENT_KIND = keccak(text="REGISTRATION_AMENDMENT")


def anchor_amendment(sender: Any, evidence: Any, asset_id: int, doc: RegistrationDoc, add_bytes: AddBytes) -> str:
    """The holder amends its registration (e.g. adds the consent record): the new document is stored
    as a raw block and its sha-256 anchored about the asset (``Evidence.anchorHash``, kind
    ``REGISTRATION_AMENDMENT``) from the holder's account; returns the transaction hash."""
    cid = publish_registration(doc, add_bytes)
    r = sender.send(evidence.functions.anchorHash(cid.digest, AMENDMENT_KIND, asset_id))
    return r["transactionHash"].to_0x_hex()


def find_amendment(evidence: Any, asset_id: int, holder: str, manifest_hash: str, fetch: Fetch,
                   from_block: int = 0) -> tuple[RegistrationDoc, str] | None:
    """The holder's latest readable amendment of ``asset_id`` for the same manifest, with its event
    (``<tx>:<log index>``); amendments by anyone else, or about another manifest, do not count."""
    logs = evidence.events.HashAnchored().get_logs(from_block=from_block,
                                                  argument_filters={"producer": holder, "kind": AMENDMENT_KIND})
    return latest_amendment([(e["args"], f"{e['transactionHash'].to_0x_hex()}:{e['logIndex']}") for e in logs],
                            asset_id, manifest_hash, fetch)


def latest_amendment(anchored: Sequence[tuple[Any, str]], asset_id: int, manifest_hash: str, fetch: Fetch
                     ) -> tuple[RegistrationDoc, str] | None:
    """The latest readable amendment of ``asset_id`` for ``manifest_hash`` among the holder's
    ``REGISTRATION_AMENDMENT`` anchors ``anchored`` ((arguments, ``<tx>:<log index>``), chain order)."""
    for args, where in reversed([(a, w) for a, w in anchored if int(a["subjectId"]) == asset_id]):
        cid = Cid(1, RAW_CODEC, bytes(args["hash"]))
        try:
            raw = fetch(cid.encode())
        except Exception:   # noqa: BLE001, S112 - not in the store: an earlier amendment may be
            continue
        if hashlib.sha256(raw).digest() != cid.digest:
            continue
        try:
            doc = RegistrationDoc.from_bytes(raw, cid.encode())
        except MalformedRegistration:
            continue
        if doc.manifest_hash.lower() == manifest_hash.lower():
            return doc, where
    return None
