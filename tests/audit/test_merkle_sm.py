"""Operation-log Merkle batches under the ``sm`` profile: SM3 trees, the algorithm recorded in the
batch's name (and so in the anchored ``batchRef``), anchoring, and the auditor's verification."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_utils import keccak

from audit.anchor import Anchorer
from audit.events import ChainEvent
from audit.merkle import MerkleTree, hash_pair, leaf_hash, verify
from audit.oplog import Batch, OpLog, OpRecord, batch_hash_name
from audit.verify import verify_batch_file, verify_document
from chain.sm import sm3

PROVIDER = "0x" + "11" * 20


def _rec(i: int) -> OpRecord:
    return OpRecord("key-release", "did:key:z6Mkprovider", PROVIDER, {"asset": 1, "job": i}, time=1_700_000_000 + i)


def test_sm3_tree_is_the_keccak_construction_over_sm3() -> None:
    records = [f"record {i}".encode() for i in range(5)]
    tree = MerkleTree.from_records(records, "sm3")
    assert tree.hash_name == "sm3" and tree.levels[0][0] == sm3(sm3(records[0])) == leaf_hash(records[0], "sm3")
    a, b = tree.levels[0][0], tree.levels[0][1]
    assert tree.levels[1][0] == sm3(min(a, b) + max(a, b)) == hash_pair(a, b, "sm3")
    for i, r in enumerate(records):
        assert verify(tree.proof(i), tree.root, leaf_hash(r, "sm3"), "sm3")
        assert not verify(tree.proof(i), tree.root, leaf_hash(r, "sm3"))          # not a keccak tree
    assert MerkleTree.from_records(records).root != tree.root
    assert MerkleTree.from_records(records).levels[0][0] == keccak(keccak(records[0]))   # default unchanged


def test_the_batch_file_name_records_the_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")
    log = OpLog(tmp_path / "sm", "did:key:z6Mkprovider")
    for i in range(3):
        log.append(_rec(i))
    path, batch = log.close_batch()
    assert path.name == "batch-000000.sm3.jsonl" and batch.hash_name == "sm3"
    again = Batch.from_jsonl("p", path.read_bytes(), str(path))
    assert again.hash_name == "sm3" and again.root == batch.root == MerkleTree.from_records(
        [r.canonical() for r in batch.records], "sm3").root
    monkeypatch.delenv("TDS_CRYPTO_PROFILE")
    plain = OpLog(tmp_path / "default", "did:key:z6Mkprovider")
    plain.append(_rec(0))
    p2, b2 = plain.close_batch()
    assert p2.name == "batch-000000.jsonl" and b2.hash_name == "keccak256"
    assert batch_hash_name("x/batch-000003.jsonl") == "keccak256"


class _Evidence:
    """Records anchorBatch calls; verifyRecord (keccak-only on chain) must not be asked about SM3."""

    def __init__(self) -> None:
        self.anchored: list[tuple] = []
        self.events = SimpleNamespace(BatchAnchored=lambda: SimpleNamespace(get_logs=lambda **kw: []))
        self.functions = SimpleNamespace(anchorBatch=lambda *a: ("anchorBatch", a), verifyRecord=self._no)

    @staticmethod
    def _no(*a: Any) -> Any:
        raise AssertionError("Evidence.verifyRecord recomputes keccak256; it cannot check an SM3 proof")


def test_anchor_and_verify_an_sm3_batch(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    log = OpLog(logs / "provider", "did:key:z6Mkprovider", profile="sm")
    for i in range(5):
        log.append(_rec(i))
    evidence, sent = _Evidence(), []
    sender = SimpleNamespace(account=SimpleNamespace(address=PROVIDER), send=sent.append)
    w3 = SimpleNamespace(eth=SimpleNamespace(get_block=lambda _: {"timestamp": 1_800_000_000}))
    assert Anchorer(log, evidence, sender, w3).anchor() == 5         # type: ignore[arg-type]
    (_, (root, count, _, _, ref)), = sent
    path = logs / "provider" / "batch-000000.sm3.jsonl"
    assert ref == path.name.encode() and count == 5
    assert root == Batch.from_jsonl("p", path.read_bytes(), str(path), "sm3").root

    event = ChainEvent("Evidence", "BatchAnchored", {"batchId": 1, "root": root, "count": count, "producer": PROVIDER,
                                                     "batchRef": ref}, 10, "0x" + "ab" * 32, 0, "0x" + "22" * 20)
    reader = SimpleNamespace(select=lambda c, n: [event], did_of=lambda a, at=None: "did:key:z6Mkprovider",
                             contracts={"Evidence": evidence})
    verdicts, batch_id = verify_batch_file(reader, path, logs)      # type: ignore[arg-type]
    assert batch_id == 1 and [v["status"] for v in verdicts] == ["pass", "pass"]
    assert "5/5 sm3 inclusion proofs" in verdicts[1]["detail"]

    lines = path.read_bytes().splitlines()
    rec = json.loads(lines[1])
    rec["object"]["job"] = 99                                        # history rewritten after anchoring
    lines[1] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join(lines) + b"\n")
    verdicts, _ = verify_batch_file(reader, path, logs)             # type: ignore[arg-type]
    assert verdicts[0]["status"] == "fail" and "altered" in verdicts[0]["detail"]
    assert verdicts[1]["status"] == "fail" and "sm3" in verdicts[1]["detail"]


def test_evidence_documents_may_be_hashed_with_sm3() -> None:
    doc = b"destruction proof of grant 4"
    v = verify_document("grant:4:destruction", doc, {"grant:4:destruction": sm3(doc)})
    assert v["status"] == "pass" and v["detail"].startswith("sm3")
    bad = verify_document("grant:4:destruction", doc + b" ", {"grant:4:destruction": sm3(doc)})
    assert bad["status"] == "fail" and "(sm3)" in bad["detail"]
