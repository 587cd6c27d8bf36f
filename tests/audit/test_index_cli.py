"""``tds index run --once`` and ``tds index status`` against a fresh chain, configured by the environment."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bench.gateway import fresh_space, mint_one
from tds.cli import cli


@pytest.fixture
def space(tmp_settings):
    from chain.node import EmbeddedNode

    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    yield fresh_space(tmp_settings)
    node.down(save=False)


def test_index_run_once_and_status(space, tmp_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TDS_HOME", str(tmp_settings.home))
    monkeypatch.setenv("TDS_RPC_URL", space["w3"].provider.endpoint_uri)
    monkeypatch.setenv("TDS_DEPLOYMENT", str(tmp_settings.deployment_file))
    monkeypatch.setenv("TDS_INDEX_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    mint_one(space, "cli")
    runner = CliRunner()
    r = runner.invoke(cli, ["index", "run", "--once", "--confirmations", "0"])
    assert r.exit_code == 0, r.output
    assert f"up to block {space['w3'].eth.block_number}" in r.output
    r = runner.invoke(cli, ["index", "status", "--json", "--confirmations", "0"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["lag"] == 0 and s["counts"]["assets"] == 1 and s["url"].endswith("cli.sqlite")
    r = runner.invoke(cli, ["index", "status"])
    assert "indexed block" in r.output and "assets 1" in r.output
