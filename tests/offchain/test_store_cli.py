"""`tds store ...` through click's runner (the real commands, an isolated TDS_HOME)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from tds.cli.store import store
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


def test_large_add_streams_with_progress_and_matches_kubo_layout(runner, tmp_path):
    from tds.cli.store import PROGRESS_FROM_BYTES
    data = bytes(range(256)) * ((PROGRESS_FROM_BYTES + 300_000) // 256)
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    res = runner.invoke(store, ["add", str(f)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == file_cid(data)
    assert runner.invoke(store, ["cat", res.stdout.strip()]).stdout_bytes == data
