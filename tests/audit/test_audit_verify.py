"""The auditor's verdicts: real signatures, hashes, Merkle proofs (also checked on chain) and
payments pass; a tampered log batch, wrong result bytes or a wrong document fail their step."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.events import ChainReader
from audit.oplog import OpLog, OpRecord
from audit.verify import overall, verify_all
from tds.cli import cli
from tests.support.lifecycle import Lifecycle, shared_lifecycle
from tests.audit.test_audit_trail import cli_env


@pytest.fixture
def lc(request, tmp_path_factory) -> Lifecycle:
    return shared_lifecycle(request, tmp_path_factory)


@pytest.fixture
def reader(lc: Lifecycle) -> ChainReader:
    return ChainReader(lc.w3, lc.deployment)


def by_step(verdicts):
    out: dict[str, list] = {}
    for v in verdicts:
        out.setdefault(v["step"], []).append(v)
    return out


def test_everything_verifies(lc: Lifecycle, reader: ChainReader):
    docs = {"quality.json": lc.quality_doc, f"grant:{lc.grant}:destruction": lc.destruction_doc,
            "final.txt": lc.final_doc}
    verdicts = verify_all(None, None, reader=reader, asset=lc.asset, logs_dir=lc.logs_dir, fetch=lc.fetch,
                          documents=docs)
    assert overall(verdicts), [v for v in verdicts if not v["ok"]]
    steps = by_step(verdicts)
    assert [v["subject"] for v in steps["signature"]] == [f"job {lc.job_ok}"]
    assert steps["signature"][0]["status"] == "pass" and lc.addr["oracle"] in steps["signature"][0]["detail"]
    assert steps["result-hash"][0]["status"] == "pass"
    assert steps["release"][0]["status"] == "pass" and lc.addr["provider"] in steps["release"][0]["detail"]
    assert {v["refs"]["job"] for v in steps["payment"]} == {lc.job_ok, lc.job_failed}
    assert "refund" in [v for v in steps["payment"] if v["refs"]["job"] == lc.job_failed][0]["detail"]
    assert [v["status"] for v in steps["batch-root"] + steps["batch-inclusion"]] == ["pass", "pass"]
    assert "5/5" in steps["batch-inclusion"][0]["detail"]
    assert len(steps["document"]) == 3 and all(v["status"] == "pass" for v in steps["document"])
    assert "sha256" in [v for v in steps["document"] if v["subject"] == "quality.json"][0]["detail"]
    assert "final-record" in [v for v in steps["document"] if v["subject"] == "final.txt"][0]["detail"]


def test_whole_deployment_verifies(lc: Lifecycle, reader: ChainReader):
    verdicts = verify_all(lc.w3, lc.deployment, logs_dir=lc.logs_dir, fetch=lc.fetch)
    assert overall(verdicts)
    assert {v["refs"]["job"] for v in verdicts if v["step"] == "signature"} == {lc.job_ok, lc.other_job}


def test_tampered_batch_fails_its_step(lc: Lifecycle, reader: ChainReader, tmp_path: Path):
    logs = tmp_path / "logs"
    shutil.copytree(lc.logs_dir, logs)
    batch = logs / "provider" / lc.batch_file.name
    lines = batch.read_bytes().splitlines()
    rec = json.loads(lines[2])
    rec["object"]["grant"] = 999  # the provider rewrites history after anchoring
    lines[2] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
    batch.write_bytes(b"\n".join(lines) + b"\n")
    verdicts = verify_all(None, None, reader=reader, asset=lc.asset, logs_dir=logs, fetch=lc.fetch)
    assert not overall(verdicts)
    steps = by_step(verdicts)
    assert steps["batch-root"][0]["status"] == "fail" and "altered" in steps["batch-root"][0]["detail"]
    assert steps["batch-inclusion"][0]["status"] == "fail"
    assert all(v["ok"] for v in verdicts if v["step"] not in ("batch-root", "batch-inclusion"))


def test_dropped_record_and_unanchored_batch_fail(lc: Lifecycle, reader: ChainReader, tmp_path: Path):
    logs = tmp_path / "logs"
    shutil.copytree(lc.logs_dir, logs)
    batch = logs / "provider" / lc.batch_file.name
    batch.write_bytes(b"\n".join(batch.read_bytes().splitlines()[:-1]) + b"\n")  # hide the last record
    other = OpLog(logs / "stranger", "did:key:stranger")
    other.append(OpRecord("alert", "did:key:stranger", lc.addr["consumer"], {"asset": lc.asset}))
    other.close_batch()
    verdicts = verify_all(None, None, reader=reader, asset=lc.asset, logs_dir=logs)
    roots = {v["subject"]: v for v in verdicts if v["step"] == "batch-root"}
    assert roots[f"batch file provider/{lc.batch_file.name}"]["status"] == "fail"
    assert "never anchored" in roots["batch file stranger/batch-000000.jsonl"]["detail"]


def test_wrong_result_bytes_fail_the_hash_step(lc: Lifecycle, reader: ChainReader):
    verdicts = verify_all(None, None, reader=reader, asset=lc.asset, fetch=lambda cid: lc.result + b"\x00")
    steps = by_step(verdicts)
    assert steps["result-hash"][0]["status"] == "fail" and "chain says" in steps["result-hash"][0]["detail"]
    assert steps["signature"][0]["status"] == "pass"
    assert not overall(verdicts)
    # a result no longer stored is reported, not counted as a failure
    missing = verify_all(None, None, reader=reader, asset=lc.asset, fetch=lambda cid: None)
    assert by_step(missing)["result-hash"][0]["status"] == "skip" and overall(missing)


def test_wrong_document_fails(lc: Lifecycle, reader: ChainReader):
    verdicts = verify_all(None, None, reader=reader, asset=lc.asset,
                          documents={f"grant:{lc.grant}:destruction": lc.destruction_doc + b" ",
                                     "stray.pdf": b"unrelated"})
    docs = by_step(verdicts)["document"]
    assert [v["status"] for v in docs] == ["fail", "fail"]
    assert not overall(verdicts)


def test_cli_verify_exit_codes(lc: Lifecycle, tmp_path: Path):
    runner = CliRunner()
    env = cli_env(lc)
    res = runner.invoke(cli, ["audit", "verify", "--asset", str(lc.asset), "--logs", str(lc.logs_dir), "--no-store",
                              "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["ok"] is True
    doc = tmp_path / "proof.json"
    doc.write_bytes(b"not the destruction proof")
    res = runner.invoke(cli, ["audit", "verify", "--asset", str(lc.asset), "--no-store",
                              "--doc", f"grant:{lc.grant}:destruction={doc}"], env=env)
    assert res.exit_code == 1 and "FAIL" in res.output and "✗" in res.output
    res = runner.invoke(cli, ["audit", "verify", "--no-store", "--doc", str(tmp_path / "missing")], env=env)
    assert res.exit_code == 2 and "no such file" in res.output


def test_cli_reads_the_index_and_agrees_with_the_chain_alone(lc: Lifecycle, tmp_path: Path):
    """``tds audit`` reads the event index by default; ``--from-chain`` bypasses it. The auditor's
    independence: trail and verdicts are identical both ways."""
    runner = CliRunner()
    env = {**cli_env(lc), "TDS_INDEX_URL": f"sqlite:///{tmp_path / 'index.sqlite'}"}
    out = {}
    for source, extra in (("index", []), ("chain", ["--from-chain"])):
        trail = runner.invoke(cli, ["audit", "asset", str(lc.asset), "--json", *extra], env=env)
        verdicts = runner.invoke(cli, ["audit", "verify", "--asset", str(lc.asset), "--logs", str(lc.logs_dir),
                                       "--no-store", "--json", *extra], env=env)
        assert trail.exit_code == 0 and verdicts.exit_code == 0, (trail.output, verdicts.output)
        t, v = json.loads(trail.output), json.loads(verdicts.output)
        assert t["source"] == v["source"] == source
        out[source] = (t["trail"], v["verdicts"])
    assert out["index"] == out["chain"] and out["index"][0]


def test_signature_check_can_fail(lc: Lifecycle, reader: ChainReader):
    """The verdict really compares: an event claiming another oracle, or another result, is refused."""
    from dataclasses import replace

    from audit.verify import verify_signature

    done = reader.select("Jobs", "JobCompleted", jobId=lc.job_ok)[0]
    assert verify_signature(reader, done)["status"] == "pass"
    other_oracle = replace(done, args={**done.args, "oracle": lc.addr["consumer"]})
    v = verify_signature(reader, other_oracle)
    assert v["status"] == "fail" and "recovers to " + lc.addr["oracle"] in v["detail"]
    other_hash = replace(done, args={**done.args, "resultHash": b"\x01" * 32})
    assert "calldata result differs" in verify_signature(reader, other_hash)["detail"]
    wrong_tx = replace(done, tx=reader.select("Jobs", "JobRequested", jobId=lc.job_ok)[0].tx)
    assert verify_signature(reader, wrong_tx)["status"] == "fail"


def test_completion_without_its_release_fails_verification(lc: Lifecycle, reader: ChainReader):
    """The chain refuses such a completion; the verifier does not rely on that (a fork, a bug)."""
    from dataclasses import replace

    from audit.verify import verify_release

    done = reader.select("Jobs", "JobCompleted", jobId=lc.job_ok)[0]
    released = reader.select("Jobs", "AnswerReleased", jobId=lc.job_ok)[0]
    assert verify_release(reader, done, released)["ok"] is True
    assert verify_release(reader, done, None)["ok"] is False
    other = replace(released, args={**released.args, "resultHash": b"\x01" * 32})
    assert verify_release(reader, done, other)["ok"] is False
