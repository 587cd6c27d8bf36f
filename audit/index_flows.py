"""The index's workflow and payment tables, kept current event by event: the Jobs contract's
workflows (kind ``jobs``: each step is a job under one grant) and the collaborations (kind
``collaboration``: steps over several grants, run by compute nodes), with every step's status and
result hash; the grant uses each collaboration step consumed; and every ``Credited`` /
``Withdrawn`` of both revenue vaults (Jobs and Collaborations). Status names follow the contracts
(``IJobs.WorkflowStatus``, ``ICollaborations.StepStatus``).
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, insert, update
from sqlalchemy.engine import Connection

from audit.events import ChainEvent, plain
from audit.index_tables import collab_uses, grants, jobs, payments, workflow_steps, workflows
from audit.trail import SHARES

JOBS, COLLAB = "jobs", "collaboration"
REASON_CANCELLED = 0xFFFE  # Collaborations.REASON_CANCELLED: the initiator cancelled, no step failed


def _hex(value: Any) -> str:
    return plain(value) if isinstance(value, (bytes, bytearray)) else str(value)


def _flow(kind: str, flow_id: int, **values: Any) -> Any:
    return update(workflows).where(workflows.c.kind == kind, workflows.c.workflow_id == flow_id).values(**values)


def _step(kind: str, flow_id: int, step: int | None = None, *status_in: str) -> Any:
    where = [workflow_steps.c.kind == kind, workflow_steps.c.workflow_id == flow_id]
    if step is not None:
        where.append(workflow_steps.c.step == step)
    if status_in:
        where.append(workflow_steps.c.status.in_(status_in))
    return update(workflow_steps).where(and_(*where))


def _requested(conn: Connection, kind: str, flow_id: int, initiator: str, steps: int, block: int, when: int,
               ops: list[int] | None = None, params: list[bytes] | None = None, **values: Any) -> None:
    conn.execute(insert(workflows).values(kind=kind, workflow_id=flow_id, initiator=initiator, status="running",
                                          step_count=steps, requested_block=block, requested_time=when, **values))
    conn.execute(insert(workflow_steps), [
        {"kind": kind, "workflow_id": flow_id, "step": i, "status": "pending",
         "operation": ops[i] if ops else None, "params_hash": _hex(params[i]) if params else None}
        for i in range(steps)])


def _jobs_event(conn: Connection, ev: ChainEvent, when: int) -> None:
    a, name = ev.args, ev.name
    if name == "WorkflowRequested":
        _requested(conn, JOBS, a["workflowId"], a["consumer"], len(a["operations"]), ev.block, when,
                   list(a["operations"]), list(a["paramsHashes"]), grant_id=a["grantId"],
                   step_timeout=a["stepTimeout"])
    elif name == "WorkflowStepOpened":
        conn.execute(_step(JOBS, a["workflowId"], a["step"]).values(status="open", job_id=a["jobId"],
                                                                   opened_block=ev.block))
        conn.execute(update(jobs).where(jobs.c.job_id == a["jobId"]).values(workflow_id=a["workflowId"]))
    elif name in ("JobCompleted", "JobFailed", "JobReclaimed"):
        values: dict[str, Any] = {"status": "completed" if name == "JobCompleted" else "failed",
                                  "ended_block": ev.block}
        if name == "JobCompleted":
            values.update(result_hash=_hex(a["resultHash"]), result_cid=_hex(a["resultCid"]), coordinator=a["oracle"])
        conn.execute(update(workflow_steps).where(workflow_steps.c.kind == JOBS, workflow_steps.c.job_id == a["jobId"])
                     .values(**values))
    elif name == "WorkflowCompleted":
        conn.execute(_flow(JOBS, a["workflowId"], status="completed", ended_block=ev.block))
    elif name == "WorkflowStopped":
        conn.execute(_flow(JOBS, a["workflowId"], status="stopped", stopped_step=a["step"],
                           reason_code=a["reasonCode"], refund=str(a["refunded"]), ended_block=ev.block))
        conn.execute(_step(JOBS, a["workflowId"], None, "pending").values(status="cancelled", ended_block=ev.block))


def _collab_event(conn: Connection, ev: ChainEvent, when: int) -> None:
    a, name = ev.args, ev.name
    if name == "CollaborationRequested":
        _requested(conn, COLLAB, a["id"], a["initiator"], a["stepCount"], ev.block, when,
                   payment_token=a["paymentToken"], amount=str(a["amount"]), step_timeout=a["stepTimeout"],
                   description_hash=_hex(a["descriptionHash"]))
    elif name == "StepGrantConsumed":
        conn.execute(insert(collab_uses).values(collab_id=a["id"], use_id=a["useId"], step=a["step"],
                                                grant_id=a["grantId"], asset_id=a["assetId"], price=str(a["price"])))
        conn.execute(update(grants).where(grants.c.grant_id == a["grantId"]).values(uses=grants.c.uses + 1))
    elif name == "StepOpened":
        conn.execute(_step(COLLAB, a["id"], a["step"]).values(
            status="open", operation=a["operation"], params_hash=_hex(a["paramsHash"]),
            nodes=json.dumps(list(a["nodes"])), deadline=a["deadline"], opened_block=ev.block))
    elif name == "StepCompleted":
        conn.execute(_step(COLLAB, a["id"], a["step"]).values(
            status="completed", coordinator=a["coordinator"], result_hash=_hex(a["resultHash"]),
            result_cid=_hex(a["resultCid"]), ended_block=ev.block))
    elif name == "CollaborationCompleted":
        conn.execute(_flow(COLLAB, a["id"], status="completed", ended_block=ev.block))
    elif name == "CollaborationTerminated":
        conn.execute(_flow(COLLAB, a["id"], status="terminated", stopped_step=a["step"], reason_code=a["reasonCode"],
                           refund=str(a["refund"]), ended_block=ev.block))
        if a["reasonCode"] != REASON_CANCELLED:  # failStep: that step failed, the others are cancelled
            conn.execute(_step(COLLAB, a["id"], a["step"], "open", "pending").values(status="failed",
                                                                                      ended_block=ev.block))
        conn.execute(_step(COLLAB, a["id"], None, "open", "pending").values(status="cancelled", ended_block=ev.block))


def apply_flow_event(conn: Connection, ev: ChainEvent, when: int) -> None:
    """Bring workflows, collaboration steps and payments up to date with one event (chain order)."""
    if ev.name == "Credited" and ev.contract in ("Jobs", "Collaborations"):
        a = ev.args
        conn.execute(insert(payments).values(
            block=ev.block, log_index=ev.log_index, contract=ev.contract, kind="credit", payee=a["payee"],
            token=a["token"], job_id=a["jobId"], amount=str(a["amount"]),
            share=SHARES[a["share"]] if a["share"] < len(SHARES) else str(a["share"]), tx=ev.tx))
    elif ev.name == "Withdrawn" and ev.contract in ("Jobs", "Collaborations"):
        a = ev.args
        conn.execute(insert(payments).values(block=ev.block, log_index=ev.log_index, contract=ev.contract,
                                             kind="withdraw", payee=a["payee"], token=a["token"], job_id=None,
                                             amount=str(a["amount"]), share=None, tx=ev.tx))
    elif ev.contract == "Jobs":
        _jobs_event(conn, ev, when)
    elif ev.contract == "Collaborations":
        _collab_event(conn, ev, when)
