"""Query auditor against differencing attacks, per (consumer, dataset).

The minimum group size k protects one answer. Two answers that each cover >= k rows but differ
by a few rows reveal those rows by subtraction (``sum(age 30..41) - sum(age 30..40)``). The key
service therefore remembers, per consumer address and dataset, the *row set* of every aggregate
it released (the indices 0..n_rows-1 of the rows one group covered) and refuses a release that
would let the consumer isolate fewer than k rows. All answers are treated as subtractable
(COUNT, SUM and AVG·COUNT are; MIN/MAX are treated the same way, conservatively), and the
consumer is assumed able to obtain the whole-table answer at any time.

For each new set X — every released group and, when a release has several disjoint groups,
their union U (the consumer can add the groups up) — and each remembered set T (earlier groups
and earlier unions), with i = |X ∩ T|:

``complement``        0 < n - |X| < k: whole table minus X isolates the rest.
``overlap``           0 < |X \\ T| < k or 0 < |T \\ X| < k (the brief's rule: a small difference
                      on either side; conservative when both sides are non-empty).
``pair-complement``   X, T disjoint and 0 < n - |X| - |T| < k.
``partition``         X plus earlier sets pairwise disjoint with it and each other (chosen
                      greedily, largest first) leave 0 < n - |W| < k rows uncovered.
``subset-packing``    earlier sets inside X, pairwise disjoint (greedy), leave 0 < |X| - |P| < k.
``container-packing`` X inside an earlier T (the 4 smallest such T): X plus earlier disjoint
                      pieces of T leave 0 < |T| - |P| < k rows of T uncovered.

Groups of one release are disjoint by construction and are not compared with each other; if
they overlap (a join grouped on the other side), they are compared pairwise with ``overlap`` and
no union is formed. Every refusal names a real subtraction; the greedy packings are bounded
(O(h) big-int ANDs each, h = remembered sets), so a check costs O((m + 1) · h) set operations
for m groups.

NOT caught (document to consumers and providers; DP — :mod:`offchain.keyservice.privacy` — is
the answer to all of these):
- combinations of three or more overlapping answers (inclusion–exclusion, e.g.
  A + B - (A ∪ B) = A ∩ B; general linear trackers that solve a system of SUM answers);
- packings the greedy choice misses (another choice of disjoint pieces would have worked);
- MIN/MAX specifics: an extreme value of a large group still belongs to one row;
- a consumer using several addresses, or several consumers colluding (history is per address);
- the same people in two datasets (history is per dataset; a join is audited per side);
- sets older than ``max_history`` (the oldest are forgotten first);
- inference from auxiliary knowledge about the other rows of a large enough group.

Sets are stored as little-endian bitmaps (bit i = row i), zlib-compressed, in SQLite (WAL);
in memory they are Python ints, so intersections are ``&`` and sizes ``int.bit_count``.
"""
from __future__ import annotations

import collections
import itertools
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from offchain.errors import DifferencingRefused

CONTAINER_LIMIT = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS released_sets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer    TEXT    NOT NULL,
    dataset_id  TEXT    NOT NULL,
    job_id      INTEGER NOT NULL,
    n_rows      INTEGER NOT NULL,
    kind        TEXT    NOT NULL,      -- 'group' or 'union' (of one release's disjoint groups)
    size        INTEGER NOT NULL,
    bitmap      BLOB    NOT NULL,      -- zlib(little-endian bitmap, bit i = row i)
    recorded_at REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS released_sets_by_pair ON released_sets (consumer, dataset_id, id);
"""


@dataclass(frozen=True)
class _Set:
    mask: int
    size: int
    job_id: int | None = None
    kind: str = "group"


def to_mask(rows: Sequence[int] | Iterable[int], n_rows: int) -> int:
    """The bitmap (bit i = row i) of a row set; refuses indices outside 0..n_rows-1."""
    if isinstance(rows, range) and rows.step == 1:
        if len(rows) and (rows.start < 0 or rows.stop > n_rows):
            raise ValueError(f"row set {rows} outside 0..{n_rows - 1}")
        return ((1 << len(rows)) - 1) << rows.start if len(rows) else 0
    rows = rows if isinstance(rows, (list, tuple, range)) else list(rows)
    if not rows:
        return 0
    lo, hi = min(rows), max(rows)
    if lo < 0 or hi >= n_rows:
        raise ValueError(f"row index {lo if lo < 0 else hi} outside 0..{n_rows - 1}")
    flags = bytearray(hi + 1)          # one byte per row, then 8 strided slices -> bits
    collections.deque(map(flags.__setitem__, rows, itertools.repeat(1)), maxlen=0)
    mask = 0
    for bit in range(8):
        mask |= int.from_bytes(flags[bit::8], "little") << bit
    return mask


def _pack(mask: int) -> bytes:
    return zlib.compress(mask.to_bytes((mask.bit_length() + 7) // 8, "little"), 1)


def _unpack(blob: bytes) -> int:
    return int.from_bytes(zlib.decompress(blob), "little")


class QueryAuditor:
    """Remembers released row sets per (consumer, dataset) and refuses differencing."""

    def __init__(self, path: str | Path = ":memory:", max_history: int = 1000) -> None:
        if max_history < 1:
            raise ValueError("max_history must be at least 1")
        self.path, self.max_history = str(path), max_history
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # public ----------------------------------------------------------------------------------
    def check(self, consumer: str, dataset_id: str, n_rows: int, row_sets: Sequence[Sequence[int]],
              k: int, *, job_id: int | None = None) -> None:
        """Raise :class:`DifferencingRefused` if releasing ``row_sets`` (one per group) to
        ``consumer`` would isolate fewer than ``k`` rows of ``dataset_id`` by subtraction.
        ``job_id`` (optional) ignores that job's own earlier record (a retry)."""
        new = self._new_sets(n_rows, row_sets)
        with self._lock:
            earlier = self._earlier(consumer, dataset_id, n_rows, exclude_job=job_id)
        _audit(n_rows, k, new, earlier)

    def record(self, consumer: str, dataset_id: str, n_rows: int, row_sets: Sequence[Sequence[int]],
               job_id: int) -> None:
        """Remember what job ``job_id`` released (replaces an earlier record of the same job)."""
        self._store(consumer, dataset_id, n_rows, self._new_sets(n_rows, row_sets), job_id)

    def check_and_record(self, consumer: str, dataset_id: str, n_rows: int,
                         row_sets: Sequence[Sequence[int]], k: int, job_id: int) -> None:
        """:meth:`check` then :meth:`record` atomically (no concurrent release slips between)."""
        new = self._new_sets(n_rows, row_sets)
        with self._lock:
            _audit(n_rows, k, new, self._earlier(consumer, dataset_id, n_rows, exclude_job=job_id))
            self._store(consumer, dataset_id, n_rows, new, job_id)

    def history(self, consumer: str, dataset_id: str) -> list[tuple[int, str, int]]:
        """(job id, kind, size) of every remembered set, oldest first."""
        with self._lock:
            return [(int(j), str(kd), int(s)) for j, kd, s in self._db.execute(
                "SELECT job_id, kind, size FROM released_sets WHERE consumer=? AND dataset_id=? "
                "ORDER BY id", (consumer.lower(), dataset_id))]

    # internals -------------------------------------------------------------------------------
    @staticmethod
    def _new_sets(n_rows: int, row_sets: Sequence[Sequence[int]]) -> list[_Set]:
        if n_rows < 0:
            raise ValueError("n_rows must be >= 0")
        out = []
        for rows in row_sets:
            mask = to_mask(rows, n_rows)
            out.append(_Set(mask, mask.bit_count()))
        if len(out) > 1:
            union = 0
            for s in out:
                union |= s.mask
            size = union.bit_count()
            if size == sum(s.size for s in out):          # disjoint groups: the sum is released too
                out.append(_Set(union, size, kind="union"))
        return out

    def _earlier(self, consumer: str, dataset_id: str, n_rows: int,
                 exclude_job: int | None) -> list[_Set]:
        cur = self._db.execute(
            "SELECT job_id, kind, size, n_rows, bitmap FROM released_sets "
            "WHERE consumer=? AND dataset_id=? ORDER BY id", (consumer.lower(), dataset_id))
        out = []
        for job, kind, size, n, blob in cur:
            if exclude_job is not None and job == exclude_job:
                continue
            if n != n_rows:
                raise ValueError(f"dataset {dataset_id} had {n} rows when job {job} was recorded, "
                                 f"now {n_rows}: row indices would not match")
            out.append(_Set(_unpack(blob), int(size), int(job), str(kind)))
        return out

    def _store(self, consumer: str, dataset_id: str, n_rows: int, sets: list[_Set], job_id: int) -> None:
        who, now = consumer.lower(), time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM released_sets WHERE consumer=? AND dataset_id=? AND job_id=?",
                                 (who, dataset_id, job_id))
                self._db.executemany(
                    "INSERT INTO released_sets (consumer, dataset_id, job_id, n_rows, kind, size, bitmap,"
                    " recorded_at) VALUES (?,?,?,?,?,?,?,?)",
                    [(who, dataset_id, job_id, n_rows, s.kind, s.size, _pack(s.mask), now) for s in sets])
                self._db.execute(
                    "DELETE FROM released_sets WHERE consumer=? AND dataset_id=? AND id NOT IN "
                    "(SELECT id FROM released_sets WHERE consumer=? AND dataset_id=? "
                    " ORDER BY id DESC LIMIT ?)", (who, dataset_id, who, dataset_id, self.max_history))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


def _audit(n: int, k: int, new: list[_Set], earlier: list[_Set]) -> None:
    """Raise :class:`DifferencingRefused` on the first rule that fires."""
    if k <= 1:
        return                      # with k = 1 any single row may be released anyway

    def small(rows: int) -> bool:
        return 0 < rows < k

    groups = [s for s in new if s.kind == "group"]
    disjoint = len(groups) < 2 or any(s.kind == "union" for s in new)
    if not disjoint:                # overlapping groups of one release: compare them pairwise
        for a, b in itertools.combinations(groups, 2):
            i = (a.mask & b.mask).bit_count()
            if small(a.size - i) or small(b.size - i):
                raise DifferencingRefused("overlap", min(d for d in (a.size - i, b.size - i) if d > 0),
                                          k, None, "between two groups of this release")
    by_size = sorted(earlier, key=lambda t: -t.size)
    for x in new:
        if small(n - x.size):
            raise DifferencingRefused("complement", n - x.size, k, None)
        subsets, containers = [], []
        for t in earlier:
            i = (x.mask & t.mask).bit_count() if x.size and t.size else 0
            dx, dt = x.size - i, t.size - i
            if small(dx) or small(dt):
                raise DifferencingRefused("overlap", dx if small(dx) else dt, k, t.job_id)
            if i == 0 and small(n - x.size - t.size):
                raise DifferencingRefused("pair-complement", n - x.size - t.size, k, t.job_id)
            if dt == 0 and 0 < t.size < x.size:
                subsets.append(t)
            elif dx == 0 and t.size > x.size:
                containers.append(t)
        # partition of the whole table: X plus pairwise disjoint earlier sets
        w, covered, last = x.mask, x.size, None
        for t in by_size:
            if t.size and not (w & t.mask):
                w |= t.mask
                covered += t.size
                last = t.job_id
        if small(n - covered):
            raise DifferencingRefused("partition", n - covered, k, last)
        # earlier pieces inside X
        p, packed, last = 0, 0, None
        for t in sorted(subsets, key=lambda t: -t.size):
            if not (p & t.mask):
                p |= t.mask
                packed += t.size
                last = t.job_id
        if small(x.size - packed):
            raise DifferencingRefused("subset-packing", x.size - packed, k, last)
        # X as one piece of an earlier container T
        for c in sorted(containers, key=lambda t: t.size)[:CONTAINER_LIMIT]:
            outside, p, packed = ~c.mask, x.mask, x.size
            for t in by_size:
                if t.size < c.size and t.size and not (t.mask & outside) and not (p & t.mask):
                    p |= t.mask
                    packed += t.size
            if small(c.size - packed):
                raise DifferencingRefused("container-packing", c.size - packed, k, c.job_id)
