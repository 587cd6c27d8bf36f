"""`tds data ...` through click's runner (the real commands, an isolated TDS_HOME)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tds.cli.data import data
from tds.cli.store import store


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("TDS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TDS_IPFS_API", raising=False)
    return CliRunner()


@pytest.fixture
def orders(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text("customer_id,amount,qty,day\nc1,10.50,1,2024-01-02\nc2,3.25,2,2024-01-03\n"
                 "c2,3.25,2,2024-01-03\n")
    return f


def test_infer_then_ingest_with_declared_schema(runner, orders, tmp_path):
    res = runner.invoke(data, ["infer", str(orders)])
    assert res.exit_code == 0, res.output
    schema = json.loads(res.stdout)
    assert [f["type"] for f in schema["fields"]] == ["identifier", "decimal", "integer", "date"]
    schema["fields"][2]["maximum"] = 1                      # declare a constraint
    (tmp_path / "s.json").write_text(json.dumps(schema))
    res = runner.invoke(data, ["ingest", str(orders), "--schema", str(tmp_path / "s.json"),
                               "--as-of", "2024-02-01", "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["hash"].startswith("0x") and body["report"]["as_of"] == "2024-02-01"
    assert body["report"]["dimensions"]["accuracy"]["failures"] == {"qty": 2}
    from offchain.canonical import sha256_hex
    assert sha256_hex((tmp_path / "r.json").read_bytes()) == body["hash"]


def test_encrypt_into_the_store_and_show_exposure(runner, orders, monkeypatch, tmp_path):
    import offchain.onion.keys as K
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))
    monkeypatch.setenv("TDS_KEYSTORE_PASSWORD", "pw")
    res = runner.invoke(data, ["encrypt", str(orders), "--yes", "--processes", "1",
                               "--onions", "qty=eq,ord,hom", "--min-group-size", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["manifest_cid"].startswith("Qm") and out["rows"] == 3
    manifest = json.loads(runner.invoke(store, ["cat", out["manifest_cid"]]).stdout)
    assert manifest["dataset_id"] == out["dataset_id"]
    assert manifest["quality_report_hash"] == out["quality_report_hash"]
    report = runner.invoke(store, ["cat", out["quality_report_cid"]]).stdout_bytes
    from offchain.canonical import sha256_hex
    assert sha256_hex(report) == out["quality_report_hash"]
    blocks = list((tmp_path / "home" / "store" / "blocks").rglob("*"))
    assert len(blocks) > 10 and not any(b"10.50" in p.read_bytes() for p in blocks if p.is_file())
    res = runner.invoke(data, ["exposure", out["manifest_cid"], "sum:amount", "range:qty", "count",
                               "--consumer", "did:c"])
    assert res.exit_code == 0, res.output
    ex = json.loads(res.stdout)
    assert {f["operation"] for f in ex["fields"]} == {"sum", "range"} and ex["min_group_size"] == 2


def test_bad_file_is_one_line_error(runner, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("a,b\n1\n")
    res = runner.invoke(data, ["ingest", str(f), "--yes"])
    assert res.exit_code == 1 and "bad.csv, row 2, column 'b'" in res.output


def test_schema_violation_names_the_rule(runner, tmp_path):
    f = tmp_path / "v.csv"
    f.write_text("qty\n1\nx\n")
    (tmp_path / "s.json").write_text(json.dumps({"fields": [{"name": "qty", "type": "integer"}]}))
    res = runner.invoke(data, ["ingest", str(f), "--schema", str(tmp_path / "s.json")])
    assert res.exit_code == 1 and "rule 'type'" in res.output and "row 3" in res.output
