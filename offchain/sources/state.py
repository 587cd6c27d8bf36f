"""The sources' state file (SQLite, WAL, ``synchronous=FULL``): definitions, the committed
watermark and head version of each source, the version history, consumed message keys, the
quarantine and the monitoring status. A batch's version, watermark, message keys and
quarantined rows are written in one ``IMMEDIATE`` transaction (:meth:`SourceState.commit`):
after a crash the state is exactly that of the last committed batch."""
from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from offchain.sources.errors import SourceExists, UnknownSource
from offchain.sources.spec import SourceSpec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS heads (name TEXT PRIMARY KEY, watermark TEXT, version INTEGER NOT NULL,
  dataset_id TEXT, schema TEXT, manifest_cid TEXT, manifest_hash TEXT, rows INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS versions (name TEXT NOT NULL, version INTEGER NOT NULL, manifest_cid TEXT NOT NULL,
  manifest_hash TEXT NOT NULL, previous_hash TEXT, rows_added INTEGER NOT NULL, rows_total INTEGER NOT NULL,
  quality_hash TEXT, quality_overall TEXT, watermark TEXT, committed REAL NOT NULL, anchored_tx TEXT,
  PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS seen (name TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
  origin TEXT, record TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS status (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""


def encode_watermark(value: Any) -> str | None:
    """Typed JSON for a watermark value (int, decimal, text, date, timestamp)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a boolean cannot be a watermark")
    if isinstance(value, int):
        return json.dumps({"int": value})
    if isinstance(value, Decimal):
        return json.dumps({"decimal": str(value)})
    if isinstance(value, float):
        return json.dumps({"float": repr(value)})
    if isinstance(value, _dt.datetime):
        return json.dumps({"datetime": value.isoformat()})
    if isinstance(value, _dt.date):
        return json.dumps({"date": value.isoformat()})
    return json.dumps({"text": str(value)})


def decode_watermark(raw: str | None) -> Any:
    if raw is None:
        return None
    (kind, v), = json.loads(raw).items()
    return {"int": int, "decimal": Decimal, "float": float, "datetime": _dt.datetime.fromisoformat,
            "date": _dt.date.fromisoformat, "text": str}[kind](v)


@dataclass(frozen=True)
class Head:
    """A source's committed position: watermark, head version and its manifest."""

    name: str
    watermark: Any
    version: int
    dataset_id: str | None
    schema: dict | None
    manifest_cid: str | None
    manifest_hash: str | None
    rows: int


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: int
    manifest_cid: str
    manifest_hash: str
    previous_hash: str | None
    rows_added: int
    rows_total: int
    quality_hash: str | None
    quality_overall: str | None
    watermark: Any
    committed: float
    anchored_tx: str | None = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["watermark"] = encode_watermark(self.watermark)
        return d


@dataclass(frozen=True)
class Quarantined:
    """One row that could not be stored, with why and where it came from."""

    origin: str
    record: Any
    reason: str


class SourceState:
    """One state file for all sources of a provider (``$TDS_HOME/sources/state.sqlite``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        if fresh:
            os.chmod(self.path, 0o600)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> "_Tx":
        return _Tx(self)

    # definitions ---------------------------------------------------------------------------
    def add(self, spec: SourceSpec) -> None:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM sources WHERE name=?", (spec.name,)).fetchone():
                raise SourceExists(spec.name)
            db.execute("INSERT INTO sources VALUES (?,?,?)", (spec.name, json.dumps(spec.to_dict()), time.time()))
            db.execute("INSERT INTO heads (name, version) VALUES (?, 0)", (spec.name,))

    def spec(self, name: str) -> SourceSpec:
        row = self._db.execute("SELECT spec FROM sources WHERE name=?", (name,)).fetchone()
        if row is None:
            raise UnknownSource(name)
        return SourceSpec.from_dict(json.loads(row[0]))

    def names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM sources ORDER BY name")]

    # position ------------------------------------------------------------------------------
    def head(self, name: str) -> Head:
        row = self._db.execute("SELECT watermark, version, dataset_id, schema, manifest_cid, manifest_hash, rows "
                               "FROM heads WHERE name=?", (name,)).fetchone()
        if row is None:
            raise UnknownSource(name)
        return Head(name, decode_watermark(row[0]), row[1], row[2], json.loads(row[3]) if row[3] else None,
                    row[4], row[5], row[6])

    def has_seen(self, name: str, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` were consumed by a committed batch already."""
        keys = list(keys)
        out: set[str] = set()
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            q = f"SELECT key FROM seen WHERE name=? AND key IN ({','.join('?' * len(part))})"
            out.update(r[0] for r in self._db.execute(q, (name, *part)))
        return out

    def commit(self, name: str, *, version: VersionRecord | None, dataset_id: str | None, schema: dict | None,
               watermark: Any = None, keys: Iterable[str] = (), quarantined: Iterable[Quarantined] = ()) -> None:
        """One atomic step: the new head (version, watermark), its history row, the consumed
        message keys and the quarantined rows. ``version`` None records keys/quarantine only."""
        now = time.time()
        with self._tx() as db:
            if version is not None:
                db.execute("INSERT INTO versions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           (name, version.version, version.manifest_cid, version.manifest_hash,
                            version.previous_hash, version.rows_added, version.rows_total, version.quality_hash,
                            version.quality_overall, encode_watermark(version.watermark), version.committed, None))
                db.execute("UPDATE heads SET version=?, dataset_id=?, schema=?, manifest_cid=?, manifest_hash=?, "
                           "rows=? WHERE name=?", (version.version, dataset_id, json.dumps(schema),
                                                   version.manifest_cid, version.manifest_hash,
                                                   version.rows_total, name))
            if watermark is not None:
                db.execute("UPDATE heads SET watermark=? WHERE name=?", (encode_watermark(watermark), name))
            db.executemany("INSERT OR IGNORE INTO seen VALUES (?,?)", ((name, k) for k in keys))
            db.executemany("INSERT INTO quarantine (name, origin, record, reason, at) VALUES (?,?,?,?,?)",
                           ((name, q.origin, json.dumps(q.record, default=str), q.reason, now) for q in quarantined))

    # history -------------------------------------------------------------------------------
    def versions(self, name: str) -> list[VersionRecord]:
        rows = self._db.execute("SELECT * FROM versions WHERE name=? ORDER BY version", (name,)).fetchall()
        return [VersionRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], decode_watermark(r[9]),
                              r[10], r[11]) for r in rows]

    def set_anchored(self, name: str, version: int, tx: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE versions SET anchored_tx=? WHERE name=? AND version=?", (tx, name, version))

    def quarantine(self, name: str, limit: int = 100) -> list[dict]:
        rows = self._db.execute("SELECT id, origin, record, reason, at FROM quarantine WHERE name=? ORDER BY id "
                                "LIMIT ?", (name, limit)).fetchall()
        return [{"id": r[0], "origin": r[1], "record": json.loads(r[2]), "reason": r[3], "at": r[4]} for r in rows]

    def quarantine_count(self, name: str) -> int:
        return self._db.execute("SELECT count(*) FROM quarantine WHERE name=?", (name,)).fetchone()[0]

    # monitoring ----------------------------------------------------------------------------
    def status(self, name: str) -> dict:
        row = self._db.execute("SELECT doc FROM status WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_status(self, name: str, doc: dict) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO status VALUES (?,?) ON CONFLICT(name) DO UPDATE SET doc=excluded.doc",
                       (name, json.dumps(doc, default=str)))


class _Tx:
    def __init__(self, state: SourceState) -> None:
        self.s = state

    def __enter__(self) -> sqlite3.Connection:
        self.s._lock.acquire()
        self.s._db.execute("BEGIN IMMEDIATE")
        return self.s._db

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            self.s._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.s._lock.release()


