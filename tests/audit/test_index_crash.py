"""``tds index run`` killed with SIGKILL while it indexes (a separate process, mid-way through a
dense chain), then restarted: the database equals a clean rebuild, digest for digest."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from audit.index import CURSOR, EventIndex
from audit.index_tables import cursor, digest, open_engine
from bench.gateway import fresh_space
from bench.generate import generate


@pytest.fixture
def space(tmp_settings):
    from chain.node import EmbeddedNode

    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    yield fresh_space(tmp_settings)
    node.down(save=False)


def _indexed(url: str) -> int | None:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(cursor.c.block).where(cursor.c.name == CURSOR)).scalar()
    finally:
        engine.dispose()


def test_sigkill_mid_run_then_restart_equals_a_clean_rebuild(space, tmp_settings, tmp_path):
    w3 = space["w3"]
    generate(space, 150, 1500, per_block=25)  # ~70 dense blocks
    head = w3.eth.block_number
    url = f"sqlite:///{tmp_path / 'crash.sqlite'}"
    env = {**os.environ, "TDS_HOME": str(tmp_settings.home), "TDS_RPC_URL": w3.provider.endpoint_uri,
           "TDS_DEPLOYMENT": str(tmp_settings.deployment_file), "TDS_INDEX_URL": url}
    run = [sys.executable, "-c", "import sys; from tds.cli import cli; sys.exit(cli())", "index", "run",
           "--confirmations", "0"]
    proc = subprocess.Popen([*run, "--window", "1", "--idle", "0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while (_indexed(url) or 0) < head // 3:  # well into the chain, far from its end
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the indexer made no progress"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    killed_at = _indexed(url)
    assert killed_at is not None and killed_at < head, "killed too late to show anything"
    r = subprocess.run([*run, "--once", "--window", "7"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    clean = EventIndex(w3, space["deployment"], f"sqlite:///{tmp_path / 'clean.sqlite'}")
    clean.catch_up()
    resumed = open_engine(url)
    assert digest(resumed) == digest(clean.engine)
    assert _indexed(url) == head
