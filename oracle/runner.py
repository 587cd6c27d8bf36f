"""The oracle's job loop: from a ``JobRequested`` event to a completed (or failed) job on chain,
exactly once.

Each job moves through the journal (seen → accepted → computed → posted). Every journal
transition is committed before the chain action that depends on it is *considered done*, and
every chain action is preceded by a fresh read of the job on chain, so after a crash at any
point the runner reconciles: an accept that was mined but not journaled is recognised (the
job's oracle is us), a completion that was mined but not journaled is recognised (status
Completed by us), and a result computed but not posted is posted from the journal, never
recomputed with new randomness.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from chain.tx import Sender, TransactionFailed
from chain.eip712 import job_result_typed_data
from chain.jobstatus import (ACCEPTED, CANCELLED, COMPLETED, FAILED, NONE, RECLAIMED,  # noqa: F401 (re-exported)
                             RELEASED, REQUESTED, SETTLED)

OURS = (ACCEPTED, RELEASED)  # states in which the accepting oracle still owes the chain a posting
from oracle.follower import EventFollower
from oracle.journal import JobEntry, Journal
from chain.retry import is_transient, with_backoff

log = logging.getLogger("tds.oracle")

# fixed gas for completeJob (measured ~105k; a workflow step also opens the next job): the
# chain state was just re-read, so the estimate round trip buys nothing
COMPLETE_GAS = 400_000
# acceptJob (measured ~60k first accept, ~45k takeover): the job was just read, so an estimate's
# round trip only re-checks what we know; a lost race is a cheap revert the next pass reconciles
ACCEPT_GAS = 150_000
REORG_RECHECK_S = 3600  # after a reorg, jobs settled this recently are re-checked on chain


@dataclass(frozen=True)
class JobRequest:
    """What the compute pipeline needs to know about one job (from its event)."""

    job_id: int
    grant_id: int
    consumer: str
    operation: int
    params_hash: bytes
    deadline: int


@dataclass(frozen=True)
class Outcome:
    """A computed result (stored bytes' CID and keccak hash) or a job error (reason code)."""

    result_cid: bytes = b""
    result_hash: bytes = b""
    reason_code: int = 0
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.reason_code != 0


ComputeFn = Callable[[JobRequest], Outcome]


@dataclass
class RunnerStats:
    posted: int = 0
    failed: int = 0
    skipped: int = 0
    latencies: list[float] = field(default_factory=list)


class OracleRunner:
    """Follows the Jobs contract and runs each job once through ``compute``."""

    def __init__(self, w3: Web3, jobs: Contract, account: LocalAccount, journal: Journal, compute: ComputeFn, *,
                 confirmations: int = 0, start_block: int = 0, threads: int = 4,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 checkpoint: Callable[[str, int], None] | None = None, batch: bool = True, claim: int = 64):
        self.w3 = w3
        self.jobs = jobs
        self.account = account
        self.sender = Sender(w3, account)
        self.journal = journal
        self.compute = compute
        self.chain_id = w3.eth.chain_id
        journal.bind_to(self.chain_id, jobs.address, account.address)
        self.follower = EventFollower(w3, journal, "jobs", [jobs.address],
                                      [jobs.events.JobRequested().topic], confirmations=confirmations,
                                      start_block=start_block, on_reorg=self._on_reorg)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tds-job")
        self.stats = RunnerStats()
        self.max_attempts = 3
        self.on_event = on_event or (lambda kind, data: None)
        # called between each chain action and its journal entry: fault tests crash here
        self.checkpoint = checkpoint or (lambda point, job_id: None)
        self._outage_since: float | None = None
        self.batch = batch  # fresh jobs accepted and completed in batches (oracle/batch.py)
        self.claim = claim  # at most this many claimed per acceptJobs (a share of a backlog other oracles drain too)
        # job held by another oracle -> (when last read, chain time from which it may be taken over)
        self.held_checked: dict[int, tuple[float, int]] = {}
        self.accept_timeout: int | None = None  # Jobs.acceptTimeout, read once
        self.resting = 0  # entries of the last pass left out only to wait (they do not keep the loop busy)
        self._raw_reads = True  # job reads as one raw JSON-RPC batch (False once the node refused one)
        self._job_of_view: Any = None

    # -- following ------------------------------------------------------------------------
    def poll_events(self) -> int:
        """Journal every newly confirmed JobRequested; returns how many were new."""
        new = 0
        while (win := self.follower.next_window()) is not None:
            rows = []
            event = self.jobs.events.JobRequested()
            for raw in win.logs:
                a = event.process_log(raw)["args"]
                payload = {"grant_id": a["grantId"], "consumer": a["consumer"], "operation": a["operation"],
                           "params_hash": "0x" + bytes(a["paramsHash"]).hex(), "deadline": a["deadline"]}
                rows.append((a["jobId"], raw["blockNumber"], "0x" + bytes(raw["transactionHash"]).hex(), payload))
            new += len(self.journal.record_seen_many(rows))  # the window's jobs in one journal transaction
            self.follower.commit(win)
        return new

    def run_once(self) -> int:
        """One pass: follow events, then advance every unfinished job (in parallel). Returns how many
        jobs it looked at (not those left resting while another oracle holds them)."""
        self.poll_events()
        if self._outage_since is not None:
            # The node was unreachable: it may have come back with fewer blocks than we saw (a
            # restarted dev node, a failover to a lagging replica) without the follower's cursor
            # block changing. Jobs settled recently are re-checked against the chain.
            n = self.journal.reopen_recent(self._outage_since - REORG_RECHECK_S)
            log.warning("chain reachable again after %.1f s; re-checking %d recently settled jobs",
                        time.time() - self._outage_since, n)
            self._outage_since = None
        entries = list(self.journal.unfinished())
        total = len(entries)
        if self.batch:
            from oracle.batch import batched_pass

            entries = batched_pass(self, entries)
        list(self.pool.map(self._advance_safely, entries))
        return total - self.resting

    def run_forever(self, idle: float = 0.05, stop: Callable[[], bool] = lambda: False) -> None:
        while not stop():
            try:
                if self.run_once() == 0:
                    time.sleep(idle)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("chain unreachable (%s); retrying", type(exc).__name__)
                self._mark_outage()
                time.sleep(min(2.0, idle * 20))

    def _mark_outage(self) -> None:
        self.sender.resync()
        if self._outage_since is None:
            self._outage_since = time.time()

    def _on_reorg(self, ancestor: int) -> None:
        """Blocks above ``ancestor`` were replaced: recently settled jobs are re-checked on chain."""
        n = self.journal.reopen_recent(time.time() - REORG_RECHECK_S)
        log.warning("chain reorganised below block %d; re-checking %d recently settled jobs", ancestor + 1, n)
        self.sender.resync()

    # -- one job --------------------------------------------------------------------------
    def _advance_safely(self, entry: JobEntry) -> None:
        try:
            self.advance(entry)
        except Exception as exc:
            if is_transient(exc):
                self._mark_outage()
                return  # picked up again on the next pass
            attempts = self.journal.bump_attempts(entry.job_id)
            log.warning("job %s: %s: %s (attempt %d)", entry.job_id, type(exc).__name__, exc, attempts)
            if attempts >= self.max_attempts:
                self.journal.transition(entry.job_id, "skipped", {"error": f"{type(exc).__name__}: {exc}"[:500]})
                self._count("skipped")

    def _on_chain(self, job_id: int) -> tuple[int, str]:
        core, exec_ = with_backoff(lambda: self.jobs.functions.jobOf(job_id).call())
        return core[3], exec_[0]

    def advance(self, entry: JobEntry) -> None:
        """Move one job as far as it can go now, reconciling with the chain first."""
        job_id = entry.job_id
        status, oracle = self._on_chain(job_id)
        mine = oracle == self.account.address
        state = entry.state
        fresh = False  # True once this call itself accepted and computed the job
        if status in SETTLED:
            final = "posted" if status == COMPLETED and mine else "failed-posted" if status == FAILED and mine else "skipped"
            self.journal.transition(job_id, final)
            self._count(final)
            return
        if state == "seen":
            if status == RELEASED and not mine:
                self.journal.transition(job_id, "skipped")  # answered for another oracle: not ours to take
                self._count("skipped")
                return
            if status == ACCEPTED and not mine:
                if not self._try_accept(job_id, takeover=True):
                    return  # another oracle has it, and it is not silent yet
            elif status == REQUESTED:
                if not self._try_accept(job_id):
                    return
            if status != RELEASED:
                status, oracle, mine = ACCEPTED, self.account.address, True
            self.checkpoint("accepted-on-chain", job_id)
            self.journal.transition(job_id, "accepted")
            self.on_event("accepted", {"job": job_id})
            state = "accepted"
        if state == "accepted" and status == REQUESTED:  # our accept was rolled back (reorg, node restart)
            if not self._try_accept(job_id):
                return
            status, oracle, mine = ACCEPTED, self.account.address, True
        if state == "accepted":
            if status in OURS and not mine and oracle:
                self.journal.transition(job_id, "skipped")  # taken over by another oracle
                return
            outcome = self.compute(_request(entry))
            if outcome.failed and status == RELEASED:
                # the answer was released (a retry after a crash): the job can only complete
                raise RuntimeError(f"job {job_id} is released on chain but computing it again failed: "
                                   f"{outcome.detail}")
            if outcome.failed:
                self._send(self.jobs.functions.failJob(job_id, outcome.reason_code))
                self.checkpoint("failed-on-chain", job_id)
                self.journal.transition(job_id, "failed-posted", {"reason": outcome.reason_code, "detail": outcome.detail})
                self._count("failed-posted")
                self.on_event("failed", {"job": job_id, "reason": outcome.reason_code, "detail": outcome.detail})
                return
            self.checkpoint("computed", job_id)
            sig = self._attest(job_id, outcome)
            self.journal.transition(job_id, "computed", {"cid": outcome.result_cid.hex(),
                                                         "hash": outcome.result_hash.hex(), "sig": sig.hex()})
            entry = self.journal.get(job_id)
            state, fresh = "computed", True
        if state == "computed":
            r = entry.result
            if not fresh:  # resumed from the journal: the chain may have moved since
                status, oracle = self._on_chain(job_id)
            rolled_back = status == REQUESTED
            if rolled_back:  # our accept was rolled back with a reorg: take the job again
                if not self._try_accept(job_id):
                    return
                status, oracle = ACCEPTED, self.account.address
            if status not in OURS or oracle != self.account.address:
                self.journal.transition(job_id, "skipped")
                return
            if status == ACCEPTED and (rolled_back or not fresh):
                # the key service's release of our result went with the rollback (a reorg, a node
                # restarted from older state): it records the release again — the same sealed
                # bytes when it kept them — before the result may be posted
                r = self._recompute(entry)
            self._send(self.jobs.functions.completeJob(job_id, bytes.fromhex(r["cid"]), bytes.fromhex(r["hash"]),
                                                       bytes.fromhex(r["sig"])), gas=COMPLETE_GAS)
            self.checkpoint("completed-on-chain", job_id)
            self.journal.transition(job_id, "posted")
            self._count("posted")
            self.on_event("completed", {"job": job_id, "cid": r["cid"], "hash": r["hash"]})

    def _recompute(self, entry: JobEntry) -> dict[str, str]:
        outcome = self.compute(_request(entry))
        if outcome.failed:
            raise RuntimeError(f"job {entry.job_id}: its release was rolled back and asking again failed: "
                               f"{outcome.detail}")
        r = {"cid": outcome.result_cid.hex(), "hash": outcome.result_hash.hex(),
             "sig": self._attest(entry.job_id, outcome).hex()}
        self.journal.transition(entry.job_id, "computed", r)
        return r

    def _try_accept(self, job_id: int, takeover: bool = False) -> bool:
        try:
            # a takeover is estimated first: before the timeout it reverts there, without a mined
            # failing transaction every pass
            self._send(self.jobs.functions.acceptJob(job_id), gas=None if takeover else ACCEPT_GAS)
            return True
        except TransactionFailed:
            return False
        except Exception as exc:  # estimate_gas surfaces the contract's custom error
            if is_transient(exc):
                raise
            status, oracle = self._on_chain(job_id)
            return status == ACCEPTED and oracle == self.account.address

    def _send(self, fn: Any, gas: int | None = None) -> None:
        # No blind retry: a transaction whose receipt was lost may have been mined. The next
        # pass re-reads the job on chain and carries on from what actually happened.
        self.sender.send(fn, gas=gas)

    def _attest(self, job_id: int, outcome: Outcome) -> bytes:
        data = job_result_typed_data(job_id, outcome.result_hash, outcome.result_cid, self.chain_id, self.jobs.address)
        from eth_account.messages import encode_typed_data

        return bytes(self.account.sign_message(encode_typed_data(full_message=data)).signature)

    def _count(self, final: str) -> None:
        if final == "posted":
            self.stats.posted += 1
        elif final == "failed-posted":
            self.stats.failed += 1
        else:
            self.stats.skipped += 1


def _request(entry: JobEntry) -> JobRequest:
    p = entry.payload
    return JobRequest(entry.job_id, p["grant_id"], p["consumer"], p["operation"], bytes.fromhex(p["params_hash"][2:]),
                      p["deadline"])
