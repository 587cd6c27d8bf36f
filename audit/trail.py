"""The trail of one data asset, rebuilt from chain events alone (000 §12.3.1.2 fields).

Each entry names: a unique id (``txhash:logIndex``), the actor (chain address and the DID it
was bound to at that moment, from ``IdentityRegistry.IdentityBound``, shown only if the binding
proof published with it verifies against the DID's key, else as ``unverified:<did>``: see
:meth:`audit.events.ChainReader.did_of`), the time (block timestamp), the action, the object (asset / grant / application / job / workflow / batch ids)
and the result. Events are only emitted by transactions that succeeded, so a refused attempt
leaves no entry; a job that failed, an application rejected, a workflow stopped do, with
result ``failed``.

What belongs to asset *A*: its certificate events (register, transfer, freeze, unfreeze,
offline, quality updates, dataset versions recorded); the grants issued on *A* and the
applications for *A* with their approvals, rejections, revocations, freezes and closures (destruction proof); the jobs and
workflows requested under those grants, their settlement (``Credited``) and the payees'
withdrawals of that token; ratings of *A*; single hashes anchored that equal one of *A*'s
recorded hashes (quality report, final record, destruction proofs, manifest and its versions —
so an older deployment's ``DATASET_VERSION`` anchor of a version shows too) or anchored about
one of its jobs (``subjectId``, e.g. a key release); and operation-log
batches anchored, after *A* was registered, by a participant who acted on *A*.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from eth_utils import keccak

from audit.events import ChainEvent, ChainReader, iso_time, plain
from chain.errors import TdsError

ZERO = "0x" + "00" * 20
_DATASET_VERSION = keccak(text="DATASET_VERSION")   # chain.versions.DATASET_VERSION_KIND, older deployments
SHARES = ("provider", "algorithm-provider", "compute-provider", "operator", "refund")
FREEZE_AUTHORITY = ("none", "holder", "monitor", "regulator")
CLASSIFICATION = ("public", "internal", "sensitive", "confidential")
ASSET_STATE = ("none", "active", "frozen", "offline", "pending", "rejected")
ORIGIN = ("direct", "application", "signature")

# event name → (action, arg holding the actor, or None for "the contract itself")
ACTIONS: dict[tuple[str, str], tuple[str, str | None]] = {
    ("AssetRegistry", "AssetRegistered"): ("register", "provider"),
    ("AssetRegistry", "Transfer"): ("transfer", "from"),
    ("AssetRegistry", "AssetFrozen"): ("freeze", "by"),
    ("AssetRegistry", "AssetUnfrozen"): ("unfreeze", "by"),
    ("AssetRegistry", "AssetTakenOffline"): ("offline", "by"),
    ("AssetRegistry", "QualityReportUpdated"): ("quality", "by"),
    ("AssetRegistry", "DatasetVersionRecorded"): ("version", "by"),
    ("AssetRegistry", "ReviewRequested"): ("review-request", "submitter"),
    ("AssetRegistry", "ReviewDecided"): ("review", "reviewer"),
    ("Authorizations", "ApplicationSubmitted"): ("apply", "consumer"),
    ("Authorizations", "ApplicationApproved"): ("approve", "provider"),
    ("Authorizations", "ApplicationRejected"): ("reject", "provider"),
    ("Authorizations", "GrantIssued"): ("grant", "provider"),
    ("Authorizations", "GrantRevoked"): ("revoke", "by"),
    ("Authorizations", "GrantFrozen"): ("freeze", "by"),
    ("Authorizations", "GrantUnfrozen"): ("unfreeze", "by"),
    ("Authorizations", "GrantClosed"): ("destroy", "consumer"),
    ("Jobs", "JobRequested"): ("request", "consumer"),
    ("Jobs", "JobAccepted"): ("accept", "oracle"),
    ("Jobs", "JobCompleted"): ("complete", "oracle"),
    ("Jobs", "JobFailed"): ("fail", "oracle"),
    ("Jobs", "JobReclaimed"): ("reclaim", "consumer"),
    ("Jobs", "AnswerReleased"): ("release", "provider"),
    ("Jobs", "JobSettledWithoutOracle"): ("settle", "settler"),
    ("Jobs", "OracleFailureRecorded"): ("oracle-failure", None),
    ("Authorizations", "UseRestored"): ("restore-use", None),
    ("Authorizations", "OfferCancelled"): ("cancel-offer", "holder"),
    ("Jobs", "Credited"): ("credit", None),
    ("Jobs", "Withdrawn"): ("withdraw", "payee"),
    ("Jobs", "WorkflowRequested"): ("request-workflow", "consumer"),
    ("Jobs", "WorkflowStepOpened"): ("workflow-step", None),
    ("Jobs", "WorkflowCompleted"): ("workflow-complete", None),
    ("Jobs", "WorkflowStopped"): ("workflow-stop", None),
    ("Jobs", "PaymentHeld"): ("hold-payment", None),
    ("Jobs", "JobDisputed"): ("dispute", "consumer"),
    ("Jobs", "DisputeResolved"): ("decide-dispute", "arbitrator"),
    ("Jobs", "HeldPaymentReleased"): ("release-held", "by"),
    ("CertificateTemplates", "TemplateDisputeWindowSet"): ("dispute-window", "operator"),
    ("QualityRatings", "AssetRated"): ("rate", "consumer"),
    ("Evidence", "HashAnchored"): ("anchor", "producer"),
    ("Evidence", "BatchAnchored"): ("anchor", "producer"),
    ("Collaborations", "CollaborationRequested"): ("request-collaboration", "initiator"),
    ("Collaborations", "StepGrantConsumed"): ("collab-use", None),
    ("Collaborations", "StepOpened"): ("collab-step-open", None),
    ("Collaborations", "StepCompleted"): ("collab-step-complete", "coordinator"),
    ("Collaborations", "CollaborationCompleted"): ("collab-complete", None),
    ("Collaborations", "CollaborationTerminated"): ("collab-terminate", "by"),
    ("Collaborations", "Credited"): ("credit", None),
    ("Collaborations", "Withdrawn"): ("withdraw", "payee"),
    ("NodeRegistry", "NodeAdded"): ("node-add", None),
    ("NodeRegistry", "NodeStateChanged"): ("node-state", "operator"),
    ("NodeRegistry", "NodeRemoved"): ("node-remove", "operator"),
    ("TdsGovernor", "ProposalCreated"): ("propose", "proposer"),
    ("TdsGovernor", "VoteCast"): ("vote", "voter"),
    ("TdsGovernor", "ProposalQueued"): ("queue-proposal", None),
    ("TdsGovernor", "ProposalExecuted"): ("execute-proposal", None),
    ("TdsGovernor", "ProposalCanceled"): ("cancel-proposal", None),
    ("Membership", "MemberAdmitted"): ("admit-member", None),
    ("Membership", "MemberExpelled"): ("expel-member", None),
    ("Onboarding", "RoleApplicationSubmitted"): ("apply-role", "applicant"),
    ("Onboarding", "ReviewDecided"): ("review-application", "reviewer"),
    ("Onboarding", "RoleApplicationAdmitted"): ("admit-participant", "operator"),
}
REFUND_SHARE = 4  # IRevenueVault.Share.Refund
OBJECT_KEYS = {"assetId": "asset", "grantId": "grant", "applicationId": "application", "jobId": "job",
               "workflowId": "workflow", "batchId": "batch", "tokenId": "asset", "proposalId": "proposal",
               "roleApplicationId": "role-application"}


class UnknownAsset(TdsError):
    """No ``AssetRegistered`` event for the id."""


@dataclass
class TrailEntry:
    """One audit-trail line (000 §12.3.1.2)."""

    id: str
    actor: str
    actor_did: str | None
    time: int
    time_iso: str
    action: str
    object: dict[str, Any]
    result: str
    error_code: int | None = None
    event: str = ""
    contract: str = ""
    block: int = 0
    tx: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AssetScope:
    """The ids that belong to one asset's trail."""

    asset_id: int
    registered: ChainEvent
    grants: set[int] = field(default_factory=set)
    applications: set[int] = field(default_factory=set)
    jobs: set[int] = field(default_factory=set)
    workflows: set[int] = field(default_factory=set)
    collabs: set[int] = field(default_factory=set)
    hashes: dict[bytes, str] = field(default_factory=dict)  # recorded hash → what it is


def asset_scope(reader: ChainReader, asset_id: int) -> AssetScope:
    reg = reader.select("AssetRegistry", "AssetRegistered", assetId=asset_id)
    if not reg:
        raise UnknownAsset(f"unknown asset {asset_id}: no AssetRegistered event for it on chain {reader.chain_id}")
    s = AssetScope(asset_id, reg[0])
    a = reg[0].args
    s.hashes[bytes(a["qualityReportHash"])] = f"asset:{asset_id}:quality"
    s.hashes[bytes(a["manifestHash"])] = f"asset:{asset_id}:manifest"
    for ev in reader.select("AssetRegistry", "QualityReportUpdated", assetId=asset_id):
        s.hashes[bytes(ev.args["qualityReportHash"])] = f"asset:{asset_id}:quality"
    for ev in reader.select("AssetRegistry", "DatasetVersionRecorded", assetId=asset_id):
        s.hashes[bytes(ev.args["manifestHash"])] = f"asset:{asset_id}:version:{ev.args['version']}"
    for ev in reader.select("AssetRegistry", "AssetTakenOffline", assetId=asset_id):
        s.hashes[bytes(ev.args["finalRecordHash"])] = f"asset:{asset_id}:final-record"
    s.grants = {ev.args["grantId"] for ev in reader.select("Authorizations", "GrantIssued", assetId=asset_id)}
    s.applications = {ev.args["applicationId"]
                      for ev in reader.select("Authorizations", "ApplicationSubmitted", assetId=asset_id)}
    for ev in reader.select("Authorizations", "GrantClosed", grantId=set(s.grants)):
        s.hashes[bytes(ev.args["destructionProofHash"])] = f"grant:{ev.args['grantId']}:destruction"
    s.jobs = {ev.args["jobId"] for ev in reader.select("Jobs", "JobRequested", grantId=set(s.grants))}
    s.workflows = {ev.args["workflowId"] for ev in reader.select("Jobs", "WorkflowRequested", grantId=set(s.grants))}
    s.collabs = {ev.args["id"] for ev in reader.select("Collaborations", "StepGrantConsumed", grantId=set(s.grants))}
    s.hashes.pop(b"\x00" * 32, None)
    return s


def _legacy_version(ev: ChainEvent, s: AssetScope) -> bool:
    """An older deployment's dataset version: ``Evidence.anchorHash(hash, keccak("DATASET_VERSION"),
    assetId)`` by the provider that registered the asset (now recorded on the certificate: chain.versions)."""
    a = ev.args
    return bytes(a["kind"]) == _DATASET_VERSION and a.get("subjectId") == s.asset_id and \
        str(a["producer"]).lower() == str(s.registered.args["provider"]).lower()


def _belongs(ev: ChainEvent, s: AssetScope) -> bool:
    a = ev.args
    if ev.contract == "AssetRegistry":
        return a.get("assetId", a.get("tokenId", a.get("subjectId"))) == s.asset_id and \
            not (ev.name == "Transfer" and a["from"] == ZERO)
    if ev.contract == "Authorizations":
        return a.get("assetId") == s.asset_id or a.get("grantId") in s.grants or a.get("applicationId") in s.applications
    if ev.contract == "Jobs":
        return a.get("jobId") in s.jobs or a.get("workflowId") in s.workflows
    if ev.contract == "Collaborations":
        if ev.name == "Credited":  # a grant use's share (id = grantId << 32 | use) or a refund
            return a["jobId"] >> 32 in s.grants or (a["share"] == REFUND_SHARE and a["jobId"] in s.collabs)
        return a.get("id") in s.collabs
    if ev.contract == "QualityRatings":
        return a.get("assetId") == s.asset_id
    if ev.contract == "Evidence" and ev.name == "HashAnchored":
        # a hash equal to one the asset's events record, or anchored about one of its jobs
        # (job ids are grantId << 32 | use, so they cannot be confused with asset or grant ids)
        return bytes(a["hash"]) in s.hashes or a.get("subjectId") in s.jobs or _legacy_version(ev, s)
    return False


def _entry(reader: ChainReader, ev: ChainEvent, s: AssetScope | None = None) -> TrailEntry:
    action, actor_key = ACTIONS[(ev.contract, ev.name)]
    a = ev.args
    actor = a[actor_key] if actor_key else reader.contracts[ev.contract].address
    obj: dict[str, Any] = {OBJECT_KEYS[k]: v for k, v in a.items() if k in OBJECT_KEYS}
    detail = {k: plain(v) for k, v in a.items() if k not in OBJECT_KEYS and k != actor_key}
    result, code = "ok", None
    if ev.name == "JobFailed":
        result, code = "failed", a["reasonCode"]
    elif ev.name == "WorkflowStopped":
        result, code = "failed", a["reasonCode"]
    elif ev.name == "CollaborationTerminated":
        result, code = "failed", a["reasonCode"]
    elif ev.name == "ApplicationRejected":
        result = "rejected"
    elif ev.name == "JobDisputed":
        result = "disputed"
    elif ev.name == "DisputeResolved":  # the arbitrator's decision, by the share refunded
        result = {10_000: "refunded", 0: "released"}.get(a["refundBps"], "split")
    if ev.name == "Credited":
        obj["payee"] = a["payee"]
        detail["share"] = SHARES[a["share"]] if a["share"] < len(SHARES) else a["share"]
        detail["payee_did"] = reader.did_of(a["payee"], ev.position)
    if ev.name == "Transfer":
        obj["to"] = a["to"]
        detail["to_did"] = reader.did_of(a["to"], ev.position)
    if ev.name in ("AssetFrozen", "AssetUnfrozen", "GrantFrozen", "GrantUnfrozen"):
        key = "authority" if "authority" in a else "liftedAuthority"
        detail[key] = FREEZE_AUTHORITY[a[key]]
    if ev.name == "AssetRegistered":
        detail["classification"] = CLASSIFICATION[a["classification"]]
        obj["template"] = a["templateId"]
    if ev.name == "GrantIssued":
        detail["origin"] = ORIGIN[a["origin"]]
    if ev.name == "HashAnchored" and s is not None:
        obj["hash"] = "0x" + bytes(a["hash"]).hex()
        detail["matches"] = s.hashes.get(bytes(a["hash"]))
    if ev.name == "Withdrawn":
        obj["payee"] = a["payee"]
    if ev.contract == "AssetRegistry" and "subjectId" in a:  # operator review of a certificate
        obj["asset"] = a["subjectId"]
        if ev.name == "ReviewDecided":
            result = "approved" if a["approved"] else "rejected"
    if ev.contract == "Onboarding" and "subjectId" in a:  # operator review of a participant application
        obj["role-application"] = a["subjectId"]
        if ev.name == "ReviewDecided":
            result = "approved" if a["approved"] else "rejected"
    if ev.contract == "CertificateTemplates":
        obj["template"] = a["templateId"]
    if ev.contract == "Membership":  # a membership token, not a certificate
        obj = {"member": a["member"], "membership": a["tokenId"]}
    if ev.contract == "Collaborations" and "id" in a:
        obj["collaboration"] = a["id"]
        if "step" in a:
            obj["step"] = a["step"]
    ts = reader.block_time(ev.block)
    return TrailEntry(id=ev.uid, actor=actor, actor_did=reader.did_of(actor, ev.position), time=ts,
                      time_iso=iso_time(ts), action=action, object=obj, result=result, error_code=code,
                      event=ev.name, contract=ev.contract, block=ev.block, tx=ev.tx, detail=detail)


def asset_events(reader: ChainReader, asset_id: int) -> tuple[AssetScope, list[ChainEvent]]:
    """The chain events of one asset's trail, in chain order."""
    s = asset_scope(reader, asset_id)
    events = [ev for ev in reader.events if (ev.contract, ev.name) in ACTIONS and _belongs(ev, s)]
    # withdrawals of the token by payees this asset's jobs credited, after their first credit
    first_credit: dict[tuple[str, str, str], tuple[int, int]] = {}
    for ev in events:
        if ev.name == "Credited":
            first_credit.setdefault((ev.contract, ev.args["payee"], ev.args["token"]), ev.position)
    for ev in reader.select("Jobs", "Withdrawn") + reader.select("Collaborations", "Withdrawn"):
        start = first_credit.get((ev.contract, ev.args["payee"], ev.args["token"]))
        if start is not None and ev.position > start:
            events.append(ev)
    # operation-log batches anchored by a participant of this trail, after registration
    actors = {ev.args.get(k) for ev in events for k in ("provider", "consumer", "oracle", "by", "payee")}
    actors.discard(None)
    for ev in reader.select("Evidence", "BatchAnchored"):
        if ev.args["producer"] in actors and ev.position > s.registered.position:
            events.append(ev)
    events.sort(key=lambda e: e.position)
    return s, events


def chain_entries(reader: ChainReader, keep: Callable[[ChainEvent], bool] | None = None) -> list[TrailEntry]:
    """Trail entries of every audited event ``keep`` accepts (all when None), in chain order,
    across the whole deployment (no asset scope): the audit log as one stream. A mint's
    ``Transfer`` from zero is left out, as in a trail (its ``AssetRegistered`` says it)."""
    return [_entry(reader, ev) for ev in reader.events
            if (ev.contract, ev.name) in ACTIONS and not (ev.name == "Transfer" and ev.args["from"] == ZERO)
            and (keep is None or keep(ev))]


def build_trail(reader: ChainReader, asset_id: int) -> list[TrailEntry]:
    """Who did what to asset ``asset_id``, when, with what result — from chain events alone."""
    s, events = asset_events(reader, asset_id)
    return [_entry(reader, ev, s) for ev in events]


def asset_summary(reader: ChainReader, asset_id: int) -> dict[str, Any]:
    """The catalog view of an asset: its registration event plus its current on-chain state."""
    s = asset_scope(reader, asset_id)
    a = s.registered.args
    reg = reader.contracts["AssetRegistry"].functions
    holder, state, allowed_ops, _split = reg.termsOf(asset_id).call()
    rating = reader.contracts["QualityRatings"].functions.ratingOf(asset_id).call()
    return {
        "assetId": asset_id,
        "provider": a["provider"],
        "provider_did": reader.did_of(a["provider"], s.registered.position),
        "holder": holder,
        "holder_did": reader.did_of(holder),
        "state": ASSET_STATE[state],
        "templateId": a["templateId"],
        "classification": CLASSIFICATION[a["classification"]],
        "contentCid": plain(a["contentCid"]),
        "metadataCid": plain(a["metadataCid"]),
        "manifestHash": plain(a["manifestHash"]),
        "qualityReportHash": plain(a["qualityReportHash"]),
        "allowedOps": allowed_ops,
        "registered": {"block": s.registered.block, "tx": s.registered.tx,
                       "time": iso_time(reader.block_time(s.registered.block))},
        "grants": sorted(s.grants),
        "jobs": sorted(s.jobs),
        "rating": {"count": rating[0], "sum": rating[1], "mean": rating[2] / 100},
    }


def catalog(reader: ChainReader) -> list[dict[str, Any]]:
    """Every registered asset (the catalog is the AssetRegistered event stream)."""
    return [asset_summary(reader, i) for i in reader.asset_ids()]


def job_summary(reader: ChainReader, job_id: int) -> dict[str, Any] | None:
    """A job's request, its progress events and its settlement; None if never requested."""
    req = reader.select("Jobs", "JobRequested", jobId=job_id)
    if not req:
        return None
    r = req[0].args
    grant = reader.select("Authorizations", "GrantIssued", grantId=r["grantId"])
    history = [e.to_dict() for e in chain_entries(
        reader, lambda ev: ev.contract == "Jobs" and ev.args.get("jobId") == job_id)]
    status = {"JobRequested": "requested", "JobAccepted": "accepted", "AnswerReleased": "released",
              "JobCompleted": "completed", "JobFailed": "failed", "JobReclaimed": "reclaimed"}
    last = [h["event"] for h in history if h["event"] in status]
    done = reader.select("Jobs", "JobCompleted", jobId=job_id)
    return {
        "jobId": job_id,
        "grantId": r["grantId"],
        "assetId": grant[0].args["assetId"] if grant else None,
        "consumer": r["consumer"],
        "operation": r["operation"],
        "paramsHash": plain(r["paramsHash"]),
        "paymentToken": r["paymentToken"],
        "amount": str(r["amount"]),
        "deadline": r["deadline"],
        "status": status[last[-1]] if last else "requested",
        "result": ({"resultCid": plain(done[0].args["resultCid"]), "resultHash": plain(done[0].args["resultHash"]),
                    "oracle": done[0].args["oracle"]} if done else None),
        "history": history,
    }
