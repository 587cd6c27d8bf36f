"""The oracle's durable journal (SQLite, WAL): what was seen, accepted, computed and posted.

Every transition is committed before the action that depends on it, and every chain action
is idempotent, so a crash at any point is recovered by reconciling the journal with the chain
on restart: nothing is lost and nothing is posted twice.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from chain.errors import TdsError

# seen -> accepted -> computed -> posted        (happy path)
# seen|accepted|computed -> failed-posted       (job error reported on chain)
# any -> skipped                                 (not ours / already settled on chain)
STATES = ("seen", "accepted", "computed", "posted", "failed-posted", "skipped")
TERMINAL = frozenset({"posted", "failed-posted", "skipped"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, block INTEGER NOT NULL, block_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
  job_id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  request_block INTEGER NOT NULL,
  request_tx TEXT NOT NULL,
  payload TEXT NOT NULL DEFAULT '{}',
  result TEXT NOT NULL DEFAULT '{}',
  attempts INTEGER NOT NULL DEFAULT 0,
  updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""


class JournalMismatch(TdsError):
    """The journal was written for another chain, Jobs contract or oracle account."""


@dataclass(frozen=True)
class JobEntry:
    job_id: int
    state: str
    request_block: int
    request_tx: str
    payload: dict[str, Any]
    result: dict[str, Any]
    attempts: int


class Journal:
    """Thread-safe access to one SQLite journal file."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def bind_to(self, chain_id: int, jobs_address: str, oracle: str | None = None) -> None:
        """Tie the journal to one Jobs contract (job ids are only unique per contract) and, given
        ``oracle``, to that account: two oracles sharing a journal would each take the other's
        accepted jobs for their own."""
        want = f"{chain_id}:{jobs_address.lower()}"
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='jobs'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta(key, value) VALUES('jobs', ?)", (want,))
            elif row[0] != want:
                raise JournalMismatch(
                    f"journal {self.path} belongs to Jobs {row[0]}, not {want}; use another journal file "
                    "(each deployment needs its own)")
            if oracle is None:
                return
            row = self._db.execute("SELECT value FROM meta WHERE key='oracle'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta(key, value) VALUES('oracle', ?)", (oracle.lower(),))
            elif row[0] != oracle.lower():
                raise JournalMismatch(
                    f"journal {self.path} belongs to oracle {row[0]}, not {oracle.lower()}; each oracle needs its "
                    "own journal (run each one with its own TDS_HOME)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- cursor and recent block hashes (reorg detection) ---------------------------------
    def cursor(self, name: str) -> tuple[int, str] | None:
        row = self._db.execute("SELECT block, block_hash FROM cursor WHERE name=?", (name,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_cursor(self, name: str, block: int, block_hash: str, keep: int = 256) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO cursor(name, block, block_hash) VALUES(?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET block=excluded.block, block_hash=excluded.block_hash",
                (name, block, block_hash),
            )
            self._db.execute("INSERT OR REPLACE INTO blocks(number, hash) VALUES(?,?)", (block, block_hash))
            self._db.execute("DELETE FROM blocks WHERE number < ?", (block - keep,))
            self._db.execute("COMMIT")

    def block_hash(self, number: int) -> str | None:
        row = self._db.execute("SELECT hash FROM blocks WHERE number=?", (number,)).fetchone()
        return row[0] if row else None

    def known_blocks_below(self, number: int) -> list[tuple[int, str]]:
        """Recorded (block, hash) pairs below ``number``, newest first."""
        return self._db.execute(
            "SELECT number, hash FROM blocks WHERE number < ? ORDER BY number DESC", (number,)
        ).fetchall()

    def forget_blocks_from(self, number: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM blocks WHERE number >= ?", (number,))

    # -- jobs -----------------------------------------------------------------------------
    def record_seen(self, job_id: int, block: int, tx: str, payload: dict[str, Any]) -> bool:
        """Insert a newly seen job; False if it was already journaled (events are replayed)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO jobs(job_id, state, request_block, request_tx, payload, updated_at) "
                "VALUES(?,?,?,?,?,?)",
                (job_id, "seen", block, tx, json.dumps(payload, sort_keys=True), time.time()),
            )
            return cur.rowcount == 1

    def record_seen_many(self, rows: list[tuple[int, int, str, dict[str, Any]]]) -> list[int]:
        """:meth:`record_seen` of every ``(job_id, block, tx, payload)`` in one SQLite transaction (one
        sync to disk instead of one per job); returns the ids that were new."""
        new: list[int] = []
        with self._lock, self._atomic():
            for job_id, block, tx, payload in rows:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO jobs(job_id, state, request_block, request_tx, payload, updated_at) "
                    "VALUES(?,?,?,?,?,?)",
                    (job_id, "seen", block, tx, json.dumps(payload, sort_keys=True), time.time()),
                )
                if cur.rowcount == 1:
                    new.append(job_id)
        return new

    def transition_many(self, job_ids: list[int], state: str) -> None:
        """:meth:`transition` of several jobs to ``state`` in one SQLite transaction: all or none is
        journaled (either is a state the runner reconciles with the chain), with one sync to disk."""
        if state not in STATES:
            raise ValueError(f"unknown journal state {state!r}")
        now = time.time()
        with self._lock, self._atomic():
            self._db.executemany("UPDATE jobs SET state=?, updated_at=? WHERE job_id=?",
                                 [(state, now, j) for j in job_ids])

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def transition(self, job_id: int, state: str, result: dict[str, Any] | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown journal state {state!r}")
        with self._lock:
            if result is None:
                self._db.execute("UPDATE jobs SET state=?, updated_at=? WHERE job_id=?", (state, time.time(), job_id))
            else:
                self._db.execute(
                    "UPDATE jobs SET state=?, result=?, updated_at=? WHERE job_id=?",
                    (state, json.dumps(result, sort_keys=True), time.time(), job_id),
                )

    def bump_attempts(self, job_id: int) -> int:
        with self._lock:
            self._db.execute("UPDATE jobs SET attempts = attempts + 1 WHERE job_id=?", (job_id,))
            return self._db.execute("SELECT attempts FROM jobs WHERE job_id=?", (job_id,)).fetchone()[0]

    def get(self, job_id: int) -> JobEntry | None:
        row = self._db.execute(
            "SELECT job_id, state, request_block, request_tx, payload, result, attempts FROM jobs WHERE job_id=?",
            (job_id,),
        ).fetchone()
        return _entry(row) if row else None

    def unfinished(self) -> Iterator[JobEntry]:
        rows = self._db.execute(
            "SELECT job_id, state, request_block, request_tx, payload, result, attempts FROM jobs "
            f"WHERE state NOT IN ({','.join('?' * len(TERMINAL))}) ORDER BY job_id",
            tuple(TERMINAL),
        ).fetchall()
        return (_entry(r) for r in rows)

    def forget_jobs_from_block(self, block: int) -> int:
        """Drop not-yet-acted-on jobs first seen at or after ``block`` (a reorg removed them)."""
        with self._lock:
            cur = self._db.execute("DELETE FROM jobs WHERE request_block >= ? AND state='seen'", (block,))
            return cur.rowcount

    def reopen_recent(self, since: float) -> int:
        """After a reorg: settled jobs touched since ``since`` go back to be re-checked against
        the chain (to ``computed`` if a result is journaled, else to ``seen``)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET state = CASE WHEN result LIKE '%\"cid\"%' THEN 'computed' ELSE 'seen' END "
                "WHERE state IN ('posted', 'failed-posted', 'skipped') AND updated_at >= ?", (since,))
            return cur.rowcount

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())


def _entry(row: tuple) -> JobEntry:
    return JobEntry(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), row[6])
