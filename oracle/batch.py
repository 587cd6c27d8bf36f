"""The oracle's batched pass: the common case of many fresh jobs handled with few transactions.

One JSON-RPC batch reads every unfinished job; one ``acceptJobs`` transaction claims all the
fresh ones (jobs another oracle took first are skipped by the contract, not reverted); the jobs
are computed in parallel (the provider's key service records each release on chain); one
``completeJobs`` transaction posts every released answer. Each journal transition is written
exactly as in the per-job path (seen → accepted → computed → posted), so a crash anywhere leaves
a state the per-job path reconciles on the next pass; anything unusual (takeovers, rolled-back
releases, a batch the chain refuses) is handed back to that path."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chain.jobstatus import ACCEPTED, RELEASED, REQUESTED
from chain.tx import Reverted, TransactionFailed
from oracle.journal import JobEntry

if TYPE_CHECKING:
    from oracle.runner import OracleRunner

log = logging.getLogger("tds.oracle")
MAX_BATCH = 64  # Jobs.MAX_BATCH
ACCEPT_GAS_BASE, ACCEPT_GAS_PER_JOB = 60_000, 40_000
COMPLETE_GAS_BASE, COMPLETE_GAS_PER_JOB = 60_000, 140_000


def read_statuses(runner: "OracleRunner", entries: list[JobEntry]) -> dict[int, tuple[int, str]]:
    """(status, oracle) of every entry, in one JSON-RPC batch (per call if the node refuses batches)."""
    fn = runner.jobs.functions
    try:
        with runner.w3.batch_requests() as batch:
            for e in entries:
                batch.add(fn.jobOf(e.job_id))
            results = batch.execute()
        return {e.job_id: (r[0][3], r[1][0]) for e, r in zip(entries, results)}
    except Exception as exc:  # noqa: BLE001 - a node without batch support: one call each
        log.debug("batched read refused (%s); reading jobs one by one", exc)
        return {e.job_id: runner._on_chain(e.job_id) for e in entries}


def batched_pass(runner: "OracleRunner", entries: list[JobEntry]) -> list[JobEntry]:
    """Handle the fresh jobs among ``entries`` in batches; return the entries left for the per-job path."""
    fresh = [e for e in entries if e.state == "seen"]
    if len(fresh) < 2:
        return entries
    fresh = fresh[:MAX_BATCH]
    status = read_statuses(runner, fresh)
    open_ = [e for e in fresh if status[e.job_id][0] == REQUESTED]
    if len(open_) < 2:
        return entries
    accepted = _accept(runner, open_)
    if not accepted:
        return entries
    for e in accepted:
        runner.checkpoint("accepted-on-chain", e.job_id)
        runner.journal.transition(e.job_id, "accepted")
        runner.on_event("accepted", {"job": e.job_id})
    results = list(runner.pool.map(lambda e: _compute(runner, e), accepted))
    ready = [r for r in results if r is not None]
    if ready:
        _complete(runner, ready)
    done = {e.job_id for e in accepted}
    return [e for e in entries if e.job_id not in done]


def _accept(runner: "OracleRunner", open_: list[JobEntry]) -> list[JobEntry]:
    ids = [e.job_id for e in open_]
    gas = ACCEPT_GAS_BASE + ACCEPT_GAS_PER_JOB * len(ids)
    try:
        receipt = runner.sender.send(runner.jobs.functions.acceptJobs(ids), gas=gas)
    except (TransactionFailed, Reverted) as exc:
        log.warning("acceptJobs of %d jobs refused (%s); per job instead", len(ids), exc)
        return []
    mine = {ev["args"]["jobId"] for ev in runner.jobs.events.JobAccepted().process_receipt(receipt)
            if ev["args"]["oracle"] == runner.account.address}
    return [e for e in open_ if e.job_id in mine]


def _compute(runner: "OracleRunner", entry: JobEntry) -> tuple[JobEntry, dict[str, str]] | None:
    """Compute one accepted job; a failure is posted at once (failJob), a result journaled."""
    from oracle.runner import _request

    try:
        outcome = runner.compute(_request(entry))
        if outcome.failed:
            runner._send(runner.jobs.functions.failJob(entry.job_id, outcome.reason_code))
            runner.checkpoint("failed-on-chain", entry.job_id)
            runner.journal.transition(entry.job_id, "failed-posted",
                                      {"reason": outcome.reason_code, "detail": outcome.detail})
            runner._count("failed-posted")
            runner.on_event("failed", {"job": entry.job_id, "reason": outcome.reason_code, "detail": outcome.detail})
            return None
        runner.checkpoint("computed", entry.job_id)
        sig = runner._attest(entry.job_id, outcome)
        r = {"cid": outcome.result_cid.hex(), "hash": outcome.result_hash.hex(), "sig": sig.hex()}
        runner.journal.transition(entry.job_id, "computed", r)
        return entry, r
    except Exception as exc:  # noqa: BLE001 - the per-job path retries it from the journal
        log.warning("job %s: %s: %s (left to the per-job path)", entry.job_id, type(exc).__name__, exc)
        return None


def _complete(runner: "OracleRunner", ready: list[tuple[JobEntry, dict[str, str]]]) -> None:
    status = read_statuses(runner, [e for e, _ in ready])
    posting = [(e, r) for e, r in ready if status[e.job_id] == (RELEASED, runner.account.address)]
    if not posting:
        return
    batch: list[Any] = [(e.job_id, bytes.fromhex(r["cid"]), bytes.fromhex(r["hash"]), bytes.fromhex(r["sig"]))
                        for e, r in posting]
    gas = COMPLETE_GAS_BASE + COMPLETE_GAS_PER_JOB * len(batch)
    try:
        runner.sender.send(runner.jobs.functions.completeJobs(batch), gas=gas)
    except (TransactionFailed, Reverted) as exc:
        log.warning("completeJobs of %d jobs refused (%s); posted per job next pass", len(batch), exc)
        return
    for e, r in posting:
        runner.checkpoint("completed-on-chain", e.job_id)
        runner.journal.transition(e.job_id, "posted")
        runner._count("posted")
        runner.on_event("completed", {"job": e.job_id, "cid": r["cid"], "hash": r["hash"]})
