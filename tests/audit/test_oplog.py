"""Operation-log records (000 §12.3.1.2 fields) and batches."""
from __future__ import annotations

import pytest

from audit.merkle import verify
from audit.oplog import Batch, OpLog, OpLogError, OpRecord


def _rec(action="compute", **kw):
    return OpRecord(action=action, actor_did="did:key:z6Mk", actor_address="0x" + "11" * 20,
                    object={"asset": 1, "job": 7}, **kw)


def test_canonical_is_stable_and_roundtrips():
    r = _rec()
    again = OpRecord.from_json(__import__("json").loads(r.canonical()))
    assert again == r and again.canonical() == r.canonical()


def test_refuses_unknown_action_and_failure_without_code():
    with pytest.raises(OpLogError, match="unknown action"):
        _rec(action="teleport")
    with pytest.raises(OpLogError, match="error_code"):
        _rec(result="failed")


def test_batches_close_and_prove(tmp_path):
    log = OpLog(tmp_path, "oracle-1")
    recs = [log.append(_rec()) for _ in range(5)]
    path, batch = log.close_batch()
    assert log.close_batch() is None
    again = Batch.from_jsonl("oracle-1", path.read_bytes())
    assert again.root == batch.root
    for i, r in enumerate(recs):
        assert verify(batch.tree.proof(i), batch.root, r.leaf())


def test_malformed_batch_names_line(tmp_path):
    with pytest.raises(OpLogError, match=r"b\.jsonl:2"):
        Batch.from_jsonl("p", _rec().canonical() + b"\n{not json\n", "b.jsonl")
