"""The index's current-state tables for assets, grants, jobs (and the templates and identities
they need), kept up to date event by event, and rebuilt from the raw events after a reorg;
:func:`apply_event` also updates the workflow and payment tables (:mod:`audit.index_flows`) and
the oversight tables (:mod:`audit.index_oversight`). Pure SQLAlchemy Core statements: the same code runs on SQLite and
PostgreSQL. Applying the events of a deployment in chain order reproduces what the contracts
hold (holder, state, uses, job status), so a rebuild from empty gives the same rows.
"""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from audit.events import ChainEvent, UNVERIFIED, plain
from audit.index_flows import apply_flow_event
from audit.index_oversight import apply_oversight_event
from audit.index_tables import STATE_TABLES, assets, dataset_versions, grants, identities, jobs, templates
from audit.trail import ASSET_STATE, CLASSIFICATION, ZERO

DOWNLOAD = 32  # chain.ops.DOWNLOAD: a confidential certificate never allows it (AssetRegistry.mint)
CONFIDENTIAL = 3
JOB_STATUS = {"JobAccepted": "accepted", "AnswerReleased": "released", "JobCompleted": "completed",
              "JobFailed": "failed", "JobReclaimed": "reclaimed"}


def _hex(value: Any) -> str:
    return plain(value) if isinstance(value, (bytes, bytearray)) else str(value)


def _proof_verifies(ev: ChainEvent, chain_id: int) -> bool:
    """The same check :meth:`audit.events.ChainReader._proof_verifies` makes (the indexer put the
    proof from the transaction input into ``ev.args``: :func:`audit.events.with_published_proof`)."""
    from did.binding import check_published_binding
    from did.errors import DidNotBound

    raw = ev.args.get("bindingProof")
    try:
        if raw is None:
            raise DidNotBound("no binding proof in the bind transaction's input")
        check_published_binding(bytes(raw), did=ev.args["did"], address=ev.args["account"], chain_id=chain_id)
        return True
    except DidNotBound:
        return False


def shown_did(conn: Connection, account: str) -> str | None:
    """The DID ``account`` is bound to now as the trail shows it (``unverified:`` prefix), or None."""
    row = conn.execute(select(identities.c.did, identities.c.verified).where(identities.c.account == account)).first()
    if row is None:
        return None
    return row.did if row.verified else UNVERIFIED + row.did


def _registered(conn: Connection, ev: ChainEvent, block_time: int) -> None:
    a = ev.args
    ops = conn.execute(select(templates.c.allowed_ops).where(templates.c.template_id == a["templateId"])).scalar()
    ops = int(ops or 0)
    if a["classification"] == CONFIDENTIAL:
        ops &= ~DOWNLOAD
    conn.execute(insert(assets).values(
        asset_id=a["assetId"], provider=a["provider"], provider_did=shown_did(conn, a["provider"]),
        holder=a["provider"], state="active", classification=CLASSIFICATION[a["classification"]],
        template_id=a["templateId"], allowed_ops=ops, content_cid=_hex(a["contentCid"]),
        metadata_cid=_hex(a["metadataCid"]), manifest_hash=_hex(a["manifestHash"]),
        quality_report_hash=_hex(a["qualityReportHash"]), registered_block=ev.block, registered_tx=ev.tx,
        registered_log=ev.log_index, registered_time=block_time, rating_count=0, rating_sum=0, latest_version=0))
    conn.execute(insert(dataset_versions).values(
        asset_id=a["assetId"], version=0, manifest_hash=_hex(a["manifestHash"]), previous_hash=None,
        by=a["provider"], block=ev.block, tx=ev.tx, time=block_time))


def _version(conn: Connection, ev: ChainEvent, block_time: int) -> None:
    """A version recorded on the certificate (the contract checked its order and holder)."""
    a = ev.args
    conn.execute(insert(dataset_versions).values(
        asset_id=a["assetId"], version=a["version"], manifest_hash=_hex(a["manifestHash"]),
        previous_hash=_hex(a["previousHash"]), by=a["by"], block=ev.block, tx=ev.tx, time=block_time))
    conn.execute(_asset(a["assetId"], latest_version=a["version"]))


def _asset(asset_id: int, **values: Any) -> Any:
    return update(assets).where(assets.c.asset_id == asset_id).values(**values)


def _grant(grant_id: int, **values: Any) -> Any:
    return update(grants).where(grants.c.grant_id == grant_id).values(**values)


def _job(job_id: int, **values: Any) -> Any:
    return update(jobs).where(jobs.c.job_id == job_id).values(**values)


def apply_event(conn: Connection, ev: ChainEvent, block_time: int, chain_id: int) -> None:
    """Bring the state tables up to date with one event (events must come in chain order)."""
    a, key = ev.args, (ev.contract, ev.name)
    if key == ("CertificateTemplates", "TemplatePublished"):
        conn.execute(delete(templates).where(templates.c.template_id == a["templateId"]))
        conn.execute(insert(templates).values(template_id=a["templateId"], allowed_ops=a["allowedOps"]))
    elif key == ("IdentityRegistry", "IdentityBound"):
        conn.execute(delete(identities).where(identities.c.account == a["account"]))
        conn.execute(insert(identities).values(account=a["account"], did=a["did"],
                                               verified=_proof_verifies(ev, chain_id)))
    elif key == ("AssetRegistry", "AssetRegistered"):
        _registered(conn, ev, block_time)
    elif key == ("AssetRegistry", "Transfer") and a["from"] != ZERO:
        conn.execute(_asset(a["tokenId"], holder=a["to"]))
    elif ev.contract == "AssetRegistry" and ev.name in ("AssetFrozen", "AssetUnfrozen", "AssetTakenOffline"):
        state = {"AssetFrozen": 2, "AssetUnfrozen": 1, "AssetTakenOffline": 3}[ev.name]
        conn.execute(_asset(a["assetId"], state=ASSET_STATE[state]))
    elif key == ("AssetRegistry", "ReviewRequested"):  # minted under a template that requires review
        conn.execute(_asset(a["subjectId"], state=ASSET_STATE[4]))
    elif key == ("AssetRegistry", "ReviewDecided"):
        conn.execute(_asset(a["subjectId"], state=ASSET_STATE[1 if a["approved"] else 5]))
    elif key == ("AssetRegistry", "DatasetVersionRecorded"):
        _version(conn, ev, block_time)
    elif key == ("AssetRegistry", "QualityReportUpdated"):
        conn.execute(_asset(a["assetId"], quality_report_hash=_hex(a["qualityReportHash"])))
    elif key == ("QualityRatings", "AssetRated"):
        conn.execute(_asset(a["assetId"], rating_count=assets.c.rating_count + 1,
                            rating_sum=assets.c.rating_sum + int(a["score"])))
    elif key == ("Authorizations", "GrantIssued"):
        terms = a["terms"]
        conn.execute(insert(grants).values(grant_id=a["grantId"], asset_id=a["assetId"], consumer=a["consumer"],
                                           provider=a["provider"], status="active", frozen=False, uses=0, restored=0,
                                           max_uses=int(terms["maxUses"])))
    elif key == ("Authorizations", "GrantRevoked"):
        conn.execute(_grant(a["grantId"], status="revoked"))
    elif key == ("Authorizations", "GrantClosed"):
        conn.execute(_grant(a["grantId"], status="closed"))
    elif key in (("Authorizations", "GrantFrozen"), ("Authorizations", "GrantUnfrozen")):
        conn.execute(_grant(a["grantId"], frozen=ev.name == "GrantFrozen"))
    elif key == ("Authorizations", "UseRestored"):
        conn.execute(_grant(a["grantId"], restored=a["restored"]))  # a count of its own: uses never falls
    elif key == ("Jobs", "JobRequested"):
        conn.execute(insert(jobs).values(job_id=a["jobId"], grant_id=a["grantId"], asset_id=a["assetId"],
                                         consumer=a["consumer"], status="requested", amount=str(a["amount"]),
                                         oracle=None, result_hash=None, operation=a["operation"],
                                         params_hash=_hex(a["paramsHash"]), payment_token=a["paymentToken"],
                                         deadline=a["deadline"], result_cid=None, workflow_id=None,
                                         requested_block=ev.block))
        conn.execute(_grant(a["grantId"], uses=grants.c.uses + 1))
    elif ev.contract == "Jobs" and ev.name in JOB_STATUS:
        values: dict[str, Any] = {"status": JOB_STATUS[ev.name]}
        if ev.name in ("JobAccepted", "JobCompleted"):
            values["oracle"] = a["oracle"]
        if ev.name == "JobCompleted":
            values["result_hash"] = _hex(a["resultHash"])
            values["result_cid"] = _hex(a["resultCid"])
        conn.execute(_job(a["jobId"], **values))
    apply_flow_event(conn, ev, block_time)
    apply_oversight_event(conn, ev, block_time)


def rebuild_state(conn: Connection, replay: Callable[[], Any], chain_id: int) -> int:
    """Empty the state tables and re-apply every stored event ``replay()`` yields as
    ``(ChainEvent, block_time)``, in chain order; returns how many were applied."""
    for table in reversed(STATE_TABLES):
        conn.execute(delete(table))
    n = 0
    for ev, block_time in replay():
        apply_event(conn, ev, block_time, chain_id)
        n += 1
    return n
