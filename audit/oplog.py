"""Operation-log records in the standard format of 000 §12.3.1.2 and their batches.

A record names: a unique id, the actor (DID and chain address), the time, the action, the
object (asset / grant / job / dataset ids and the permission scope used) and the result
(``ok`` or ``failed`` with an error code). Records serialize canonically (sorted keys, no
spaces, UTF-8) so their Merkle leaves are stable; a batch's root is anchored on chain.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audit.merkle import MerkleTree, leaf_hash

ACTIONS = frozenset({
    "ingest", "quality", "encrypt", "register", "apply", "grant", "revoke", "freeze", "unfreeze",
    "request", "accept", "key-release", "compute", "complete", "fail", "open-result", "download",
    "destroy", "offline", "rate", "withdraw", "alert", "anchor", "result-rejected", "review",
})


class OpLogError(ValueError):
    """A malformed record or batch file (names the file and line)."""


@dataclass(frozen=True)
class OpRecord:
    """One audit-log line."""

    action: str
    actor_did: str
    actor_address: str
    object: dict[str, Any]
    result: str = "ok"
    error_code: str | None = None
    time: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise OpLogError(f"unknown action {self.action!r}; expected one of {sorted(ACTIONS)}")
        if self.result not in ("ok", "failed"):
            raise OpLogError(f"result must be 'ok' or 'failed', not {self.result!r}")
        if self.result == "failed" and not self.error_code:
            raise OpLogError("a failed operation needs an error_code")

    def canonical(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def leaf(self) -> bytes:
        return leaf_hash(self.canonical())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "OpRecord":
        return cls(**data)


@dataclass(frozen=True)
class Batch:
    """A closed batch of records: its Merkle root, period and producer are anchored on chain."""

    producer: str
    records: tuple[OpRecord, ...]

    @property
    def tree(self) -> MerkleTree:
        return MerkleTree.from_records([r.canonical() for r in self.records])

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def period(self) -> tuple[int, int]:
        times = [r.time for r in self.records]
        return int(min(times)), int(max(times)) + 1

    def to_jsonl(self) -> bytes:
        return b"".join(r.canonical() + b"\n" for r in self.records)

    @classmethod
    def from_jsonl(cls, producer: str, data: bytes, source: str = "<batch>") -> "Batch":
        records = []
        for n, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(OpRecord.from_json(json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise OpLogError(f"{source}:{n}: not a valid log record ({exc})") from None
        return cls(producer, tuple(records))


class OpLog:
    """Append-only local log of one producer, closed into batches for anchoring."""

    def __init__(self, folder: Path, producer: str):
        self.folder = folder
        self.producer = producer
        folder.mkdir(parents=True, exist_ok=True)
        self.open_file = folder / "open.jsonl"

    def append(self, record: OpRecord) -> OpRecord:
        with open(self.open_file, "ab") as fh:
            fh.write(record.canonical() + b"\n")
        return record

    def pending(self) -> Batch:
        data = self.open_file.read_bytes() if self.open_file.exists() else b""
        return Batch.from_jsonl(self.producer, data, str(self.open_file))

    def close_batch(self) -> tuple[Path, Batch] | None:
        """Move the open records into a numbered batch file; None if there are none."""
        batch = self.pending()
        if not batch.records:
            return None
        n = len(list(self.folder.glob("batch-*.jsonl")))
        path = self.folder / f"batch-{n:06d}.jsonl"
        path.write_bytes(batch.to_jsonl())
        self.open_file.unlink()
        return path, batch
