"""Alerts and the append-only alert log.

An :class:`Alert` names the rule that raised it, its severity, its subject (a grant, consumer,
oracle or asset), the grants a freeze would cover and the evidence: chain events as
``<tx hash>:<log index>`` and log records as ``log:<record id>``. Its id is a hash of the rule,
the subject and the observation that tripped the rule, so replaying the same events after a
restart gives the same id and never a second alert.

The alert log is an :class:`audit.oplog.OpLog` under the monitor's DID (records ``alert``,
``freeze``; the regulator's ``review`` and ``unfreeze`` go to its own log): closed batches are
anchored through Evidence like every other operation log (:class:`audit.anchor.Anchorer`), so an
auditor can prove an alert was raised and when.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from audit.oplog import Batch, OpLog, OpRecord
from chain.errors import TdsError

SEVERITIES = ("info", "warning", "severe", "critical")


class UnknownAlert(TdsError):
    """No alert with this id is in the alert log."""

    def __init__(self, alert_id: str, folder: Path):
        self.alert_id = alert_id
        super().__init__(f"no alert {alert_id!r} in the alert log {folder}; list them with 'tds regulator alerts'")


@dataclass(frozen=True)
class Alert:
    """One rule tripping on one subject, with the evidence that tripped it."""

    id: str
    rule: str
    kind: str
    severity: str
    subject: str                 # "grant:7", "consumer:0xAb…", "oracle:0xCd…", "asset:3"
    grants: tuple[int, ...]      # grants a freeze action covers (may be empty)
    evidence: tuple[str, ...]    # "0x<tx>:<log index>" or "log:<record id>"
    time: float                  # when the tripping observation happened (block time / record time)
    block: int | None            # block of the tripping chain event (None for a log record)
    reason_code: int
    actions: tuple[str, ...]
    detail: str

    @staticmethod
    def make_id(rule: str, subject: str, trigger: str) -> str:
        """Deterministic id: the same rule, subject and tripping observation give the same alert."""
        return hashlib.sha256(f"{rule}|{subject}|{trigger}".encode()).hexdigest()[:24]

    @property
    def transactions(self) -> list[str]:
        """Transaction hashes among the evidence."""
        return sorted({e.split(":", 1)[0] for e in self.evidence if e.startswith("0x")})

    @property
    def log_records(self) -> list[str]:
        """Log record ids among the evidence."""
        return [e[4:] for e in self.evidence if e.startswith("log:")]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["grants"], d["evidence"], d["actions"] = list(self.grants), list(self.evidence), list(self.actions)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Alert":
        return cls(**{**d, "grants": tuple(d["grants"]), "evidence": tuple(d["evidence"]),
                      "actions": tuple(d["actions"])})


def read_records(log: OpLog) -> Iterator[OpRecord]:
    """Every record of ``log``: closed batches in order, then the open file."""
    for path in sorted(log.folder.glob("batch-*.jsonl")):
        yield from Batch.from_jsonl(log.producer, path.read_bytes(), str(path)).records
    yield from log.pending().records


class AlertLog:
    """The monitor's append-only alert log: one ``alert`` record per alert, one ``freeze`` record
    per freeze sent, each written at most once (record ids are derived from the alert id)."""

    def __init__(self, folder: Path, producer_did: str, producer_address: str):
        self.oplog = OpLog(folder, producer_did)
        self.address = producer_address
        self._ids: set[str] | None = None

    @property
    def folder(self) -> Path:
        return self.oplog.folder

    def _known(self) -> set[str]:
        if self._ids is None:
            self._ids = {r.id for r in read_records(self.oplog)}
        return self._ids

    def _append_once(self, record: OpRecord) -> bool:
        if record.id in self._known():
            return False
        self.oplog.append(record)
        self._known().add(record.id)
        return True

    def record_alert(self, alert: Alert) -> bool:
        """Append ``alert``; False if it is already in the log (a replay after a restart)."""
        obj = {k: v for k, v in alert.to_json().items() if k not in ("id", "time")}
        return self._append_once(OpRecord("alert", self.oplog.producer, self.address, obj, id=alert.id,
                                          time=alert.time))

    def record_freeze(self, alert: Alert, grant: int, outcome: str, tx: str | None) -> bool:
        """Append the freeze of ``grant`` for ``alert`` (``outcome``: sent, already-frozen, not-active)."""
        obj = {"alert": alert.id, "grant": grant, "reason_code": alert.reason_code, "outcome": outcome, "tx": tx}
        return self._append_once(OpRecord("freeze", self.oplog.producer, self.address, obj,
                                          id=f"{alert.id}-freeze-{grant}"))

    def alerts(self) -> list[Alert]:
        """Every alert in the log, oldest first."""
        out = []
        for r in read_records(self.oplog):
            if r.action == "alert":
                out.append(Alert.from_json({**r.object, "id": r.id, "time": r.time}))
        return out

    def freezes(self) -> list[dict[str, Any]]:
        return [dict(r.object, id=r.id, time=r.time) for r in read_records(self.oplog) if r.action == "freeze"]

    def get(self, alert_id: str) -> Alert:
        for a in self.alerts():
            if a.id == alert_id:
                return a
        raise UnknownAlert(alert_id, self.folder)


class ReviewLog:
    """The regulator's log of reviews and restores, under its own identity (anchored by it)."""

    def __init__(self, folder: Path, reviewer_did: str, reviewer_address: str):
        self.oplog = OpLog(folder, reviewer_did)
        self.address = reviewer_address

    def review(self, alert: Alert, note: str, decision: str = "reviewed") -> OpRecord:
        """Record that the regulator looked at ``alert`` (with a note and a decision)."""
        obj = {"alert": alert.id, "rule": alert.rule, "subject": alert.subject, "note": note, "decision": decision,
               "alert_hash": "0x" + hashlib.sha256(json.dumps(alert.to_json(), sort_keys=True).encode()).hexdigest()}
        return self.oplog.append(OpRecord("review", self.oplog.producer, self.address, obj))

    def restore(self, grant: int, tx: str, alert_ids: list[str]) -> OpRecord:
        """Record that the regulator lifted the freeze on ``grant`` (transaction ``tx``)."""
        return self.oplog.append(OpRecord("unfreeze", self.oplog.producer, self.address,
                                          {"grant": grant, "tx": tx, "alerts": alert_ids}))

    def reviews(self) -> list[dict[str, Any]]:
        return [dict(r.object, id=r.id, time=r.time, action=r.action, by=r.actor_did)
                for r in read_records(self.oplog)]
