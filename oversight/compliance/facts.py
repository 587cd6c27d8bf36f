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
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address

from audit.oplog import Batch, OpLogError, OpRecord
from chain.cid import cid_from_bytes
from chain.system import role_id
from did.identity import Identity
from oversight.compliance.registration import (
    DocumentMismatch,
    MalformedRegistration,
    RegistrationDoc,
    find_amendment,
    load_registration,
    open_document,
    template_policy,
)

CLASSIFICATIONS = ("public", "internal", "sensitive", "confidential")
ASSET_STATES = ("none", "active", "frozen", "offline", "pending", "rejected")
GRANT_STATES = ("none", "active", "revoked", "closed")
JOB_STATES = ("none", "requested", "accepted", "completed", "failed", "reclaimed", "cancelled", "released")
NODE_KINDS = ("none", "compute node", "party node")
Fetch = Callable[[str], bytes]


def _ev(e: Any) -> str:
    return f"{e['transactionHash'].to_0x_hex()}:{e['logIndex']}"


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


def gather_assets(c: dict[str, Any], fetch: Fetch, from_block: int, reader: Identity | None = None,
                  reader_role: str = "regulator") -> tuple[dict[int, AssetFact], dict[int, str]]:
    """Every certificate with its registration document, and the policy of each template used."""
    reg = c["AssetRegistry"]
    assets: dict[int, AssetFact] = {}
    policies: dict[int, str] = {}
    for e in reg.events.AssetRegistered().get_logs(from_block=from_block):
        a = e["args"]
        aid, tpl = int(a["assetId"]), int(a["templateId"])
        if tpl not in policies:
            policies[tpl] = template_policy(c["CertificateTemplates"], tpl, fetch, from_block)
        state = ASSET_STATES[int(reg.functions.stateOf(aid).call())]
        holder = reg.functions.ownerOf(aid).call() if state != "none" else a["provider"]
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
        found = find_amendment(c["Evidence"], aid, holder, "0x" + bytes(a["manifestHash"]).hex(), fetch, from_block)
        if found is not None:
            (doc, amended), error = found, None
        if doc is not None:
            documents = _documents(doc, fetch, reader, reader_role)
        assets[aid] = AssetFact(aid, holder, a["provider"], tpl, CLASSIFICATIONS[int(a["classification"])], state,
                                meta_cid, _ev(e), doc, error, documents, amended)
    return assets, policies


def gather_grants(c: dict[str, Any], fetch: Fetch, from_block: int) -> dict[int, GrantFact]:
    """Every grant with its status now and its terms document (purpose, field scope) if any."""
    from offchain.errors import GrantRefused
    from offchain.keyservice.terms import load_terms

    auth = c["Authorizations"]
    out: dict[int, GrantFact] = {}
    for e in auth.events.GrantIssued().get_logs(from_block=from_block):
        a, t = e["args"], e["args"]["terms"]
        gid = int(a["grantId"])
        status = GRANT_STATES[int(auth.functions.grantOf(gid).call()[4])]
        purpose_hash = bytes(t["purposeHash"])
        purpose, scope, error = None, None, None
        try:
            terms = load_terms(purpose_hash, fetch)
            if terms is not None:
                purpose, scope = terms.purpose, terms.scope
        except GrantRefused as exc:
            error = str(exc)
        out[gid] = GrantFact(gid, int(a["assetId"]), a["consumer"], a["provider"], int(t["operations"]), status,
                             "0x" + purpose_hash.hex(), _ev(e), purpose, scope, error)
    return out


def gather_jobs(c: dict[str, Any], from_block: int) -> dict[int, JobFact]:
    """Every job request with its status now and who released its answer."""
    jobs = c["Jobs"]
    released = {int(e["args"]["jobId"]): e["args"]["provider"]
                for e in jobs.events.AnswerReleased().get_logs(from_block=from_block)}
    out: dict[int, JobFact] = {}
    for e in jobs.events.JobRequested().get_logs(from_block=from_block):
        a = e["args"]
        jid = int(a["jobId"])
        status = JOB_STATES[int(jobs.functions.jobOf(jid).call()[0][3])]
        out[jid] = JobFact(jid, int(a["grantId"]), int(a["assetId"]), a["consumer"], int(a["operation"]), status,
                           _ev(e), released.get(jid))
    return out


def _release(r: OpRecord, anchored: bool, source: str) -> ReleaseFact:
    o = r.object
    layers = tuple((str(x.get("dataset")), str(x.get("column")), str(x.get("onion")))
                   for x in o.get("layers", []) if isinstance(x, dict))
    job = o.get("job")
    grant = o.get("grant")
    return ReleaseFact(r.id, to_checksum_address(r.actor_address), int(job) if job is not None else None,
                       int(grant) if str(grant or "").isdigit() else None, layers, anchored, source)


def gather_releases(c: dict[str, Any], folders: Iterable[Path], from_block: int
                    ) -> tuple[tuple[ReleaseFact, ...], frozenset[str]]:
    """The ``key-release`` records of the given operation-log folders, each marked anchored or not,
    and the producers whose logs were read."""
    anchored = {(e["args"]["producer"], bytes(e["args"]["root"]))
                for e in c["Evidence"].events.BatchAnchored().get_logs(from_block=from_block)}
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


def gather_consumers(c: dict[str, Any], addresses: Iterable[str], credentials: dict[str, dict[str, Any]]
                     ) -> dict[str, ConsumerFact]:
    """Each consumer's CONSUMER credential hash on chain and the jurisdiction that credential names."""
    out = {}
    for addr in sorted(set(addresses)):
        h, _until = c["IdentityRegistry"].functions.roleCredential(addr, role_id("CONSUMER")).call()
        text = "0x" + bytes(h).hex() if bytes(h) != b"\0" * 32 else None
        vc = credentials.get(text or "")
        jurisdiction = vc["credentialSubject"].get("jurisdiction") if vc else None
        out[addr] = ConsumerFact(addr, text, vc is not None, str(jurisdiction) if jurisdiction else None)
    return out


def gather_endpoints(c: dict[str, Any], assets: dict[int, AssetFact], from_block: int) -> tuple[EndpointFact, ...]:
    """Active NodeRegistry nodes' endpoints, and the service URLs of live assets' registrations."""
    nodes = c["NodeRegistry"]
    out = []
    seen: dict[str, str] = {}
    for e in nodes.events.NodeAdded().get_logs(from_block=from_block):
        seen[e["args"]["node"]] = _ev(e)
    for e in nodes.events.NodeEndpointChanged().get_logs(from_block=from_block):
        seen[e["args"]["node"]] = _ev(e)
    for node, ev in seen.items():
        n = nodes.functions.nodeOf(node).call()
        if int(n[1]) != 1:       # only active nodes are reached
            continue
        out.append(EndpointFact(node, NODE_KINDS[int(n[0])], str(n[6]), str(n[7]), ev))
    for a in assets.values():
        if a.registration is not None and a.state in ("active", "frozen", "pending"):
            for url in a.registration.endpoints:
                out.append(EndpointFact(a.holder, f"service of asset {a.asset_id}", a.registration.dataset_id, url,
                                        a.evidence))
    return tuple(out)


def gather(w3: Any, c: dict[str, Any], from_block: int, fetch: Fetch, *, oplogs: Iterable[Path] = (),
           credentials: dict[str, dict[str, Any]] | None = None, reader: Identity | None = None,
           reader_role: str = "regulator") -> Facts:
    """All facts of one scan, read at the chain's head."""
    head = w3.eth.get_block("latest")
    assets, policies = gather_assets(c, fetch, from_block, reader, reader_role)
    grants = gather_grants(c, fetch, from_block)
    releases, producers = gather_releases(c, oplogs, from_block)
    consumers = gather_consumers(c, {g.consumer for g in grants.values()}, credentials or {})
    return Facts(int(head["number"]), int(head["timestamp"]), assets, policies, grants, gather_jobs(c, from_block),
                 releases, producers, consumers, gather_endpoints(c, assets, from_block))


def facts_digest(facts: Facts) -> str:
    """A short fingerprint of what was scanned (block and counts), for the report."""
    text = f"{facts.block}|{len(facts.assets)}|{len(facts.grants)}|{len(facts.jobs)}|{len(facts.releases)}"
    return "0x" + keccak(text=text).hex()[:16]
