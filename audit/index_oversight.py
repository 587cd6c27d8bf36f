"""The index's tables for oversight, kept current event by event: participants' roles (the
IdentityRegistry's ``ParticipantRoleGranted`` / ``ParticipantRoleRevoked``; the DIDs themselves
are in ``identities``), compute and party nodes (NodeRegistry: state, endpoint, last heartbeat),
alerts (a freeze of a grant or an asset by the monitor or the regulator, with its reason code and
when it was lifted; every ``OracleFailureRecorded``), what Evidence anchored (operation-log
batches, single hashes), and disputes of completed jobs (held shares, the consumer's dispute, the
arbitrator's decision or the release after the window: docs/disputes.md).
"""
from __future__ import annotations

from typing import Any

from eth_utils import keccak
from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Connection

from audit.events import ChainEvent, plain
from audit.index_tables import alerts, anchors, disputes, log_batches, nodes, participant_roles
from audit.trail import FREEZE_AUTHORITY

ROLE_NAMES = {"0x" + keccak(text=n).hex(): n for n in (
    "PROVIDER", "CONSUMER", "OPERATOR", "REGULATOR", "DEVELOPER", "ALGORITHM_PROVIDER", "COMPUTE_PROVIDER",
    "MONITOR", "JOBS")}  # contracts/libraries/TdsRoles.sol
NODE_KIND = ("none", "compute", "party")  # INodeRegistry.NodeKind
NODE_STATE = ("none", "active", "disabled")  # INodeRegistry.NodeState
OVERSIGHT = ("monitor", "regulator")  # freeze authorities whose freezes are alerts (a holder's is not)


def role_name(role: bytes) -> str:
    """``PROVIDER`` for keccak256("PROVIDER"); the 0x-hex id for a role this code does not know."""
    text = "0x" + bytes(role).hex()
    return ROLE_NAMES.get(text, text)


def _hex(value: Any) -> str:
    return plain(value) if isinstance(value, (bytes, bytearray)) else str(value)


def _freeze(conn: Connection, ev: ChainEvent, when: int, kind: str, subject: int) -> None:
    a = ev.args
    if ev.name.endswith("Frozen") and not ev.name.endswith("Unfrozen"):
        authority = FREEZE_AUTHORITY[a["authority"]]
        if authority in OVERSIGHT:
            conn.execute(insert(alerts).values(block=ev.block, log_index=ev.log_index, kind=kind, subject=subject,
                                               by=a["by"], authority=authority, reason_code=a["reasonCode"],
                                               failures=None, lifted_block=None, time=when, tx=ev.tx))
    else:  # the freeze is lifted: so is its alert
        conn.execute(update(alerts).where(alerts.c.kind == kind, alerts.c.subject == subject,
                                          alerts.c.lifted_block.is_(None)).values(lifted_block=ev.block))


def _node(conn: Connection, ev: ChainEvent) -> None:
    a, name = ev.args, ev.name
    where = nodes.c.address == a.get("node")
    if name == "NodeAdded":
        conn.execute(delete(nodes).where(where))  # a node removed earlier may be added again
        conn.execute(insert(nodes).values(address=a["node"], kind=NODE_KIND[a["kind"]], name=a["name"],
                                          endpoint=a["endpoint"], state="active", reason_code=0,
                                          did_hash=_hex(a["didHash"]), key_agreement_key=_hex(a["keyAgreementKey"]),
                                          added_block=ev.block, last_heartbeat=None, heartbeat_block=None))
    elif name == "NodeStateChanged":
        conn.execute(update(nodes).where(where).values(state=NODE_STATE[a["state"]], reason_code=a["reasonCode"]))
    elif name == "NodeRemoved":
        conn.execute(update(nodes).where(where).values(state="removed"))
    elif name == "NodeEndpointChanged":
        conn.execute(update(nodes).where(where).values(endpoint=a["endpoint"]))
    elif name == "NodeHeartbeat":
        conn.execute(update(nodes).where(where).values(last_heartbeat=a["at"], heartbeat_block=ev.block))


def _dispute(conn: Connection, ev: ChainEvent) -> None:
    a, name = ev.args, ev.name
    where = disputes.c.job_id == a["jobId"]
    if name == "PaymentHeld":
        conn.execute(insert(disputes).values(job_id=a["jobId"], grant_id=a["jobId"] >> 32, status="held",
                                             held=str(a["amount"]), disputable_until=a["disputableUntil"],
                                             held_block=ev.block))
    elif name == "JobDisputed":
        conn.execute(update(disputes).where(where).values(status="disputed", consumer=a["consumer"],
                                                          reason_hash=_hex(a["reasonHash"]), disputed_block=ev.block))
    elif name == "DisputeResolved":
        conn.execute(update(disputes).where(where).values(
            status="resolved", arbitrator=a["arbitrator"], refund_bps=a["refundBps"], refunded=str(a["refunded"]),
            released=str(a["released"]), decision_hash=_hex(a["decisionHash"]), ended_block=ev.block))
    else:  # HeldPaymentReleased
        conn.execute(update(disputes).where(where).values(status="released", released=str(a["amount"]),
                                                          ended_block=ev.block))


DISPUTE_EVENTS = ("PaymentHeld", "JobDisputed", "DisputeResolved", "HeldPaymentReleased")


def apply_oversight_event(conn: Connection, ev: ChainEvent, when: int) -> None:
    """Bring roles, nodes, alerts and anchors up to date with one event (events in chain order)."""
    a, key = ev.args, (ev.contract, ev.name)
    if key == ("IdentityRegistry", "ParticipantRoleGranted"):
        role = role_name(a["role"])
        conn.execute(delete(participant_roles).where(participant_roles.c.account == a["account"],
                                                     participant_roles.c.role == role))
        conn.execute(insert(participant_roles).values(account=a["account"], role=role,
                                                      credential_hash=_hex(a["credentialHash"]),
                                                      valid_until=a["validUntil"], granted_block=ev.block))
    elif key == ("IdentityRegistry", "ParticipantRoleRevoked"):
        conn.execute(delete(participant_roles).where(participant_roles.c.account == a["account"],
                                                     participant_roles.c.role == role_name(a["role"])))
    elif key in (("Authorizations", "GrantFrozen"), ("Authorizations", "GrantUnfrozen")):
        _freeze(conn, ev, when, "grant-frozen", a["grantId"])
    elif key in (("AssetRegistry", "AssetFrozen"), ("AssetRegistry", "AssetUnfrozen")):
        _freeze(conn, ev, when, "asset-frozen", a["assetId"])
    elif key == ("Jobs", "OracleFailureRecorded"):
        conn.execute(insert(alerts).values(block=ev.block, log_index=ev.log_index, kind="oracle-failure",
                                           subject=a["jobId"], by=a["oracle"], authority=None,
                                           reason_code=a["reasonCode"], failures=a["failures"], lifted_block=None,
                                           time=when, tx=ev.tx))
    elif ev.contract == "NodeRegistry":
        _node(conn, ev)
    elif ev.contract == "Jobs" and ev.name in DISPUTE_EVENTS:
        _dispute(conn, ev)
    elif key == ("Evidence", "BatchAnchored"):
        conn.execute(insert(log_batches).values(batch_id=a["batchId"], producer=a["producer"], root=_hex(a["root"]),
                                                count=a["count"], period_start=a["periodStart"],
                                                period_end=a["periodEnd"], batch_ref=_hex(a["batchRef"]),
                                                block=ev.block, tx=ev.tx))
    elif key == ("Evidence", "HashAnchored"):
        conn.execute(insert(anchors).values(block=ev.block, log_index=ev.log_index, hash=_hex(a["hash"]),
                                            producer=a["producer"], kind=_hex(a["kind"]),
                                            subject_id=a.get("subjectId"), tx=ev.tx))
