"""Findings and their tracking to closure: opened → acknowledged → fixed → verified.

A finding is a :class:`~oversight.compliance.checks.Violation` kept across scans under its stable
key. The store is SQLite (WAL) in the scanning authority's work folder. Every transition is first
appended as a ``finding`` record (the standard operation-log format of ``audit.oplog``) to the
**actor's own** operation log and anchored through ``Evidence.anchorBatch`` from the actor's
account (``audit.anchor.Anchorer``: one batch per transition), then committed to the store with the
batch file and its root — so each step is attributable to whoever took it and provable on chain
(:func:`check_anchored` re-hashes the record, rebuilds the batch root, finds the actor's
``BatchAnchored`` and asks ``Evidence.verifyRecord``). Who may take which step:

| transition | by |
|---|---|
| → opened | the scan (its account) |
| opened → acknowledged, acknowledged → fixed | the responsible party's account |
| fixed → verified | the scanning authority, only when a fresh scan no longer shows the violation |
| fixed → opened (reopened) | the scan, when the violation is still there after a fix |
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from audit.anchor import Anchorer
from audit.oplog import Batch, OpLog, OpRecord
from chain.errors import TdsError
from chain.tx import Sender
from oversight.compliance.checks import Violation

STATES = ("opened", "acknowledged", "fixed", "verified")
ALLOWED = {None: ("opened",), "opened": ("acknowledged",), "acknowledged": ("fixed",),
           "fixed": ("verified", "opened"), "verified": ("opened",)}
OPEN_STATES = ("opened", "acknowledged", "fixed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
  id TEXT PRIMARY KEY, check_name TEXT, category TEXT, severity TEXT, subject TEXT, responsible TEXT,
  detail TEXT, fix TEXT, evidence TEXT, state TEXT, first_seen REAL, last_seen REAL, last_block INTEGER,
  present INTEGER);
CREATE TABLE IF NOT EXISTS transitions (
  finding TEXT, seq INTEGER, from_state TEXT, to_state TEXT, actor TEXT, actor_did TEXT, note TEXT,
  record TEXT, batch TEXT, root TEXT, time REAL, PRIMARY KEY (finding, seq));
CREATE TABLE IF NOT EXISTS deliveries (finding TEXT, target TEXT, time REAL, PRIMARY KEY (finding, target));
"""


class UnknownFinding(TdsError):
    """No finding with this id in the store."""

    def __init__(self, finding_id: str, path: Path):
        super().__init__(f"no finding {finding_id!r} in {path}; list them with 'tds compliance findings'")


class TransitionRefused(TdsError):
    """A transition the state machine or the actor's standing does not allow (names both)."""


class NotAnchored(TdsError):
    """A transition whose record is not provably in an anchored batch of its actor."""


@dataclass(frozen=True)
class Finding:
    id: str
    check: str
    category: str
    severity: str
    subject: str
    responsible: str
    detail: str
    fix: str
    evidence: tuple[str, ...]
    state: str
    first_seen: float
    last_seen: float
    last_block: int
    present: bool

    def to_json(self) -> dict[str, Any]:
        """The finding as JSON (what the report and the push carry)."""
        d = asdict(self)
        d["evidence"] = list(self.evidence)
        return d

    def digest(self) -> str:
        """sha-256 of what was found (not of its state), carried in every transition record."""
        body = {k: v for k, v in self.to_json().items() if k in ("id", "check", "subject", "detail", "evidence")}
        return "0x" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Transition:
    finding: str
    seq: int
    from_state: str | None
    to_state: str
    actor: str
    actor_did: str
    note: str
    record: str          # the canonical record (JSON) as anchored
    batch: str           # the batch file it was anchored in
    root: str            # that batch's Merkle root
    time: float

    def to_json(self) -> dict[str, Any]:
        """The transition as JSON."""
        return asdict(self)


class TransitionAnchor:
    """Appends a transition record to the actor's operation log and anchors it at once."""

    def __init__(self, w3: Any, evidence: Any, folder: Path, from_block: int = 0):
        self.w3, self.evidence, self.folder, self.from_block = w3, evidence, folder, from_block

    def __call__(self, account: Any, actor_did: str, obj: dict[str, Any]) -> tuple[OpRecord, Path, bytes]:
        log = OpLog(self.folder / account.address, actor_did)
        record = log.append(OpRecord("finding", actor_did, account.address, obj))
        before = set(log.folder.glob("batch-*.jsonl"))
        Anchorer(log, self.evidence, Sender(self.w3, account), self.w3, self.from_block).anchor()
        path = next(iter(set(log.folder.glob("batch-*.jsonl")) - before))
        return record, path, Batch.from_jsonl(actor_did, path.read_bytes(), str(path)).root


def _finding(row: sqlite3.Row) -> Finding:
    return Finding(row["id"], row["check_name"], row["category"], row["severity"], row["subject"], row["responsible"],
                   row["detail"], row["fix"], tuple(json.loads(row["evidence"])), row["state"], row["first_seen"],
                   row["last_seen"], row["last_block"], bool(row["present"]))


class FindingStore:
    """The findings of one deployment and every transition of each."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def get(self, finding_id: str) -> Finding:
        """The finding with this id (or a unique prefix of at least 6 characters)."""
        row = self.db.execute("SELECT * FROM findings WHERE id = ?", (finding_id,)).fetchone()
        if row is None:
            matches = self.db.execute("SELECT * FROM findings WHERE id LIKE ?", (finding_id + "%",)).fetchall()
            if len(matches) != 1 or len(finding_id) < 6:
                raise UnknownFinding(finding_id, self.path)
            row = matches[0]
        return _finding(row)

    def list(self, state: str | None = None) -> list[Finding]:
        """Every finding (or those in ``state``), oldest first."""
        rows = self.db.execute("SELECT * FROM findings ORDER BY first_seen, id").fetchall()
        return [f for f in map(_finding, rows) if state is None or f.state == state]

    def seen(self, v: Violation, block: int, at: float) -> Finding | None:
        """Record that a scan saw ``v``; returns the stored finding, or None if it is new."""
        row = self.db.execute("SELECT * FROM findings WHERE id = ?", (v.key,)).fetchone()
        if row is None:
            return None
        self.db.execute("UPDATE findings SET severity=?, detail=?, fix=?, evidence=?, last_seen=?, last_block=?, "
                        "present=1 WHERE id=?", (v.severity, v.detail, v.fix, json.dumps(list(v.evidence)), at, block,
                                                 v.key))
        return self.get(v.key)

    def absent(self, present_keys: set[str], categories: tuple[str, ...]) -> list[Finding]:
        """Mark findings of ``categories`` that this scan did not see; returns them."""
        out = []
        for f in self.list():
            if f.category in categories and f.id not in present_keys and f.present:
                self.db.execute("UPDATE findings SET present=0 WHERE id=?", (f.id,))
                out.append(self.get(f.id))
        return out

    def transitions(self, finding_id: str) -> list[Transition]:
        """The finding's transitions in order."""
        rows = self.db.execute("SELECT * FROM transitions WHERE finding=? ORDER BY seq", (finding_id,)).fetchall()
        return [Transition(r["finding"], r["seq"], r["from_state"], r["to_state"], r["actor"], r["actor_did"],
                           r["note"], r["record"], r["batch"], r["root"], r["time"]) for r in rows]

    def open(self, v: Violation, block: int, at: float, account: Any, actor_did: str,
             anchor: Callable[..., tuple[OpRecord, Path, bytes]], note: str = "found by a compliance scan") -> Finding:
        """Store a new finding and anchor its ``opened`` transition."""
        self.db.execute("INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                        (v.key, v.check, v.category, v.severity, v.subject, v.responsible, v.detail, v.fix,
                         json.dumps(list(v.evidence)), None, at, at, block))
        self.transition(v.key, "opened", account, actor_did, anchor, note)
        return self.get(v.key)

    def transition(self, finding_id: str, to: str, account: Any, actor_did: str,
                   anchor: Callable[..., tuple[OpRecord, Path, bytes]], note: str = "") -> Transition:
        """Move a finding to ``to``, anchoring the step first (see the module docstring)."""
        f = self.get(finding_id)
        current = None if f.state is None else f.state
        if to not in ALLOWED.get(current, ()):
            raise TransitionRefused(f"finding {f.id} is {current or 'new'}; it can go to "
                                    f"{' or '.join(ALLOWED.get(current, ())) or 'nothing'}, not {to}")
        if to in ("acknowledged", "fixed") and account.address.lower() != f.responsible.lower():
            raise TransitionRefused(f"finding {f.id} is the responsibility of {f.responsible}; {account.address} "
                                    f"cannot mark it {to}")
        seq = len(self.transitions(f.id))
        obj = {"finding": f.id, "check": f.check, "subject": f.subject, "severity": f.severity, "from": current,
               "to": to, "note": note, "finding_hash": f.digest(), "seq": seq}
        record, path, root = anchor(account, actor_did, obj)
        at = time.time()
        self.db.execute("BEGIN")
        self.db.execute("INSERT INTO transitions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (f.id, seq, current, to, account.address, actor_did, note, record.canonical().decode(),
                         str(path), "0x" + root.hex(), at))
        self.db.execute("UPDATE findings SET state=? WHERE id=?", (to, f.id))
        self.db.execute("COMMIT")
        return self.transitions(f.id)[-1]

    def delivered(self, finding_id: str, target: str) -> bool:
        """True once the finding was pushed to ``target``."""
        return self.db.execute("SELECT 1 FROM deliveries WHERE finding=? AND target=?",
                               (finding_id, target)).fetchone() is not None

    def mark_delivered(self, finding_id: str, target: str) -> None:
        """Record a successful push (pushes are at-least-once)."""
        self.db.execute("INSERT OR IGNORE INTO deliveries VALUES (?,?,?)", (finding_id, target, time.time()))


def check_anchored(t: Transition, evidence: Any, from_block: int = 0) -> dict[str, Any]:
    """Prove that transition ``t`` is anchored: its record is in its batch file, the batch's root is
    the one stored, a ``BatchAnchored`` of the actor carries it, and ``Evidence.verifyRecord``
    accepts the record with its Merkle proof. Returns the batch id, transaction and producer."""
    path = Path(t.batch)
    batch = Batch.from_jsonl(t.actor_did, path.read_bytes(), str(path))
    leaves = [r.canonical() for r in batch.records]
    record = t.record.encode()
    if record not in leaves:
        raise NotAnchored(f"transition {t.finding}#{t.seq} ({t.to_state}) is not in its batch file {path}")
    if "0x" + batch.root.hex() != t.root:
        raise NotAnchored(f"batch {path} hashes to 0x{batch.root.hex()}, not the stored root {t.root}")
    logs = evidence.events.BatchAnchored().get_logs(from_block=from_block,
                                                    argument_filters={"producer": t.actor, "root": batch.root})
    if not logs:
        raise NotAnchored(f"no BatchAnchored by {t.actor} with root {t.root} (transition {t.finding}#{t.seq})")
    batch_id = int(logs[0]["args"]["batchId"])
    proof = batch.tree.proof(leaves.index(record))
    if not evidence.functions.verifyRecord(batch_id, record, proof).call():
        raise NotAnchored(f"Evidence.verifyRecord refuses transition {t.finding}#{t.seq} in batch {batch_id}")
    return {"batchId": batch_id, "tx": logs[0]["transactionHash"].to_0x_hex(), "producer": logs[0]["args"]["producer"]}
