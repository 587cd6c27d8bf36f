"""Entity answers built in reader processes: the gateway's event loop hands ``(kind, id)`` to a
pool of processes that each hold their own connection to the event index and their own
:class:`audit.index_entities.EntityReads`, and gets back the encoded answer.

Why processes: building an answer (an asset's trail: ~1.4 ms of SQL and Python) is CPU-bound, and
in a thread it competes with the event loop for the GIL — measured on 2 cores, one reader thread
served ~230–340 trails/s whatever the number of threads. Processes build in parallel on every core
while the loop only parses requests and copies bytes. The pool is opt-in (``tds gateway
--read-processes N``; 0 keeps the reader thread), started lazily on the first entity request.
Nothing here calls the chain: ``Web3()`` without a provider only lends its ABI codec.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

_reads: Any = None          # the worker's EntityReads (one per process)
_chain_id: int | None = None

KINDS = ("trail", "job", "grant", "collab")


def _start(url: str, deployment: dict[str, Any]) -> None:
    """Worker initializer: open the index read-side and the ABI codec."""
    global _reads, _chain_id
    import gc

    from web3 import Web3

    from audit.index_entities import EntityReads
    from audit.index_tables import open_engine

    _chain_id = int(deployment["chainId"])
    _reads = EntityReads(Web3(), deployment, open_engine(url))
    gc.collect()
    gc.freeze()  # the ABIs and codec live for the whole process (see tds.gateway.app.settle_heap)


def _ready() -> int:
    """A worker's process id, once its initializer ran (for :meth:`ReaderProcesses.warm`)."""
    import os
    import time

    time.sleep(0.05)  # hold this worker a moment, so the next call starts another
    return os.getpid()


def build(kind: str, key: int) -> tuple[int | None, bytes | None]:
    """(indexed block, the encoded answer or None when the index has no such entity)."""
    from tds.gateway.indexed import encode

    if kind == "trail":
        block, entries = _reads.asset_trail(key)
        found: Any = None if entries is None else {"asset": key, "chainId": _chain_id, "trail": entries}
    elif kind == "job":
        block, found = _reads.job(key)
    elif kind == "grant":
        block, found = _reads.grant(key)
    elif kind == "collab":
        block, found = _reads.collaboration(key)
    else:
        raise ValueError(f"unknown entity kind {kind!r} (one of {', '.join(KINDS)})")
    if found is None:
        return block, None
    if isinstance(found, dict):
        found = {**found, "indexedBlock": block}
    return block, encode(found)


class ReaderProcesses:
    """``processes`` spawned workers reading the index at ``url`` for ``deployment``."""

    def __init__(self, url: str, deployment: dict[str, Any], processes: int):
        if processes < 1:
            raise ValueError("reader processes: give at least 1 (0 means: use the reader thread instead)")
        self.processes = processes
        self._args = (url, {**deployment, "chainId": int(deployment["chainId"])})
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:  # spawn, not fork: the gateway runs threads (index follower, uvicorn)
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start, initargs=self._args)
        return self._pool

    def warm(self) -> int:
        """Start every worker now (each imports web3 and opens the index: ~1–2 s) rather than on
        the first requests; returns how many distinct workers answered."""
        futures = [self._executor().submit(_ready) for _ in range(self.processes * 2)]
        return len({f.result() for f in futures})

    def submit(self, kind: str, key: int) -> Future:
        """Build ``(kind, key)`` in a worker; the future gives (block, bytes or None)."""
        return self._executor().submit(build, kind, key)

    def close(self) -> None:
        """Stop the workers (pending builds are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
