"""tds collab validate|submit|status|cancel and tds node … against a real chain: three banks, a
consumer holding a PSI+MPC grant on each bank's asset, three registered compute nodes."""
from __future__ import annotations

import json

import pytest
from eth_account import Account

from chain.accounts import dev_account
from tds.cli.refusals import NotYours, Refused, StateRefused
from tds.collab_world import PRICE
from tests.tds.collab_env import PASSWORD, Env, collab_env  # noqa: F401 - Env for type hints

STEPS = [
    {"id": "match", "engine": "psi", "inputs": ["bank-a-customers", "bank-b-customers"], "nodes": ["node-1"],
     "params": {"mode": "intersection"}},
    {"id": "stats", "engine": "mpc", "inputs": ["match", "bank-a-customers", "bank-b-customers", "bank-c-customers"],
     "nodes": ["node-1", "node-2", "node-3"], "params": {"operations": ["count", "sum"], "column": "balance",
                                                         "min_group": 3}, "output": True},
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with collab_env(tmp_path_factory.mktemp("cli-collab")) as e:
        yield e


def test_validate_prices_every_grant_of_every_step(env):
    path = env.file("ok", env.world.description(STEPS))
    out = json.loads(env.ok("collab", "validate", path, "--json").stdout)
    assert out["valid"] and [s["id"] for s in out["steps"]] == ["match", "stats"]
    # match: banks a, b; stats: a, b, c (prices 1, 2, 3 x PRICE)
    assert int(out["price"]) == (1 + 2) * PRICE + (1 + 2 + 3) * PRICE


def test_validate_refuses_before_anything_is_signed(env):
    w = env.world
    wrong_grant = w.description(STEPS)
    wrong_grant["data_sources"]["bank-b-customers"]["grant"] = w.grants["bank-a"]
    env.refused(StateRefused, f"grant {w.grants['bank-a']} covers asset {w.assets['bank-a']}, not asset "
                f"{w.assets['bank-b']}", "collab", "validate", env.file("wrong-grant", wrong_grant))
    missing = w.description(STEPS)
    missing["data_sources"]["bank-c-customers"]["grant"] = 999
    env.refused(StateRefused, "grant 999 does not exist", "collab", "validate", env.file("missing", missing))
    stranger = w.description(STEPS)
    stranger["participants"]["compute_nodes"]["node-3"]["address"] = Account.create().address
    env.refused(StateRefused, "not registered in the NodeRegistry", "collab", "validate",
                env.file("stranger", stranger))
    cyclic = w.description([dict(STEPS[0], inputs=STEPS[0]["inputs"] + ["stats"]), STEPS[1]])
    r = env.run("collab", "validate", env.file("cyclic", cyclic), "--offline")
    assert r.exit_code != 0 and "cycle among match, stats" in str(r.exception)


def test_submit_status_and_cancel(env):
    w = env.world
    path = env.file("submit", w.description(STEPS))
    env.refused(NotYours, "you sign as", "collab", "submit", path, "--dev-account", "1")
    uses_before = w.space.c["Authorizations"].functions.grantOf(w.grants["bank-a"]).call()[1]
    out = json.loads(env.ok("collab", "submit", path, "--identity", "analyst", "--json").stdout)
    cid = out["collaborationId"]
    assert w.space.c["Authorizations"].functions.grantOf(w.grants["bank-a"]).call()[1] == uses_before + 2
    status = json.loads(env.ok("collab", "status", path, "--json").stdout)
    assert status["collaborationId"] == cid and status["status"] == "running"
    assert [s["status"] for s in status["steps"]] == ["open", "pending"]
    env.refused(Refused, "StepStillRunning", "collab", "cancel", str(cid), "--identity", "analyst")


def test_node_list_status_and_operator_only(env):
    w = env.world
    rows = json.loads(env.ok("node", "list", "--json").stdout)
    assert {r["name"] for r in rows} == {"node-1", "node-2", "node-3"} and not any(r["flagged"] for r in rows)
    out = json.loads(env.ok("node", "status", w.nodes["node-1"].address, "--json").stdout)
    assert out["active"] and out["kind"] == "compute"
    env.refused(Refused, "AccessControlUnauthorizedAccount", "node", "disable", w.nodes["node-2"].address,
                "--dev-account", "3")
    env.ok("node", "disable", w.nodes["node-2"].address, "--dev-account", "0")
    r = env.run("node", "status", w.nodes["node-2"].address)
    assert r.exit_code == 1
    env.refused(StateRefused, "disabled or not a compute node", "collab", "validate",
                env.file("disabled", w.description(STEPS)))


def test_operator_reviews_a_pending_certificate(env):
    from eth_utils import keccak

    w = env.world
    op = dev_account(0)
    templates = w.space.c["CertificateTemplates"]
    tid = w.space.publish_template(op, "reviewed", b"reviewed terms", 3, 127, [7000, 1000, 1500, 500])
    w.space.send(op, templates.functions.setReviewRequired(tid, True))
    bank = w.banks["bank-a"]
    ids = [w.space.register_asset(bank, b"\x12\x20" + bytes([i]) * 32, b"\x12\x20" + bytes([i]) * 32,
                                  keccak(text=f"m{i}"), "internal", keccak(text="q"), tid) for i in (1, 2)]
    assert all(w.space.c["AssetRegistry"].functions.stateOf(a).call() == 4 for a in ids)  # Pending
    env.refused(Refused, "AccessControlUnauthorizedAccount", "asset", "review", ids[0], "--approve",
                "--reason", "looks fine", "--dev-account", "3")
    env.ok("asset", "review", ids[0], "--approve", "--reason", "consent and ownership checked", "--dev-account", "0")
    env.ok("asset", "review", ids[1], "--reject", "--reason", "no consent record", "--dev-account", "0")
    states = [w.space.c["AssetRegistry"].functions.stateOf(a).call() for a in ids]
    assert states == [1, 5]  # Active, Rejected
    env.refused(StateRefused, "not pending review", "asset", "review", ids[1], "--approve", "--reason", "again",
                "--dev-account", "0")
