"""``tds source add|list|sync|status`` on a SQLite source, and ``tds asset register`` refusing a
dataset below the quality threshold before anything is sent."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from offchain.sources.errors import QualityBelowThreshold
from tds.cli import cli

SCHEMA = {"name": "t", "fields": [{"name": "id", "type": "identifier", "nullable": False},
                                  {"name": "region", "type": "string", "allowed": ["north"]}]}


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> CliRunner:
    monkeypatch.setenv("TDS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TDS_KEYSTORE_PASSWORD", "pw")
    monkeypatch.delenv("TDS_IPFS_API", raising=False)
    return CliRunner()


def synced(env: CliRunner, tmp_path: Path) -> dict:
    db = tmp_path / "src.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("create table t (id integer, region text)")
        c.executemany("insert into t values (?, ?)", [(i, "north" if i % 4 else "south") for i in range(1, 41)])
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    res = env.invoke(cli, ["source", "add", "t1", "--kind", "sqlite", "--url", str(db), "--table", "t",
                           "--watermark", "id", "--cron", "*/5 * * * *", "--schema", str(tmp_path / "schema.json")])
    assert res.exit_code == 0, res.output
    res = env.invoke(cli, ["source", "add", "t1", "--kind", "sqlite", "--url", str(db), "--table", "t"])
    assert res.exit_code != 0 and "already exists" in res.output
    res = env.invoke(cli, ["source", "add", "t2", "--kind", "sqlite", "--url", str(db), "--cron", "* * *"])
    assert res.exit_code != 0 and "--table/--query" in res.output
    listed = json.loads(env.invoke(cli, ["source", "list"]).output)
    assert [(s["name"], s["version"], s["connection"]) for s in listed] == [("t1", 0, "never synced")]
    res = env.invoke(cli, ["source", "sync", "t1", "--once"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 40
    status = json.loads(env.invoke(cli, ["source", "status", "t1"]).output)
    assert status["version"] == 1 and status["rows"] == 40 and status["watermark"] == "40"
    assert status["status"]["connection"] == "connected" and status["quarantined"] == 0
    assert status["versions"][0]["quality"] == status["status"]["quality"]
    res = env.invoke(cli, ["source", "status", "nope"])
    assert res.exit_code != 0 and "no source named 'nope'" in res.output
    return status


def test_add_list_sync_status(env: CliRunner, tmp_path: Path):
    assert synced(env, tmp_path)["dataset_id"]


def test_register_refuses_low_quality(env: CliRunner, tmp_path: Path, monkeypatch):
    status = synced(env, tmp_path)
    from offchain.store.client import open_store
    from chain.config import load_settings
    import tds.cli.assets as assets

    class FakeDeployed:   # the gate refuses before any chain call
        @staticmethod
        def store():
            return open_store(load_settings().home)
    monkeypatch.setattr(assets.Deployed, "open", staticmethod(lambda: FakeDeployed()))
    res = env.invoke(cli, ["asset", "register", status["manifest_cid"], "--min-quality", "0.99"])
    assert res.exit_code != 0
    assert isinstance(res.exception, QualityBelowThreshold)
    assert "below the quality threshold 0.99" in str(res.exception)
