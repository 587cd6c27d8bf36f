"""The facts a compliance scan judges, gathered at the edges: chain events and views, the content
store (registration and grant-terms documents, sealed copies), anchored operation logs, and the
role credentials the operator issued. Everything here reads; :mod:`oversight.compliance.checks`
judges the result without I/O.

What counts as a fact and where it comes from (docs/compliance.md):

* assets — ``AssetRegistered`` (registrant, template, classification, metadata CID) and the
  registration document behind the metadata CID; ``ownerOf`` / ``stateOf`` now;
* templates — the compliance policy in each used template's terms document;
* grants — ``GrantIssued`` terms, ``grantOf`` status now, the grant terms document (purpose, field
  scope) when ``purposeHash`` is the hash of one in the store;
* jobs — ``JobRequested`` (grant, asset, consumer, operation mask), ``jobOf`` status, ``AnswerReleased``;
* releases — the ``key-release`` records of the operation logs given to the scan, each marked
  anchored when its batch's Merkle root is in a ``BatchAnchored`` of the record's producer;
* consumers — the credential hash behind each consumer's CONSUMER role (``roleCredential``) and,
  when the scan was given that credential, the jurisdiction it names;
* endpoints — NodeRegistry endpoints and the service URLs registration documents name.

The chain's part is read through a :class:`~oversight.compliance.history.History`: the node
(:func:`gather`) or the shared event index (:func:`oversight.compliance.facts_index.gather_indexed`);
both give equal facts.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address

from audit.oplog import Batch, OpLogError, OpRecord
from chain.cid import cid_from_bytes
from did.identity import Identity
from oversight.compliance.history import ChainHistory, History
from oversight.compliance.registration import (
    AMENDMENT_KIND,
    DocumentMismatch,
    MalformedRegistration,
    RegistrationDoc,
    latest_amendment,
    load_registration,
    open_document,
    published_policy,
)

CLASSIFICATIONS = ("public", "internal", "sensitive", "confidential")
Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class AssetFact:
    asset_id: int
    holder: str
    registrant: str
    template_id: int
    classification: str
    state: str
    metadata_cid: str
    evidence: str
    registration: RegistrationDoc | None = None
    registration_error: str | None = None
    documents: dict[str, str] = field(default_factory=dict)   # kind -> opened | mismatch: … | copies present | …
    amended: str | None = None      # the holder's latest amendment (HashAnchored event) in force, if any


@dataclass(frozen=True)
class GrantFact:
    grant_id: int
    asset_id: int
    consumer: str
    provider: str
    operations: int
    status: str
    purpose_hash: str
    evidence: str
    purpose: str | None = None               # from the grant terms document, if any
    scope: frozenset[str] | None = None      # field scope from the terms document, if any
    terms_error: str | None = None


@dataclass(frozen=True)
class JobFact:
    job_id: int
    grant_id: int
    asset_id: int
    consumer: str
    operation: int
    status: str
    evidence: str
    released_by: str | None = None


@dataclass(frozen=True)
class ReleaseFact:
    """A ``key-release`` record of an operation log (what the key service says it released)."""

    record_id: str
    producer: str
    job: int | None
    grant: int | None
    layers: tuple[tuple[str, str, str], ...]     # (dataset, column, onion)
    anchored: bool
    source: str                                  # batch file or open file


@dataclass(frozen=True)
class ConsumerFact:
    address: str
    credential_hash: str | None
    credential_found: bool
    jurisdiction: str | None


@dataclass(frozen=True)
class EndpointFact:
    owner: str
    kind: str
    name: str
    url: str
    evidence: str


@dataclass(frozen=True)
class Facts:
    block: int
    time: int
    assets: dict[int, AssetFact]
    policies: dict[int, str]
    grants: dict[int, GrantFact]
    jobs: dict[int, JobFact]
    releases: tuple[ReleaseFact, ...]
    log_producers: frozenset[str]
    consumers: dict[str, ConsumerFact]
    endpoints: tuple[EndpointFact, ...]


def _documents(reg: RegistrationDoc, fetch: Fetch, reader: Identity | None, reader_role: str) -> dict[str, str]:
    out = {}
    for doc in (reg.consent, reg.ownership):
        if doc is None:
            continue
        if reader is not None and reader_role in doc.copies:
            try:
                open_document(reader, doc, reader_role, fetch)
                out[doc.kind] = "opened"
            except DocumentMismatch as exc:
                out[doc.kind] = f"mismatch: {exc}"
            except Exception as exc:   # noqa: BLE001 - any failure to open is the finding's detail
                out[doc.kind] = f"unreadable: {type(exc).__name__}: {exc}"
            continue
        absent = []
        for role in ("operator", "regulator"):
            try:
                fetch(doc.copies[role])
            except Exception:   # noqa: BLE001 - KeyError (no copy) or the store has no such block
                absent.append(role)
        out[doc.kind] = f"no sealed copy for {', '.join(absent)}" if absent else "copies present"
    return out


def gather_assets(h: History, fetch: Fetch, reader: Identity | None = None,
                  reader_role: str = "regulator") -> tuple[dict[int, AssetFact], dict[int, str]]:
    """Every certificate with its registration document, and the policy of each template used."""
    assets: dict[int, AssetFact] = {}
    policies: dict[int, str] = {}
    for e in h.logs("AssetRegistry", "AssetRegistered"):
        a = e.args
        aid, tpl = int(a["assetId"]), int(a["templateId"])
        if tpl not in policies:
            published = h.logs("CertificateTemplates", "TemplatePublished", templateId=tpl)
            policies[tpl] = published_policy(published[-1].args if published else None, fetch)
        state, holder = h.asset(aid)
        holder = holder or a["provider"]
        try:
            meta_cid = cid_from_bytes(bytes(a["metadataCid"])).encode()
        except ValueError:
            meta_cid = "0x" + bytes(a["metadataCid"]).hex()
        doc, error, documents, amended = None, None, {}, None
        try:
            doc = load_registration(bytes(a["metadataCid"]), fetch)
        except MalformedRegistration as exc:
            error = str(exc)
        except Exception as exc:   # noqa: BLE001 - the store has no such block, or the CID is not one
            error = f"the registration document {meta_cid} is not in the content store ({type(exc).__name__})"
        anchored = h.logs("Evidence", "HashAnchored", producer=holder, kind=AMENDMENT_KIND)
        found = latest_amendment([(x.args, x.evidence) for x in anchored], aid, "0x" + bytes(a["manifestHash"]).hex(),
                                 fetch)
        if found is not None:
            (doc, amended), error = found, None
        if doc is not None:
            documents = _documents(doc, fetch, reader, reader_role)
        assets[aid] = AssetFact(aid, holder, a["provider"], tpl, CLASSIFICATIONS[int(a["classification"])], state,
                                meta_cid, e.evidence, doc, error, documents, amended)
    return assets, policies


def gather_grants(h: History, fetch: Fetch) -> dict[int, GrantFact]:
    """Every grant with its status now and its terms document (purpose, field scope) if any."""
    from offchain.errors import GrantRefused
    from offchain.keyservice.terms import load_terms

    out: dict[int, GrantFact] = {}
    for e in h.logs("Authorizations", "GrantIssued"):
        a, t = e.args, e.args["terms"]
        gid = int(a["grantId"])
        status = h.grant_status(gid)
        purpose_hash = bytes(t["purposeHash"])
        purpose, scope, error = None, None, None
        try:
            terms = load_terms(purpose_hash, fetch)
            if terms is not None:
                purpose, scope = terms.purpose, terms.scope
        except GrantRefused as exc:
            error = str(exc)
        out[gid] = GrantFact(gid, int(a["assetId"]), a["consumer"], a["provider"], int(t["operations"]), status,
                             "0x" + purpose_hash.hex(), e.evidence, purpose, scope, error)
    return out


def gather_jobs(h: History) -> dict[int, JobFact]:
    """Every job request with its status now and who released its answer."""
    released = {int(e.args["jobId"]): e.args["provider"] for e in h.logs("Jobs", "AnswerReleased")}
    out: dict[int, JobFact] = {}
    for e in h.logs("Jobs", "JobRequested"):
        a = e.args
        jid = int(a["jobId"])
        out[jid] = JobFact(jid, int(a["grantId"]), int(a["assetId"]), a["consumer"], int(a["operation"]),
                           h.job_status(jid), e.evidence, released.get(jid))
    return out


def _release(r: OpRecord, anchored: bool, source: str) -> ReleaseFact:
    o = r.object
    layers = tuple((str(x.get("dataset")), str(x.get("column")), str(x.get("onion")))
                   for x in o.get("layers", []) if isinstance(x, dict))
    job = o.get("job")
    grant = o.get("grant")
    return ReleaseFact(r.id, to_checksum_address(r.actor_address), int(job) if job is not None else None,
                       int(grant) if str(grant or "").isdigit() else None, layers, anchored, source)


def gather_releases(h: History, folders: Iterable[Path]) -> tuple[tuple[ReleaseFact, ...], frozenset[str]]:
    """The ``key-release`` records of the given operation-log folders, each marked anchored or not,
    and the producers whose logs were read."""
    anchored = {(e.args["producer"], bytes(e.args["root"])) for e in h.logs("Evidence", "BatchAnchored")}
    out: list[ReleaseFact] = []
    producers: set[str] = set()
    for folder in folders:
        files = sorted(Path(folder).glob("batch-*.jsonl")) + [Path(folder) / "open.jsonl"]
        for path in files:
            if not path.exists():
                continue
            try:
                batch = Batch.from_jsonl("", path.read_bytes(), str(path))
            except OpLogError:
                continue
            if not batch.records:
                continue
            root = batch.root
            for r in batch.records:
                producer = to_checksum_address(r.actor_address)
                producers.add(producer)
                if r.action == "key-release" and r.result == "ok":
                    on_chain = path.name != "open.jsonl" and (producer, root) in anchored
                    out.append(_release(r, on_chain, str(path)))
    return tuple(out), frozenset(producers)


def load_credentials(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """Role credentials (JSON files, or folders of them) by ``0x`` keccak-256 of their canonical JSON —
    the hash the operator put on chain when granting the role."""
    from did.credentials import credential_hash

    out: dict[str, dict[str, Any]] = {}
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.json")) if p.is_dir() else [p])
    for f in files:
        try:
            vc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(vc, dict) and isinstance(vc.get("credentialSubject"), dict):
            out["0x" + credential_hash(vc).hex()] = vc
    return out


def gather_consumers(h: History, addresses: Iterable[str], credentials: dict[str, dict[str, Any]]
                     ) -> dict[str, ConsumerFact]:
    """Each consumer's CONSUMER credential hash on chain and the jurisdiction that credential names."""
    out = {}
    for addr in sorted(set(addresses)):
        text = h.consumer_credential(addr)
        vc = credentials.get(text or "")
        jurisdiction = vc["credentialSubject"].get("jurisdiction") if vc else None
        out[addr] = ConsumerFact(addr, text, vc is not None, str(jurisdiction) if jurisdiction else None)
    return out


def gather_endpoints(h: History, assets: dict[int, AssetFact]) -> tuple[EndpointFact, ...]:
    """Active NodeRegistry nodes' endpoints, and the service URLs of live assets' registrations."""
    out = []
    seen: dict[str, str] = {}
    for e in h.logs("NodeRegistry", "NodeAdded"):
        seen[e.args["node"]] = e.evidence
    for e in h.logs("NodeRegistry", "NodeEndpointChanged"):
        seen[e.args["node"]] = e.evidence
    for node, ev in seen.items():
        n = h.node(node)
        if n is None or not n.active:       # only active nodes are reached
            continue
        out.append(EndpointFact(node, n.kind, n.name, n.endpoint, ev))
    for a in assets.values():
        if a.registration is not None and a.state in ("active", "frozen", "pending"):
            for url in a.registration.endpoints:
                out.append(EndpointFact(a.holder, f"service of asset {a.asset_id}", a.registration.dataset_id, url,
                                        a.evidence))
    return tuple(out)


def gather(w3: Any, c: dict[str, Any], from_block: int, fetch: Fetch, *, oplogs: Iterable[Path] = (),
           credentials: dict[str, dict[str, Any]] | None = None, reader: Identity | None = None,
           reader_role: str = "regulator") -> Facts:
    """All facts of one scan, read from the node at the chain's head."""
    return gather_from(ChainHistory(w3, c, from_block), fetch, oplogs=oplogs, credentials=credentials, reader=reader,
                       reader_role=reader_role)


def gather_from(h: History, fetch: Fetch, *, oplogs: Iterable[Path] = (),
                credentials: dict[str, dict[str, Any]] | None = None, reader: Identity | None = None,
                reader_role: str = "regulator") -> Facts:
    """All facts of one scan, the chain's part as ``h`` reads it (at ``h.head()``)."""
    block, when = h.head()
    assets, policies = gather_assets(h, fetch, reader, reader_role)
    grants = gather_grants(h, fetch)
    releases, producers = gather_releases(h, oplogs)
    consumers = gather_consumers(h, {g.consumer for g in grants.values()}, credentials or {})
    return Facts(block, when, assets, policies, grants, gather_jobs(h), releases, producers, consumers,
                 gather_endpoints(h, assets))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value)


def facts_digest(facts: Facts) -> str:
    """A short fingerprint of everything scanned — every fact as canonical JSON, keccak-256 — so
    equal facts (read from the node or from the event index) give equal digests, and any
    difference in any field gives another."""
    text = json.dumps(asdict(facts), sort_keys=True, separators=(",", ":"), default=_jsonable)
    return "0x" + keccak(text=text).hex()[:16]
