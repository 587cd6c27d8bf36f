"""The Python side of disputes of completed jobs (contracts/jobs/JobDisputes.sol, docs/disputes.md):
the template's dispute window, the held shares of a job, the consumer's dispute, the regulator's
decision and the release of undisputed shares. Each function is one call or one transaction.
The reason and decision documents go to the content store (in the callers); only their sha-256
reaches the chain, so the document's CIDv1 (raw) follows from the hash, as for job parameters."""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from chain.params import params_cid, params_hash
from chain.space import Space

FULL_REFUND_BPS = 10_000


class HoldStatus(IntEnum):
    """``IJobDisputes.HoldStatus``: what became of the shares held when a job completed."""

    NONE = 0  # nothing held: completed without a dispute window (or not completed)
    HELD = 1
    DISPUTED = 2
    RELEASED = 3
    RESOLVED = 4


@dataclass(frozen=True)
class Hold:
    """The held payment of one job."""

    job_id: int
    amount: int  # wei (or token units) still in escrow: every share but the operator's
    until: int  # end of the dispute window (unix seconds)
    status: HoldStatus
    compute_to_holder: bool  # settled without its oracle: the compute share goes to the holder

    def to_dict(self) -> dict[str, Any]:
        return {"jobId": self.job_id, "amount": self.amount, "disputableUntil": self.until,
                "status": self.status.name.lower(), "computeToHolder": self.compute_to_holder}


@dataclass(frozen=True)
class Dispute:
    """An open dispute as the chain recorded it (JobDisputed), with its hold."""

    job_id: int
    consumer: str
    reason_hash: bytes
    block: int
    tx: str
    hold: Hold

    def to_dict(self) -> dict[str, Any]:
        return {"jobId": self.job_id, "consumer": self.consumer, "reasonHash": "0x" + self.reason_hash.hex(),
                "block": self.block, "tx": self.tx} | {"hold": self.hold.to_dict()}


# documents ---------------------------------------------------------------------------------
def document_bytes(doc: dict[str, Any]) -> bytes:
    """A reason or decision document as stored: canonical JSON (sorted keys, no spaces, UTF-8)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def document_hash(data: bytes) -> bytes:
    """What goes on chain for a document: its sha-256 (the digest inside its CIDv1 raw)."""
    return params_hash(data)


def document_cid(digest: bytes) -> str:
    """The content-store CID (v1, raw, sha2-256) of the document whose on-chain hash is ``digest``."""
    return params_cid(digest)


# the template's window ---------------------------------------------------------------------
def set_dispute_window(space: Space, operator: LocalAccount, template_id: int, seconds: int) -> Any:
    """The operator: jobs under certificates of ``template_id`` may be disputed for ``seconds``
    after they complete (0 = paid at completion). A grant keeps the window of its first completion."""
    return space.send(operator, space.c["CertificateTemplates"].functions.setDisputeWindow(template_id, seconds))


def dispute_window(space: Space, template_id: int) -> int:
    return int(space.c["CertificateTemplates"].functions.disputeWindow(template_id).call())


# one job -----------------------------------------------------------------------------------
def hold_of(space: Space, job_id: int) -> Hold:
    amount, until, status, to_holder = space.c["Jobs"].functions.holdOf(job_id).call()
    return Hold(job_id, amount, until, HoldStatus(status), bool(to_holder))


def dispute_job(space: Space, consumer: LocalAccount, job_id: int, reason_hash: bytes) -> Any:
    """The job's consumer disputes it within its window (``reason_hash``: :func:`document_hash` of the reason)."""
    return space.send(consumer, space.c["Jobs"].functions.disputeJob(job_id, reason_hash))


def resolve_dispute(space: Space, regulator: LocalAccount, job_id: int, refund_bps: int,
                    decision_hash: bytes) -> dict[str, Any]:
    """The regulator decides: ``refund_bps`` of the held amount to the consumer, the rest to the
    payees pro rata. Returns the DisputeResolved event's arguments (refunded, released …)."""
    r = space.send(regulator, space.c["Jobs"].functions.resolveDispute(job_id, refund_bps, decision_hash))
    ev = space.c["Jobs"].events.DisputeResolved().process_receipt(r, errors=DISCARD)[0]["args"]
    return dict(ev) | {"tx": "0x" + bytes(r["transactionHash"]).hex()}


def release_held(space: Space, account: LocalAccount, job_ids: list[int]) -> Any:
    """Anyone: credit the held shares of undisputed jobs whose window has passed to their payees."""
    return space.send(account, space.c["Jobs"].functions.releaseHeld(list(job_ids)))


# many jobs, from events --------------------------------------------------------------------
def open_disputes(space: Space, from_block: int | None = None) -> list[Dispute]:
    """Every dispute still waiting for the regulator's decision, oldest first."""
    jobs = space.c["Jobs"]
    start = int(space.deployment["block"] if from_block is None else from_block)
    out = []
    for e in jobs.events.JobDisputed().get_logs(from_block=start):
        hold = hold_of(space, e["args"]["jobId"])
        if hold.status == HoldStatus.DISPUTED:
            out.append(Dispute(e["args"]["jobId"], e["args"]["consumer"], bytes(e["args"]["reasonHash"]),
                               e["blockNumber"], "0x" + bytes(e["transactionHash"]).hex(), hold))
    return out


def releasable(space: Space, payee: str | None = None, from_block: int | None = None) -> list[int]:
    """Jobs whose held shares may be released now (undisputed, window passed); with ``payee``, only
    jobs that pay it (the holder, algorithm provider or oracle named by the job's grant and events)."""
    jobs = space.c["Jobs"]
    start = int(space.deployment["block"] if from_block is None else from_block)
    now = space.now()
    ids = []
    for e in jobs.events.PaymentHeld().get_logs(from_block=start):
        job_id = e["args"]["jobId"]
        hold = hold_of(space, job_id)
        if hold.status != HoldStatus.HELD or hold.until >= now:
            continue
        if payee is None or payee.lower() in {a.lower() for a in payees_of(space, job_id)}:
            ids.append(job_id)
    return ids


def payees_of(space: Space, job_id: int) -> set[str]:
    """Who a release of ``job_id``'s held shares would credit: holder, algorithm provider, oracle."""
    core, exec_ = space.job(job_id)
    grant = space.c["Authorizations"].functions.grantOf(core[0]).call()
    holder = space.c["AssetRegistry"].functions.ownerOf(grant[8]).call()
    return {a for a in (holder, grant[7], exec_[0]) if int(a, 16) != 0}
