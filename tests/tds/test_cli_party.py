"""A collaboration as it is deployed: each bank runs ``tds party serve`` as its own process with its
rows in a CSV file, registered as a party node in the NodeRegistry; the coordinating compute node
runs ``tds collab coordinate`` (its MPC node processes on its host); the consumer submits with
``tds collab submit`` and opens the answer with ``tds collab result``, equal to the plaintext join.
A party process killed with SIGKILL fails the next collaboration with its own reason and refunds."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from chain import collab as cc
from chain.node import free_port
from tds.collab_world import BANKS, NODES, SEGMENTS
from tests.tds.collab_env import PASSWORD, collab_env

pytestmark = pytest.mark.slow
SOURCES = [f"{b}-customers" for b in BANKS]
STEPS = [
    {"id": "match", "engine": "psi", "inputs": SOURCES, "nodes": ["node-1"], "params": {"mode": "intersection"}},
    {"id": "profile", "engine": "mpc", "inputs": ["match", *SOURCES], "nodes": list(NODES), "output": True,
     "params": {"layout": "vertical", "operations": ["count", "mean", "crosstab"],
                "columns": {"bank-a-customers": ["balance", "segment"], "bank-b-customers": ["loans"],
                            "bank-c-customers": ["card_spend"]},
                "group_by": "segment", "categories": list(SEGMENTS), "min_group": 1}},
]


def spawn_party(env, bank: str) -> tuple[subprocess.Popen, str]:
    w = env.world
    table = env.home / f"{bank}.csv"
    rows = w.tables[bank]
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    port = free_port()
    variables = {k: v for k, v in {**os.environ, **env.vars}.items() if v is not None}
    proc = subprocess.Popen([sys.executable, "-c", "from tds.cli import main; main()", "party", "serve", bank,
                             "--table", f"{w.assets[bank]}={table}", "--port", str(port),
                             "--password-env", "TDS_TEST_PASSWORD"],
                            env=variables, stdout=subprocess.DEVNULL, stderr=open(env.home / f"{bank}.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(url + "/v1/health", timeout=1).json()["did"] == w.banks[bank].did:
                return proc, url
        except (httpx.HTTPError, ValueError):
            pass
        assert proc.poll() is None, (env.home / f"{bank}.log").read_text()
        assert time.time() < deadline, f"party node of {bank} did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with collab_env(tmp_path_factory.mktemp("cli-party")) as e:
        e.vars["TDS_TEST_PASSWORD"] = PASSWORD
        for name in (*BANKS, *NODES):
            e.world.identities[name].save(e.home / "identities", PASSWORD, scrypt_n=2**10)
        procs = {}
        try:
            for b in BANKS:
                procs[b], url = spawn_party(e, b)
                e.ok("node", "add", e.world.banks[b].address, "--name", f"{b}-party", "--kind", "party",
                     "--endpoint", url, "--dev-account", "0")
            e.world.extra["procs"] = procs
            yield e
        finally:
            for p in procs.values():
                p.terminate()
                p.wait(timeout=10)


def submit(env, name: str) -> int:
    path = env.file(name, env.world.description(STEPS, name=name))
    return int(json.loads(env.ok("collab", "submit", path, "--identity", "analyst", "--json").stdout)["collaborationId"])


def coordinate(env) -> str:
    return env.ok("collab", "coordinate", "node-1", "--compute", "node-2", "--compute", "node-3",
                  "--password-env", "TDS_TEST_PASSWORD", "--timeout", "60").stdout


def test_party_processes_serve_a_vertical_collaboration(env):
    w = env.world
    cid = submit(env, "profile-over-http")
    out = coordinate(env)
    assert f"collaboration {cid} step 0 (psi) completed" in out and f"collaboration {cid} step 1 (mpc) completed" in out
    got = json.loads(env.ok("collab", "result", str(cid), "--step", "1", "--identity", "analyst",
                            "--json").stdout)["values"]
    joined = list(w.common_customers().values())
    assert got["count"] == pytest.approx(len(joined))
    assert got["mean"]["loans"] == pytest.approx(sum(float(c["bank-b"]["loans"]) for c in joined) / len(joined))
    for seg in SEGMENTS:
        assert got["crosstab"]["segment"]["count"][seg] == pytest.approx(
            sum(1 for c in joined if c["bank-a"]["segment"] == seg))
    assert cc.collaboration(w.space, cid)["status"] == cc.CollabStatus.COMPLETED


def test_a_killed_party_process_fails_the_step_with_its_reason(env):
    w = env.world
    proc = w.extra["procs"]["bank-b"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    cid = submit(env, "profile-without-bank-b")
    out = coordinate(env)
    assert f"collaboration {cid} step 0 (psi) failed: a provider's party node did not answer" in out, out
    assert cc.collaboration(w.space, cid)["status"] == cc.CollabStatus.TERMINATED
