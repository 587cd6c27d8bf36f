"""`tds store ...` through click's runner (the real commands, an isolated TDS_HOME)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from oracle.cli.store import store
from offchain.store.unixfs import file_cid


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("TDS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TDS_IPFS_API", raising=False)
    return CliRunner()


def test_add_cat_pin_gc(runner, tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"hello world\n")
    res = runner.invoke(store, ["add", str(f)])
    assert res.exit_code == 0 and res.output.strip() == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert runner.invoke(store, ["add", "--cid-version", "1", str(f)]).output.strip() == file_cid(b"hello world\n", 1)
    assert runner.invoke(store, ["cat", res.output.strip()]).output == "hello world\n"
    assert "recursive" in runner.invoke(store, ["pin", "ls"]).output
    runner.invoke(store, ["pin", "rm", res.output.strip()])
    assert "removed 1 blocks" in runner.invoke(store, ["gc"]).output
    bad = runner.invoke(store, ["cat", "QmNope"])
    assert bad.exit_code == 1 and "invalid CID" in bad.output


def test_ingest_and_encrypt(runner, tmp_path, monkeypatch):
    f = tmp_path / "orders.csv"
    f.write_text("customer_id,amount,qty\nc1,10.50,1\nc2,3.25,2\nc2,3.25,2\n")
    res = runner.invoke(store, ["ingest", str(f), "--yes"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output[res.output.index('{\n  "hash"'):])
    assert body["hash"].startswith("0x") and body["report"]["dimensions"]["uniqueness"]["failed"] == 1
    import offchain.onion.keys as K
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))
    monkeypatch.setenv("TDS_KEYSTORE_PASSPHRASE", "pw")
    res = runner.invoke(store, ["encrypt", str(f), "--yes", "--processes", "1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index('{\n  "classification"'):])
    assert out["manifest_cid"].startswith("Qm") and out["rows"] == 3
    manifest = json.loads(runner.invoke(store, ["cat", out["manifest_cid"]]).output)
    assert manifest["dataset_id"] == out["dataset_id"]


def test_bad_file_is_one_line_error(runner, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("a,b\n1\n")
    res = runner.invoke(store, ["ingest", str(f), "--yes"])
    assert res.exit_code == 1 and "bad.csv, row 2, column 'b'" in res.output
