"""Operation-log records in the standard format of 000 §12.3.1.2 and their batches.

A record names: a unique id, the actor (DID and chain address), the time, the action, the
object (asset / grant / job / dataset ids and the permission scope used) and the result
(``ok`` or ``failed`` with an error code). Records serialize canonically (sorted keys, no
spaces, UTF-8) so their Merkle leaves are stable; a batch's root is anchored on chain.

A batch's Merkle hash is keccak256, or SM3 under the ``sm`` cryptography profile
(docs/crypto-profile.md). The batch file's name records it — ``batch-000007.jsonl`` (keccak256),
``batch-000007.sm3.jsonl`` (SM3) — and that name is the ``batchRef`` anchored on chain, so every
reader (:meth:`Batch.from_jsonl` given the file's path) recomputes the root with the right hash.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audit.merkle import KECCAK, MerkleTree, leaf_hash
from chain.crypto_profile import configured_profile, get_profile

ACTIONS = frozenset({
    "ingest", "quality", "encrypt", "register", "apply", "grant", "revoke", "freeze", "unfreeze",
    "request", "accept", "key-release", "compute", "complete", "fail", "open-result", "download",
    "destroy", "offline", "rate", "withdraw", "alert", "anchor", "result-rejected", "review", "finding",
})


class OpLogError(ValueError):
    """A malformed record or batch file (names the file and line)."""


def batch_hash_name(source: str) -> str:
    """The Merkle hash a batch file's name records: ``….sm3.jsonl`` is SM3, anything else keccak256."""
    return "sm3" if str(source).endswith(".sm3.jsonl") else KECCAK


def _batch_suffix(hash_name: str) -> str:
    return ".jsonl" if hash_name == KECCAK else f".{hash_name}.jsonl"


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

    def leaf(self, hash_name: str = KECCAK) -> bytes:
        return leaf_hash(self.canonical(), hash_name)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "OpRecord":
        return cls(**data)


@dataclass(frozen=True)
class Batch:
    """A closed batch of records: its Merkle root, period and producer are anchored on chain."""

    producer: str
    records: tuple[OpRecord, ...]
    hash_name: str = KECCAK

    @property
    def tree(self) -> MerkleTree:
        return MerkleTree.from_records([r.canonical() for r in self.records], self.hash_name)

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
    def from_jsonl(cls, producer: str, data: bytes, source: str = "<batch>",
                   hash_name: str | None = None) -> "Batch":
        """Parse a batch file; its Merkle hash is ``hash_name``, else what ``source``'s name records."""
        records = []
        for n, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(OpRecord.from_json(json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise OpLogError(f"{source}:{n}: not a valid log record ({exc})") from None
        return cls(producer, tuple(records), hash_name or batch_hash_name(source))


class OpLog:
    """Append-only local log of one producer, closed into batches for anchoring."""

    def __init__(self, folder: Path, producer: str, profile: str | None = None):
        """``profile`` (default: ``TDS_CRYPTO_PROFILE``) picks the Merkle hash of its batches."""
        self.folder = folder
        self.producer = producer
        self.hash_name = (get_profile(profile) if profile is not None else configured_profile()).merkle_hash
        folder.mkdir(parents=True, exist_ok=True)
        self.open_file = folder / "open.jsonl"

    def append(self, record: OpRecord) -> OpRecord:
        with open(self.open_file, "ab") as fh:
            fh.write(record.canonical() + b"\n")
        return record

    def pending(self) -> Batch:
        data = self.open_file.read_bytes() if self.open_file.exists() else b""
        return Batch.from_jsonl(self.producer, data, str(self.open_file), self.hash_name)

    def close_batch(self) -> tuple[Path, Batch] | None:
        """Move the open records into a numbered batch file; None if there are none."""
        batch = self.pending()
        if not batch.records:
            return None
        n = len(list(self.folder.glob("batch-*.jsonl")))
        path = self.folder / f"batch-{n:06d}{_batch_suffix(self.hash_name)}"
        path.write_bytes(batch.to_jsonl())
        self.open_file.unlink()
        return path, batch
