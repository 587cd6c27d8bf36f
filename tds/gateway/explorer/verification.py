"""Verification verdicts for the explorer, computed over the event index and cached by indexed block.

A page never waits for them: it is rendered from the index at once and the verdicts come in a
second request (``/explorer/verification``) that the page's script fills in. They are
``audit.verify``'s own functions, run over a reader holding only the events of one asset (the
same events the index selects for its trail) or only the anchored batches; the node answers the
calls they make (``Jobs.resultDigest``, ``Evidence.verifyRecord``, the transactions' calldata).
The same scope at the same indexed block gives the same verdicts: they are computed once."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from audit.index_tables import assets, log_batches

CACHE_ENTRIES = 256


class VerdictCache:
    """Verdicts per (scope, indexed block): computed once, the oldest dropped beyond ``size``."""

    def __init__(self, size: int = CACHE_ENTRIES):
        self._done: OrderedDict[tuple[Any, ...], list[dict[str, Any]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._busy: dict[tuple[Any, ...], threading.Lock] = {}

    def get(self, key: tuple[Any, ...]) -> list[dict[str, Any]] | None:
        """The verdicts already computed for ``key``, or None."""
        with self._lock:
            return self._done.get(key)

    def compute(self, key: tuple[Any, ...], run: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The verdicts for ``key``: cached, or ``run()`` once (concurrent askers wait for the first)."""
        with self._lock:
            if key in self._done:
                return self._done[key]
            busy = self._busy.setdefault(key, threading.Lock())
        with busy:
            with self._lock:
                if key in self._done:
                    return self._done[key]
            found = run()
            with self._lock:
                self._done[key] = found
                self._busy.pop(key, None)
                while len(self._done) > self._size:
                    self._done.popitem(last=False)
            return found


def asset_found(reads: Any, conn: Any, asset_id: int) -> list[tuple[Any, int]] | None:
    """The indexed events an asset's trail is built from (as ``audit.index_entities`` selects
    them for ``asset_trail``), or None if the index has no such asset."""
    return reads.asset_events(conn, asset_id)


def all_anchors(reads: Any, conn: Any) -> list[tuple[Any, int]]:
    """Every indexed ``BatchAnchored`` event (a published file is matched by its root among them all)."""
    producers = [r.producer for r in conn.execute(select(log_batches.c.producer).distinct())]
    return reads.by_keys(conn, {"producer": producers}, names=["BatchAnchored"])


class Verifier:
    """The explorer's verifications over an index's entity reads (``reads()`` gives them)."""

    def __init__(self, reads: Callable[[], Any], logs_dir: Path | None, fetch: Callable[[str], bytes | None] | None):
        self.reads, self.logs_dir, self.fetch = reads, logs_dir, fetch
        self.cache = VerdictCache()

    def indexed_block(self) -> int | None:
        """The index's block (the verdicts' cache key)."""
        reads = self.reads()
        with reads.engine.connect() as conn:
            return reads.block(conn)

    def cached(self, kind: str, ident: int) -> list[dict[str, Any]] | None:
        """The verdicts of ``kind`` (asset | batch) ``ident`` if already computed at the indexed block."""
        return self.cache.get((kind, ident, self.indexed_block()))

    def asset(self, asset_id: int, at: int | None = None) -> list[dict[str, Any]] | None:
        """Every ``audit.verify`` verdict of one asset over its events up to block ``at`` (default:
        the indexed block); None if it is unknown."""
        block = self.indexed_block() if at is None else at
        reads = self.reads()
        with reads.engine.connect() as conn:
            if conn.execute(select(assets.c.asset_id).where(assets.c.asset_id == asset_id)).first() is None:
                return None

        def run() -> list[dict[str, Any]]:
            from audit.verify import verify_all

            with reads.engine.connect() as conn:
                # every anchor too: each published log file is checked against the batch it claims
                found = (asset_found(reads, conn, asset_id) or []) + all_anchors(reads, conn)
                found = [(ev, t) for ev, t in found if block is None or ev.block <= block]  # index moved on?
                reader = reads.reader(conn, block, found)
            return verify_all(None, None, reader=reader, asset=asset_id, logs_dir=self.logs_dir, fetch=self.fetch)

        return self.cache.compute(("asset", asset_id, block), run)

    def job(self, job_id: int, asset_id: int | None) -> list[dict[str, Any]]:
        """The verdicts about one job (its asset's, filtered)."""
        if asset_id is None:
            return []
        return [v for v in self.asset(asset_id) or [] if (v.get("refs") or {}).get("job") == job_id]

    def batch(self, batch_id: int, at: int | None = None) -> list[dict[str, Any]]:
        """The batch-root and inclusion verdicts of one anchored batch (its published file, if any),
        over the anchors up to block ``at`` (default: the indexed block)."""
        block = self.indexed_block() if at is None else at

        def run() -> list[dict[str, Any]]:
            from audit.verify import batch_files, verdict, verify_batch_file

            reads = self.reads()
            with reads.engine.connect() as conn:
                anchored = [(ev, t) for ev, t in all_anchors(reads, conn) if block is None or ev.block <= block]
                reader = reads.reader(conn, block, anchored)  # every anchor: a file is matched by its root
            out: list[dict[str, Any]] = []
            if self.logs_dir is not None:
                for path in batch_files(Path(self.logs_dir)):
                    found, matched = verify_batch_file(reader, path, Path(self.logs_dir))
                    if matched == batch_id:
                        out += [{**v, "refs": {"batch": batch_id}} for v in found]
            if not out:
                out.append(verdict("batch-root", f"batch #{batch_id}", None,
                                   f"no published file of this batch in {self.logs_dir or 'the gateway’s logs'}; "
                                   "not checked", batch=batch_id))
            return out

        return self.cache.compute(("batch", batch_id, block), run)

    def scope(self, assets: Iterable[int], batches: Iterable[int], jobs: set[int] | None = None,
              at: int | None = None) -> list[dict[str, Any]]:
        """The verdicts of several assets (only those about ``jobs`` when given) and batches, each once,
        up to block ``at`` (default: the indexed block)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for a in sorted(set(assets)):
            for v in self.asset(a, at) or []:
                job = (v.get("refs") or {}).get("job")
                if jobs is None or job in jobs:
                    out.setdefault((v["step"], v["subject"]), v)
        for b in sorted(set(batches)):
            for v in self.batch(b, at):
                out.setdefault((v["step"], v["subject"]), v)
        return list(out.values())
