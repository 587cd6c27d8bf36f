"""Reading service logs from a position: nothing read twice or missed when an operation log's open
records are closed into a batch, half-written lines wait, refusals and calls become observations."""
from __future__ import annotations

import json

from audit.oplog import OpLog, OpRecord
from oversight.sources import AccessRecord, Context, JsonlTail, OpLogTail, observation_from_record

PROV = "0x" + "33" * 20
ALICE = "0x" + "11" * 20


def rec(i: int, **kw) -> OpRecord:
    return OpRecord(kw.pop("action", "key-release"), "did:key:zProv", PROV, {"job": i, "grant": 7, **kw.pop("obj", {})},
                    id=f"r{i}", time=1000 + i, **kw)


def test_oplog_tail_survives_batch_closing(tmp_path):
    log = OpLog(tmp_path / "ks", "did:key:zProv")
    tail = OpLogTail(tmp_path / "ks")
    for i in range(3):
        log.append(rec(i))
    got, pos = tail.read(None)
    assert [r.id for r in got] == ["r0", "r1", "r2"]
    log.append(rec(3))
    log.close_batch()                                  # r0..r3 move to batch-000000.jsonl
    log.append(rec(4))
    got, pos = tail.read(pos)
    assert [r.id for r in got] == ["r3", "r4"]
    log.close_batch()
    log.append(rec(5))
    log.close_batch()
    got, pos = tail.read(pos)
    assert [r.id for r in got] == ["r5"] and tail.read(pos) == ([], pos)


def test_records_become_refusals_and_calls():
    ctx = Context(grants={"7": [3, ALICE]})
    refused = observation_from_record(rec(1, result="failed", error_code="OperationOutOfScope"), ctx)
    assert (refused.kind, refused.code, refused.grant, refused.asset, refused.consumer) == \
        ("refusal", "OperationOutOfScope", 7, 3, ALICE)
    call = observation_from_record(rec(2, obj={"requester": "0x" + "44" * 20}), ctx)
    assert call.kind == "call" and call.oracle == "0x" + "44" * 20 and call.ref == "log:r2"
    assert observation_from_record(rec(3, action="anchor"), ctx) is None


def test_access_log_waits_for_whole_lines(tmp_path):
    path = tmp_path / "access.jsonl"
    a = AccessRecord("a1", 1000.0, "gateway", "203.0.113.9", "POST", "/jobs", 403, ALICE, 7, error="Forbidden")
    line = json.dumps(a.to_json()) + "\n"
    path.write_text(line + line[:20])                  # the writer is half-way through the second line
    tail = JsonlTail(path)
    got, offset = tail.read(None)
    assert got == [a] and offset == len(line)
    with open(path, "a") as fh:
        fh.write(line[20:])
    got, offset = tail.read(offset)
    assert got == [a] and offset == 2 * len(line)
    kinds = [o.kind for o in a.observations()]
    assert kinds == ["access", "refusal"] and a.observations()[1].code == "Forbidden"
