"""The oracle's batched pass: the common case of many fresh jobs handled with few transactions.

One JSON-RPC batch reads every unfinished job; one ``acceptJobs`` transaction claims a share of the
fresh ones (jobs another oracle took first are skipped by the contract, not reverted); the jobs
are computed in parallel (the provider's key service records their releases on chain, grouped);
``completeJobs`` transactions post the released answers in chunks while the rest still compute.
Each journal transition is written as in the per-job path (seen → accepted → computed → posted;
a batch's transitions in one SQLite transaction), so a crash anywhere leaves a state the per-job
path reconciles on the next pass; anything unusual (takeovers, rolled-back releases, a batch the
chain refuses) is handed back to that path."""
from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from eth_utils import keccak

from chain.jobstatus import ACCEPTED, RELEASED, REQUESTED
from chain.retry import with_backoff
from chain.tx import Reverted, TransactionFailed
from oracle.journal import JobEntry

if TYPE_CHECKING:
    from oracle.runner import OracleRunner

log = logging.getLogger("tds.oracle")
MAX_BATCH = 64  # Jobs.MAX_BATCH
READ_WINDOW = 4 * MAX_BATCH  # fresh jobs whose status one pass reads (one JSON-RPC batch)
TAKEOVER_CHECK_S = 10.0      # how often a job another oracle holds is checked for a takeover
ACCEPT_GAS_BASE, ACCEPT_GAS_PER_JOB = 60_000, 40_000
COMPLETE_GAS_BASE, COMPLETE_GAS_PER_JOB = 60_000, 140_000
# completions posted together while the rest of a batch computes: at least this many per
# completeJobs (its base cost amortised over 10 or more jobs), the remainder with the last job
COMPLETE_CHUNK = 10


def read_jobs(runner: "OracleRunner", entries: list[JobEntry]) -> dict[int, tuple[int, str, int]]:
    """(status, oracle, acceptedAt) of every entry, in one JSON-RPC batch (per call if the node refuses batches)."""
    fn = runner.jobs.functions
    raw = _read_raw(runner, entries)
    if raw is not None:
        return raw
    try:
        with runner.w3.batch_requests() as batch:
            for e in entries:
                batch.add(fn.jobOf(e.job_id))
            results = batch.execute()
    except Exception as exc:  # noqa: BLE001 - a node without batch support: one call each
        log.debug("batched read refused (%s); reading jobs one by one", exc)
        results = [with_backoff(lambda e=e: fn.jobOf(e.job_id).call()) for e in entries]
    return {e.job_id: (r[0][3], r[1][0], r[1][1]) for e, r in zip(entries, results)}


def _read_raw(runner: "OracleRunner", entries: list[JobEntry]) -> dict[int, tuple[int, str, int]] | None:
    """:func:`read_jobs` as one raw JSON-RPC batch (:mod:`offchain.keyservice.rawcalls`: web3's
    per-call ABI work cost more CPU than the node's answers); None where it cannot answer."""
    from offchain.keyservice.rawcalls import RawCallsUnavailable, ViewCall, call_batch

    if not entries or not runner._raw_reads:
        return None
    try:
        if runner._job_of_view is None:
            runner._job_of_view = ViewCall(runner.jobs, "jobOf")
        results = call_batch(runner.w3, [(runner._job_of_view, (e.job_id,)) for e in entries])
    except RawCallsUnavailable as exc:
        log.debug("raw batched read refused (%s); reading through web3", exc)
        runner._raw_reads = False
        return None
    except Exception:  # noqa: BLE001 - a node outage included: web3's reads retry it as before
        return None
    if any(r is None for r in results):
        return None  # a call failed: web3's reads say which and why
    return {e.job_id: (r[0][3], r[1][0], r[1][1]) for e, r in zip(entries, results)}


def read_statuses(runner: "OracleRunner", entries: list[JobEntry]) -> dict[int, tuple[int, str]]:
    """(status, oracle) of every entry (:func:`read_jobs`)."""
    return {j: (st, oracle) for j, (st, oracle, _) in read_jobs(runner, entries).items()}


def preference(job_id: int, oracle: str) -> bytes:
    """This oracle's rank of a job (rendezvous hashing): each oracle on a shared queue prefers a
    different subset of the backlog, so their ``acceptJobs`` rarely contend for the same jobs."""
    return keccak(job_id.to_bytes(32, "big") + bytes.fromhex(oracle[2:]))


def batched_pass(runner: "OracleRunner", entries: list[JobEntry]) -> list[JobEntry]:
    """Handle the fresh jobs among ``entries`` in batches; return the entries left for the per-job path
    (and set ``runner.resting`` to how many were left out only to wait).

    Several oracles may drain one queue: at most ``runner.claim`` open jobs are claimed per pass,
    those this oracle prefers first (:func:`preference`), and the rest of the backlog waits for the
    next pass (another oracle may take it meanwhile). A job another oracle holds is not read again
    for ``TAKEOVER_CHECK_S`` seconds unless the chain's clock has reached its takeover time; then
    the per-job path sees it (takes it over, or marks it settled)."""
    runner.resting = 0
    fresh = [e for e in entries if e.state == "seen"]
    now = time.monotonic()
    resting = _resting(runner, fresh, now)
    fresh = [e for e in fresh if e.job_id not in resting][:READ_WINDOW]
    if len(fresh) < 2 and not resting:
        return entries
    jobs = read_jobs(runner, fresh) if fresh else {}
    me = runner.account.address
    timeout = _accept_timeout(runner)
    just_taken = set()  # held by another oracle, seen for the first time: rest before any takeover check
    for e in fresh:
        st, oracle, accepted_at = jobs[e.job_id]
        if st == ACCEPTED and oracle != me:
            if e.job_id not in runner.held_checked:
                just_taken.add(e.job_id)
            runner.held_checked[e.job_id] = (now, accepted_at + timeout)  # seen again: the per-job path decides
    deferred = resting | just_taken
    open_ = sorted((e for e in fresh if jobs[e.job_id][0] == REQUESTED), key=lambda e: preference(e.job_id, me))
    claim = max(2, min(MAX_BATCH, runner.claim))
    waiting = {e.job_id for e in open_[claim:]}
    open_ = open_[:claim]
    accepted = _accept(runner, open_) if len(open_) >= 2 else []
    runner.resting = len(deferred)
    if not accepted:
        return [e for e in entries if e.job_id not in deferred]
    for e in accepted:
        runner.checkpoint("accepted-on-chain", e.job_id)
    runner.journal.transition_many([e.job_id for e in accepted], "accepted")  # one sync to disk
    for e in accepted:
        runner.on_event("accepted", {"job": e.job_id})
    _complete_as_ready(runner, [runner.pool.submit(_compute, runner, e) for e in accepted])
    skip = {e.job_id for e in accepted} | deferred | waiting
    return [e for e in entries if e.job_id not in skip]


def _resting(runner: "OracleRunner", fresh: list[JobEntry], now: float) -> set[int]:
    """Jobs another oracle holds that were read less than ``TAKEOVER_CHECK_S`` ago and cannot be
    taken over yet by the chain's clock (one block read, only when there are such jobs)."""
    checked = runner.held_checked
    if len(checked) > READ_WINDOW * 4:  # forget jobs long settled
        for old in [j for j, (t, _) in checked.items() if now - t > TAKEOVER_CHECK_S]:
            del checked[old]
    recent = [e.job_id for e in fresh if e.job_id in checked and now - checked[e.job_id][0] < TAKEOVER_CHECK_S]
    if not recent:
        return set()
    chain_now = int(with_backoff(lambda: runner.w3.eth.get_block("latest"))["timestamp"])
    return {j for j in recent if chain_now < checked[j][1]}


def _accept_timeout(runner: "OracleRunner") -> int:
    if runner.accept_timeout is None:
        runner.accept_timeout = int(with_backoff(lambda: runner.jobs.functions.acceptTimeout().call()))
    return runner.accept_timeout


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


def _complete_as_ready(runner: "OracleRunner", futures: list[Future]) -> None:
    """Post completions while the rest of the batch still computes: once ``COMPLETE_CHUNK`` results
    are ready they go out in one ``completeJobs`` (the job threads carry on meanwhile), the rest
    when the last job is computed. Every computation has ended when this returns, also on an
    error, so the next pass never races a job still computing."""
    pending = set(futures)
    ready: list[tuple[JobEntry, dict[str, str]]] = []
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            ready += [r for f in done if (r := f.result()) is not None]
            if pending and len(ready) >= COMPLETE_CHUNK:
                chunk, ready = ready, []
                _complete(runner, chunk)
        if ready:
            _complete(runner, ready)
    finally:
        wait(pending)


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
    runner.journal.transition_many([e.job_id for e, _ in posting], "posted")  # one sync to disk
    for e, r in posting:
        runner._count("posted")
        runner.on_event("completed", {"job": e.job_id, "cid": r["cid"], "hash": r["hash"]})
