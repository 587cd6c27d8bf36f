"""The key service's durable release state: one SQLite file (WAL, ``synchronous=FULL``).

* **Releases** — one per job: the query hash it was released for, the sealed answer bytes
  (so a retry after an oracle or provider restart gets the *same* bytes, hence the same CID
  and hash on chain) and the release record. A second release of a job for another query is
  :class:`offchain.errors.GrantRefused`; the same query again changes nothing (first wins).
  In commit order they are the release log (:meth:`ReleaseLedger.releases`).
* **Prepared grants** — what ``prepare`` checked on chain, keyed by (job, oracle, query hash),
  taken once by ``release``. Each expires after its TTL (never returned afterwards) and at most
  ``max_prepared`` are kept (the oldest are evicted first), so the table stays bounded.

Thread-safe: one connection guarded by a lock (the HTTP app runs handlers in threads), and
every write is an ``IMMEDIATE`` transaction, so two processes on one file are also serialised.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

from eth_utils import keccak

from offchain.errors import GrantRefused

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL UNIQUE,
    query_hash  TEXT    NOT NULL,
    sealed      BLOB    NOT NULL,
    record      TEXT    NOT NULL,
    released_at REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS prepared (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL,
    oracle      TEXT    NOT NULL,
    query_hash  TEXT    NOT NULL,
    grant_json  TEXT    NOT NULL,
    expires_at  REAL    NOT NULL,
    UNIQUE (job_id, oracle, query_hash)
);
CREATE INDEX IF NOT EXISTS prepared_expiry ON prepared (expires_at);
"""
MAX_PREPARED = 10_000


class ReleaseLedger:
    """Releases and prepared grants of one provider's key service, in the file ``path``."""

    def __init__(self, path: Path | str, *, max_prepared: int = MAX_PREPARED,
                 clock: Callable[[], float] = time.time):
        if max_prepared < 1:
            raise ValueError(f"max_prepared must be at least 1, not {max_prepared}")
        self.path = Path(path)
        self.max_prepared = max_prepared
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # the file holds sealed answers: owner only
        os.close(fd)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); "
                                           "put the ledger on a local file system")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the file (a later instance on the same path sees everything committed)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> "ReleaseLedger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn`` in one IMMEDIATE transaction under the lock; commit, or roll back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    # --- releases ---------------------------------------------------------------------------
    def released(self, job_id: int) -> tuple[str, bytes] | None:
        """(query hash, sealed answer bytes) of ``job_id``'s release, or None."""
        with self._lock:
            row = self._db.execute("SELECT query_hash, sealed FROM releases WHERE job_id = ?",
                                   (int(job_id),)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def record_release(self, job_id: int, query_hash: str, sealed: bytes, record: dict[str, Any]) -> None:
        """Record ``job_id``'s one release. The same query hash again is a no-op (the first sealed
        bytes stay); another query hash raises :class:`GrantRefused`."""
        body = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)

        def _do(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT query_hash FROM releases WHERE job_id = ?", (int(job_id),)).fetchone()
            if row is not None:
                if row[0] != query_hash:
                    raise GrantRefused(f"job {job_id} was already released for query {row[0]}, not {query_hash}; "
                                       "one release per job")
                return
            db.execute("INSERT INTO releases (job_id, query_hash, sealed, record, released_at) VALUES (?, ?, ?, ?, ?)",
                       (int(job_id), query_hash, bytes(sealed), body, self.clock()))

        self._write(_do)

    def discard_release(self, job_id: int, query_hash: str) -> bool:
        """Undo ``job_id``'s release for ``query_hash`` — only for a release the chain then refused
        (nothing left the key service). True if one was removed; its sequence number stays unused."""
        return self._write(lambda db: db.execute("DELETE FROM releases WHERE job_id = ? AND query_hash = ?",
                                                 (int(job_id), query_hash)).rowcount) > 0

    def releases(self, since: int = 0) -> list[dict[str, Any]]:
        """The release log after sequence number ``since``, in commit order: ``seq``, ``job_id``,
        ``query_hash``, ``sealed``, ``sealed_hash`` (keccak, as posted on chain), ``record``,
        ``released_at``."""
        with self._lock:
            rows = self._db.execute("SELECT seq, job_id, query_hash, sealed, record, released_at FROM releases "
                                    "WHERE seq > ? ORDER BY seq", (int(since),)).fetchall()
        return [{"seq": seq, "job_id": job, "query_hash": qh, "sealed": bytes(sealed),
                 "sealed_hash": "0x" + keccak(bytes(sealed)).hex(), "record": json.loads(rec), "released_at": at}
                for seq, job, qh, sealed, rec, at in rows]

    # --- prepared grants ----------------------------------------------------------------------
    def put_prepared(self, job_id: int, oracle: str, query_hash: str, grant: dict[str, Any], ttl_s: float) -> None:
        """Keep ``grant`` for (job, oracle, query) for ``ttl_s`` seconds (replacing an earlier
        one); expired entries are dropped and beyond ``max_prepared`` the oldest are evicted."""
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, not {ttl_s}")
        body = json.dumps(grant, sort_keys=True, separators=(",", ":"), default=str)

        def _do(db: sqlite3.Connection) -> None:
            key = (int(job_id), oracle.lower(), query_hash)
            db.execute("DELETE FROM prepared WHERE job_id = ? AND oracle = ? AND query_hash = ?", key)
            now = self.clock()
            db.execute("DELETE FROM prepared WHERE expires_at <= ?", (now,))
            db.execute("INSERT INTO prepared (job_id, oracle, query_hash, grant_json, expires_at) VALUES (?, ?, ?, ?, ?)",
                       (*key, body, now + float(ttl_s)))
            excess = db.execute("SELECT COUNT(*) FROM prepared").fetchone()[0] - self.max_prepared
            if excess > 0:
                db.execute("DELETE FROM prepared WHERE id IN (SELECT id FROM prepared ORDER BY id LIMIT ?)", (excess,))

        self._write(_do)

    def take_prepared(self, job_id: int, oracle: str, query_hash: str) -> dict[str, Any] | None:
        """Remove and return the grant kept for (job, oracle, query); None if absent or expired."""
        def _do(db: sqlite3.Connection) -> dict[str, Any] | None:
            key = (int(job_id), oracle.lower(), query_hash)
            row = db.execute("SELECT grant_json, expires_at FROM prepared WHERE job_id = ? AND oracle = ? "
                             "AND query_hash = ?", key).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM prepared WHERE job_id = ? AND oracle = ? AND query_hash = ?", key)
            return json.loads(row[0]) if row[1] > self.clock() else None

        return self._write(_do)

    def purge_expired(self, now: float | None = None) -> int:
        """Delete prepared grants expired at ``now`` (default: the clock); how many were deleted."""
        at = self.clock() if now is None else float(now)
        return self._write(lambda db: db.execute("DELETE FROM prepared WHERE expires_at <= ?", (at,)).rowcount)

    def prepared_count(self) -> int:
        """How many prepared grants are kept (expired ones not yet purged included)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM prepared").fetchone()[0])
