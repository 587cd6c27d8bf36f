"""The monitor's durable journal (SQLite, WAL, ``synchronous=FULL``).

One transaction per step commits the block cursor, the log positions, the evaluator's windows
and the alerts the step raised; each alert's actions (logged, each freeze, each notification,
anchored) are then marked done one by one. A monitor killed between two of these resumes from
the last commit: the same events are never evaluated twice (no duplicate alert), none is
skipped (no missed alert), and an action not yet marked is redone — a freeze only after
checking the chain (:class:`oversight.actions.Freezer`).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import TdsError
from oversight.alerts import Alert

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), block INTEGER, block_hash TEXT,
                                  snapshot TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  body TEXT NOT NULL,
  since_block INTEGER NOT NULL,
  done TEXT NOT NULL DEFAULT '[]',
  finished INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS freezes (
  alert_id TEXT NOT NULL, grant_id INTEGER NOT NULL, outcome TEXT NOT NULL, tx TEXT,
  PRIMARY KEY (alert_id, grant_id)
);
"""


class JournalMismatch(TdsError):
    """The journal was written for another deployment or another monitor account."""


@dataclass(frozen=True)
class PendingAlert:
    """An alert whose actions are not all done yet."""

    alert: Alert
    since_block: int          # the freeze for it cannot be mined before this block
    done: frozenset[str]      # "logged", "freeze:<grant>", "<notifier name>", "anchored"


class MonitorJournal:
    """Cursor, evaluator state and alerts of one monitor for one deployment."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def bind_to(self, deployment_key: str, monitor: str) -> None:
        """Tie the journal to one deployment and one monitor account."""
        want = f"{deployment_key}:{monitor.lower()}"
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='binding'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta(key, value) VALUES('binding', ?)", (want,))
            elif row[0] != want:
                raise JournalMismatch(f"journal {self.path} belongs to {row[0]}, not {want}; each deployment and "
                                      "monitor account needs its own journal")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def state(self) -> tuple[tuple[int, str] | None, dict[str, Any]]:
        """(cursor block and hash or None, snapshot)."""
        row = self._db.execute("SELECT block, block_hash, snapshot FROM state WHERE id=1").fetchone()
        if row is None:
            return None, {}
        cursor = (row[0], row[1]) if row[0] is not None else None
        return cursor, json.loads(row[2])

    def commit(self, cursor: tuple[int, str] | None, snapshot: dict[str, Any], alerts: list[Alert],
               since_block: int) -> int:
        """Atomically: the new cursor and snapshot, and ``alerts`` (ignoring ids already there).
        Returns how many alerts were new."""
        body = json.dumps(snapshot, sort_keys=True, separators=(",", ":"))
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0]
                new = 0
                for a in alerts:
                    seq += 1
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO alerts(id, seq, body, since_block, created_at) VALUES(?,?,?,?,?)",
                        (a.id, seq, json.dumps(a.to_json(), sort_keys=True), since_block, now))
                    new += cur.rowcount
                self._db.execute(
                    "INSERT INTO state(id, block, block_hash, snapshot) VALUES(1,?,?,?) ON CONFLICT(id) DO UPDATE "
                    "SET block=excluded.block, block_hash=excluded.block_hash, snapshot=excluded.snapshot",
                    (cursor[0] if cursor else None, cursor[1] if cursor else None, body))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return new

    def pending(self) -> list[PendingAlert]:
        rows = self._db.execute("SELECT body, since_block, done FROM alerts WHERE finished=0 ORDER BY seq").fetchall()
        return [PendingAlert(Alert.from_json(json.loads(b)), s, frozenset(json.loads(d))) for b, s, d in rows]

    def mark(self, alert_id: str, step: str) -> None:
        """Record that ``step`` of the alert's actions is done."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT done FROM alerts WHERE id=?", (alert_id,)).fetchone()
            done = sorted(set(json.loads(row[0])) | {step})
            self._db.execute("UPDATE alerts SET done=? WHERE id=?", (json.dumps(done), alert_id))
            self._db.execute("COMMIT")

    def finish(self, alert_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE alerts SET finished=1 WHERE id=?", (alert_id,))

    def record_freeze(self, alert_id: str, grant: int, outcome: str, tx: str | None) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO freezes(alert_id, grant_id, outcome, tx) VALUES(?,?,?,?)",
                             (alert_id, grant, outcome, tx))

    def freezes(self) -> list[tuple[str, int, str, str | None]]:
        return self._db.execute("SELECT alert_id, grant_id, outcome, tx FROM freezes ORDER BY rowid").fetchall()

    def alerts(self) -> list[Alert]:
        return [Alert.from_json(json.loads(b)) for (b,) in self._db.execute("SELECT body FROM alerts ORDER BY seq")]

    def counts(self) -> dict[str, int]:
        total, open_ = self._db.execute("SELECT COUNT(*), SUM(finished=0) FROM alerts").fetchone()
        sent = self._db.execute("SELECT COUNT(*) FROM freezes WHERE outcome='sent'").fetchone()[0]
        return {"alerts": total, "unfinished": open_ or 0, "freezes_sent": sent}
