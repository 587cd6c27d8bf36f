"""A collaboration end to end on the embedded chain: three banks, three compute nodes (real MPC
processes), a consumer; PSI over the banks' customer ids → joint statistics over the matched
customers' balances → a second statistic that depends on the first. The consumer's answers equal
the plaintext answers; every grant is counted and paid; the trail shows each step with its
result hash. Refusals: a frozen grant stops the step with refunds; a compute node killed mid-run
fails the step cleanly (refund, uses back) and a rerun succeeds."""
from __future__ import annotations

import os
import signal
import statistics
import threading
import time

import pytest

from audit.events import ChainReader
from audit.trail import build_trail
from chain import collab as cc
from chain.accounts import dev_account
from offchain.collab.party_chain import PartyChain
from offchain.collab.provider_node import ProviderNode
from offchain.psi.normalize import normalize
from offchain.store.client import EmbeddedStore
from oracle.collab.coordinator import (
    REASON_BELOW_MIN_GROUP,
    REASON_NODE_LOST,
    REASON_PROVIDER_REFUSED,
    CollabCoordinator,
    open_result,
)
from oracle.collab.description import canonical, load, plan
from tds.collab_world import BANKS, ID_COLUMNS, NORMALISE, PRICE, SEGMENTS, build_collab_world
from tests.support.chains import private_chain

pytestmark = pytest.mark.slow
COMMON = 12
STEPS = [
    {"id": "match", "engine": "psi", "inputs": ["bank-a-customers", "bank-b-customers", "bank-c-customers"],
     "nodes": ["node-1"], "params": {"mode": "intersection"}},
    {"id": "stats", "engine": "mpc", "inputs": ["match", "bank-a-customers", "bank-b-customers", "bank-c-customers"],
     "nodes": ["node-1", "node-2", "node-3"], "output": True,
     "params": {"operations": ["count", "sum", "mean", "variance", "stddev"], "column": "balance", "min_group": 3}},
    {"id": "spread", "engine": "mpc", "inputs": ["stats", "match", "bank-a-customers", "bank-b-customers",
                                                 "bank-c-customers"],
     "nodes": ["node-1", "node-2", "node-3"], "output": True,
     "params": {"operations": ["min", "max", "median"], "column": "balance", "min_group": 3}},
]


SOURCES = [f"{b}-customers" for b in BANKS]
VERTICAL = {"id": "profile", "engine": "mpc", "inputs": ["match", *SOURCES], "nodes": ["node-1", "node-2", "node-3"],
            "output": True,
            "params": {"layout": "vertical", "operations": ["count", "mean", "stddev", "pearson", "crosstab"],
                       "columns": {"bank-a-customers": ["balance", "segment"], "bank-b-customers": ["loans"],
                                   "bank-c-customers": ["card_spend"]},
                       "pearson": ["loans", "card_spend"], "group_by": "segment", "categories": list(SEGMENTS),
                       "min_group": 3}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collab-e2e")
    with private_chain(tmp) as (settings, space):
        w = build_collab_world(space, EmbeddedStore(tmp / "store"), dev_account(0), rows=40, common=COMMON, max_uses=20)
        party_chain = PartyChain(space, w.store)  # each bank's node reads the chain and store itself
        providers = {m.address: ProviderNode(w.identities[b], {w.assets[b]: w.tables[b]}, party_chain)
                     for b, m in w.banks.items()}
        compute = {m.address: w.identities[n] for n, m in w.nodes.items()}
        first = w.nodes["node-1"]
        w.extra["coordinator"] = CollabCoordinator(space, first.account, w.identities["node-1"], w.store, providers,
                                                   compute, tmp / "work", timeout=60)
        w.extra["settings"] = settings
        yield w


def submit(w, steps=STEPS) -> tuple[int, object]:
    p = plan(load(w.description(steps)))
    for s in p.steps:
        w.store.add_bytes(canonical(s.document), cid_version=1)
    total = sum(PRICE * (1 + BANKS.index(b)) for s in p.steps for b in BANKS
                if w.grants[b] in s.request.grant_ids)
    cid = cc.request_collaboration(w.space, w.consumer.account, p.description_hash, p.requests(), 3600, total)
    return cid, p


def matched_balances(w) -> list[float]:
    keys = {b: normalize([r[ID_COLUMNS[b]] for r in w.tables[b]], NORMALISE[b]) for b in BANKS}
    common = set.intersection(*(set(k) for k in keys.values()))
    return [float(r["balance"]) for b in BANKS for r, k in zip(w.tables[b], keys[b]) if k in common]


def test_psi_then_joint_statistics_then_a_dependent_statistic(world):
    w = world
    uses = {b: w.space.c["Authorizations"].functions.grantOf(w.grants[b]).call()[1] for b in BANKS}
    cid, p = submit(w)
    outcomes = w.extra["coordinator"].run_until_idle()
    assert [(o.step, o.ok) for o in outcomes] == [(0, True), (1, True), (2, True)], outcomes
    assert cc.collaboration(w.space, cid)["status"] == cc.CollabStatus.COMPLETED
    # the consumer opens the two outputs; they equal the plaintext answers
    nodes = [w.nodes[n].did for n in ("node-1", "node-2", "node-3")]
    stats = open_result(w.identities["analyst"], w.store, outcomes[1].result_cid)["values"]
    spread = open_result(w.identities["analyst"], w.store, outcomes[2].result_cid)["values"]
    plain = matched_balances(w)
    assert len(plain) == 3 * COMMON
    assert stats["count"] == pytest.approx(len(plain))
    assert stats["sum"]["balance"] == pytest.approx(sum(plain), rel=1e-6)
    assert stats["mean"]["balance"] == pytest.approx(statistics.fmean(plain), rel=1e-6)
    assert stats["variance"]["balance"] == pytest.approx(statistics.variance(plain), rel=1e-6)  # sample (n - 1)
    assert stats["stddev"]["balance"] == pytest.approx(statistics.stdev(plain), rel=1e-6)
    assert spread["min"]["balance"] == pytest.approx(min(plain)) and spread["max"]["balance"] == pytest.approx(max(plain))
    assert spread["median"]["balance"] == pytest.approx(statistics.median(plain), abs=1e-3)
    # every grant counted once per step that read it, and paid at its own price
    for b in BANKS:
        assert w.space.c["Authorizations"].functions.grantOf(w.grants[b]).call()[1] == uses[b] + 3
    vault = w.space.c["Collaborations"].functions
    for b in BANKS:
        earned = vault.balanceOf(w.banks[b].address, "0x" + "00" * 20).call()
        assert earned >= 3 * PRICE * (1 + BANKS.index(b)) * 7000 // 10_000
    assert nodes and not w.extra["coordinator"].providers[w.banks["bank-a"].address].matched  # forgotten
    # the trail of bank-a's asset shows each step and its anchored result hash
    reader = ChainReader(w.space.w3, w.space.deployment)
    trail = [e for e in build_trail(reader, w.assets["bank-a"]) if e.object.get("collaboration") == cid]
    actions = [e.action for e in trail]
    assert actions.count("collab-step-complete") == 3 and "request-collaboration" in actions
    hashes = [e.detail["resultHash"] for e in trail if e.action == "collab-step-complete"]
    assert hashes[0] == "0x" + outcomes[0].result_hash.hex() and all(h != "0x" + "00" * 32 for h in hashes)


def test_vertical_statistics_over_the_rows_psi_aligned(world):
    """Bank A holds the balance and segment, bank B the loans, bank C the card spend of the same
    customers: PSI aligns them; Pearson, cross-tab and means across the three equal the plaintext join."""
    w = world
    cid, _ = submit(w, [STEPS[0], VERTICAL])
    outcomes = w.extra["coordinator"].run_until_idle()
    assert [(o.step, o.ok) for o in outcomes] == [(0, True), (1, True)], outcomes
    got = open_result(w.identities["analyst"], w.store, outcomes[1].result_cid)["values"]
    joined = list(w.common_customers().values())
    assert len(joined) == COMMON and got["count"] == pytest.approx(COMMON)
    balance = [float(c["bank-a"]["balance"]) for c in joined]
    loans = [float(c["bank-b"]["loans"]) for c in joined]
    spend = [float(c["bank-c"]["card_spend"]) for c in joined]
    for name, col in (("balance", balance), ("loans", loans), ("card_spend", spend)):
        assert got["mean"][name] == pytest.approx(statistics.fmean(col), rel=1e-6)
        assert got["stddev"][name] == pytest.approx(statistics.stdev(col), rel=1e-5)
    assert got["pearson"]["loans,card_spend"] == pytest.approx(statistics.correlation(loans, spend), abs=1e-4)
    assert got["pearson"]["loans,card_spend"] > 0.5  # the relation the banks' columns share is found
    cross = got["crosstab"]["segment"]
    for seg in SEGMENTS:
        rows = [c for c in joined if c["bank-a"]["segment"] == seg]
        assert cross["count"][seg] == pytest.approx(len(rows))
        assert cross["sum"]["loans"][seg] == pytest.approx(sum(float(c["bank-b"]["loans"]) for c in rows), rel=1e-6)
    # a group below the minimum size: nothing is released, the step fails with the k-rule reason
    small = min(sum(1 for c in joined if c["bank-a"]["segment"] == seg) for seg in SEGMENTS)
    strict = {**VERTICAL, "params": {**VERTICAL["params"], "min_group": small + 1}}
    cid, _ = submit(w, [STEPS[0], strict])
    outcomes = w.extra["coordinator"].run_until_idle()
    assert [o.ok for o in outcomes] == [True, False] and outcomes[1].reason == REASON_BELOW_MIN_GROUP
    assert cc.collaboration(w.space, cid)["status"] == cc.CollabStatus.TERMINATED


def test_a_frozen_grant_stops_the_step_with_refunds(world):
    w = world
    cid, _ = submit(w, STEPS[:2])
    auth = w.space.c["Authorizations"]
    w.space.send(w.banks["bank-b"].account, auth.functions.freeze(w.grants["bank-b"], 9))
    try:
        outcomes = w.extra["coordinator"].run_until_idle()
    finally:
        w.space.send(w.banks["bank-b"].account, auth.functions.unfreeze(w.grants["bank-b"]))
    assert len(outcomes) == 1 and not outcomes[0].ok and outcomes[0].reason == REASON_PROVIDER_REFUSED
    assert "GrantIsFrozen" in outcomes[0].detail
    assert cc.collaboration(w.space, cid)["status"] == cc.CollabStatus.TERMINATED
    refunds = w.space.c["Collaborations"].events.CollaborationTerminated().get_logs(
        from_block=w.space.deployment["block"], argument_filters={"id": cid})
    assert refunds[0]["args"]["refund"] == (1 + 2 + 3) * PRICE * 2


def test_a_compute_node_killed_mid_run_fails_cleanly_and_a_rerun_succeeds(world):
    w = world
    co = w.extra["coordinator"]
    steps = [STEPS[0], dict(STEPS[2], inputs=["match"] + STEPS[2]["inputs"][2:])]  # PSI, then a slow median
    cid, _ = submit(w, steps)
    assert co.run_step(cid, 0).ok
    session = f"c{w.space.w3.eth.chain_id}-{cid}-s1"
    result: list = []
    th = threading.Thread(target=lambda: result.append(co.run_step(cid, 1)))
    th.start()
    marker = co.workdir / session / "node1.started"
    started = time.time()
    while not marker.exists():
        assert time.time() - started < 30, "node 1 never started"
        time.sleep(0.01)
    os.kill(int((co.workdir / session / "node1.pid").read_text()), signal.SIGKILL)
    th.join(timeout=60)
    assert result and not result[0].ok and result[0].reason == REASON_NODE_LOST, result
    assert cc.collaboration(w.space, cid)["status"] == cc.CollabStatus.TERMINATED
    assert not list((co.workdir / session).glob("node*.out"))  # nothing was output
    again, _ = submit(w, steps)
    assert [o.ok for o in co.run_until_idle()] == [True, True]
    assert cc.collaboration(w.space, again)["status"] == cc.CollabStatus.COMPLETED


def test_the_auditor_verifies_every_collaboration(world):
    from audit.verify import verify_all

    w = world
    verdicts = verify_all(w.space.w3, w.space.deployment, fetch=w.store.cat)
    collab = [v for v in verdicts if v["step"].startswith("collab-")]
    assert collab and all(v["ok"] for v in collab), [v for v in collab if not v["ok"]]
    steps = {v["step"] for v in collab}
    assert steps == {"collab-order", "collab-payment", "collab-result"}
    assert any(v["status"] == "pass" and v["step"] == "collab-result" for v in collab)
    assert any(v["status"] == "skip" and "intermediate" in v["detail"] for v in collab)
    # a result that does not match its anchored hash fails the audit
    from audit.events import ChainReader
    from audit.verify_collab import verify_step_result

    reader = ChainReader(w.space.w3, w.space.deployment)
    done = [e for e in reader.select("Collaborations", "StepCompleted") if e.args["resultCid"]][0]
    v = verify_step_result(done, lambda cid: b'{"format": "tds-collab-result/1", "engine": "mpc", "outputs": []}',
                           lambda raw: "x")
    assert v["status"] == "fail"


def test_every_node_obeys_a_cancellation(world):
    w = world
    co = w.extra["coordinator"]
    cid, _ = submit(w, STEPS[:2])
    assert co.run_step(cid, 0).ok  # PSI: the banks now hold the matched ids (intermediate)
    banks = [co.providers[m.address] for m in w.banks.values()]
    assert all((cid, 0) in b.matched for b in banks)
    w.space.w3.provider.make_request("evm_increaseTime", [3601])
    w.space.w3.provider.make_request("evm_mine", [])
    cc.cancel(w.space, w.consumer.account, cid)  # the consumer stops it after the step deadline
    assert cid in co.obey_terminations()
    assert not any((cid, 0) in b.matched for b in banks)
    assert co.run_until_idle() == []  # nothing left to run for it
