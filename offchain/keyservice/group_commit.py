"""Group commit of the key service's releases: one ``recordReleases`` transaction for every
release that arrived while the previous one was in flight.

A thread that wants its release on chain queues it and waits. If no release transaction is in
flight it becomes the *leader*: it takes every queued release (at most ``max_batch``), sends one
transaction for them with a fixed gas limit (no ``eth_estimateGas`` inside the sender's nonce
lock), waits for the receipt and hands each waiter its own outcome. Releases that arrive
meanwhile queue up for the next leader: concurrent releases share transactions (on a chain with
real block times, every release that arrives during a block joins the next one), and a lone
release waits for nobody.

All or nothing on chain: if the batch reverts, each of its releases is sent again on its own
(``recordRelease`` with a gas estimate, so a refusal is the contract's custom error for *that*
job, by name) and the others are still recorded. An error that is not a refusal (the node went
away, a transaction dropped) is handed to every waiter of the batch, which retries as before:
nothing is reported released unless its receipt was seen.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

from chain.retry import is_transient
from chain.tx import Sender, TransactionFailed

log = logging.getLogger("tds.keyservice")

MAX_BATCH = 64                 # Jobs.MAX_BATCH
# gas limit of a release transaction: measured 99.2 k for one recordRelease (a later second than
# the accept), ~ 70 k per job inside recordReleases; the margin covers a cold asset or grant slot
RELEASE_GAS_BASE = 60_000
RELEASE_GAS_PER_JOB = 110_000


def release_gas(n: int) -> int:
    """The fixed gas limit of a release transaction for ``n`` jobs."""
    return RELEASE_GAS_BASE + RELEASE_GAS_PER_JOB * n


@dataclass
class _Slot:
    job_id: int
    result_hash: bytes
    done: bool = False
    error: BaseException | None = None


@dataclass
class GroupCommitStats:
    """How many releases went out in how many transactions (for benchmarks and tests)."""

    releases: int = 0                                  # recorded on chain
    transactions: int = 0
    batches: list[int] = field(default_factory=list)   # size of each batch sent (1 = a lone release)
    fallbacks: int = 0                                 # batches that reverted and went out per job


class ReleaseGroupCommit:
    """Records releases on chain in groups (see the module docstring). Thread-safe.

    ``send_batch(sender, job_ids, hashes, gas)`` and ``send_one(sender, job_id, hash, gas)`` are
    :class:`offchain.keyservice.onchain.JobChain`'s writes; they raise ``GrantRefused`` for a
    revert with a named error."""

    def __init__(self, sender: Sender, send_batch: Callable[..., None], send_one: Callable[..., None],
                 max_batch: int = MAX_BATCH):
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be 1..{MAX_BATCH}, not {max_batch}")
        self.sender = sender
        self.send_batch, self.send_one = send_batch, send_one
        self.max_batch = max_batch
        self.stats = GroupCommitStats()
        self._cv = threading.Condition()
        self._queue: list[_Slot] = []
        self._busy = False

    def record(self, job_id: int, result_hash: bytes) -> None:
        """Return once ``job_id``'s release of ``result_hash`` is mined; raise its refusal otherwise."""
        slot = _Slot(job_id, result_hash)
        with self._cv:
            self._queue.append(slot)
        while True:
            with self._cv:
                while self._busy and not slot.done:
                    self._cv.wait()
                if slot.done:
                    break
                self._busy = True          # this thread leads: it sends what is queued (itself included)
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            try:
                self._commit(batch)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
        if slot.error is not None:
            raise slot.error

    def _commit(self, batch: list[_Slot]) -> None:
        """Send one transaction for ``batch`` (per job after a revert); fill in each slot."""
        try:
            if len(batch) == 1:
                self._one(batch[0])
            else:
                self._many(batch)
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear about it
            for s in batch:
                if not s.done:
                    s.error, s.done = exc, True
            if not is_transient(exc) and getattr(exc, "code", None) is None:  # not a named refusal
                log.warning("release transaction for %d job(s) failed: %s", len(batch), exc)
        finally:
            for s in batch:
                s.done = True

    def _one(self, s: _Slot) -> None:
        self.stats.batches.append(1)
        self.stats.transactions += 1
        try:
            self.send_one(self.sender, s.job_id, s.result_hash, release_gas(1))
        except TransactionFailed:
            # mined and reverted under the fixed limit (a receipt names no reason): once more with
            # an estimate, which names the refusal (or passes, had the limit been short)
            self.stats.transactions += 1
            self.send_one(self.sender, s.job_id, s.result_hash, None)
        s.done = True
        self.stats.releases += 1

    def _many(self, batch: list[_Slot]) -> None:
        self.stats.batches.append(len(batch))
        self.stats.transactions += 1
        try:
            self.send_batch(self.sender, [s.job_id for s in batch], [s.result_hash for s in batch],
                            release_gas(len(batch)))
        except Exception as exc:
            if is_transient(exc):
                raise
            # all or nothing: one of them is refused (or the limit was short); each on its own,
            # so each refusal is named for its own job and the others are still recorded
            log.info("recordReleases of %d jobs refused (%s); one transaction per job", len(batch), exc)
            self.stats.fallbacks += 1
            for s in batch:
                self.stats.transactions += 1
                try:
                    self.send_one(self.sender, s.job_id, s.result_hash, None)
                    self.stats.releases += 1
                except Exception as one:  # this job's own outcome
                    if is_transient(one):
                        raise
                    s.error = one
                s.done = True
            return
        for s in batch:
            s.done = True
        self.stats.releases += len(batch)
