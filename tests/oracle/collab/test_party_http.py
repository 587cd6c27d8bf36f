"""Party nodes behind their own HTTP endpoints: each bank serves its rows from its own party node
(``offchain.collab.party_api``, registered in the NodeRegistry), the coordinator reaches them over
DID-bound requests (``oracle.collab.party_client``). PSI then vertical statistics run end to end and
equal the plaintext join; a caller that is not the step's coordinator, an unauthenticated call and
a forget while running are refused by name; a party node that goes away fails the step cleanly
with its own reason, refunds, and a rerun succeeds once it is back."""
from __future__ import annotations

import statistics

import httpx
import pytest

from chain import collab as cc
from chain.accounts import dev_account
from did.bound_http import BoundHttpClient
from did.challenge import ChallengeVerifier
from offchain.collab.party_api import create_party_app
from offchain.collab.party_chain import PartyChain
from offchain.collab.provider_node import ProviderNode
from offchain.store.client import EmbeddedStore
from oracle.collab.coordinator import REASON_PARTY_UNREACHABLE, CollabCoordinator, open_result
from oracle.collab.description import canonical, load, plan
from oracle.collab.party_client import registered_parties
from tds.collab_world import BANKS, PRICE, SEGMENTS, build_collab_world
from tests.support.chains import private_chain
from tests.support.services import ServedApp

pytestmark = pytest.mark.slow
SOURCES = [f"{b}-customers" for b in BANKS]
NODES = ["node-1", "node-2", "node-3"]
STEPS = [
    {"id": "match", "engine": "psi", "inputs": SOURCES, "nodes": ["node-1"], "params": {"mode": "intersection"}},
    {"id": "profile", "engine": "mpc", "inputs": ["match", *SOURCES], "nodes": NODES, "output": True,
     "params": {"layout": "vertical", "operations": ["count", "mean", "pearson", "crosstab"],
                "columns": {"bank-a-customers": ["balance", "segment"], "bank-b-customers": ["loans"],
                            "bank-c-customers": ["card_spend"]},
                "pearson": ["loans", "card_spend"], "group_by": "segment", "categories": list(SEGMENTS),
                "min_group": 2}},
]


def serve(w, bank: str) -> ServedApp:
    chain = PartyChain(w.space, w.store)
    node = ProviderNode(w.identities[bank], {w.assets[bank]: w.tables[bank]}, chain)
    w.extra.setdefault("nodes", {})[bank] = node
    app = create_party_app(node, chain, ChallengeVerifier(f"party:{w.banks[bank].address.lower()}"))
    return ServedApp(app)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("party-http")
    with private_chain(tmp) as (_, space):
        w = build_collab_world(space, EmbeddedStore(tmp / "store"), dev_account(0), rows=30, common=10)
        served = {b: serve(w, b) for b in BANKS}
        for b, app in served.items():
            cc.add_node(space, w.operator, w.banks[b].address, cc.NodeKind.PARTY, f"{b}-party", app.url)
        parties = registered_parties(space, w.identities["node-1"], timeout=60)
        assert sorted(parties) == sorted(m.address for m in w.banks.values())
        compute = {m.address: w.identities[n] for n, m in w.nodes.items()}
        w.extra |= {"served": served, "work": tmp / "work",
                    "coordinator": CollabCoordinator(space, w.nodes["node-1"].account, w.identities["node-1"], w.store,
                                                     parties, compute, tmp / "work", timeout=60)}
        yield w
        for app in w.extra["served"].values():
            app.stop()


def submit(w, steps=STEPS) -> int:
    p = plan(load(w.description(steps)))
    for s in p.steps:
        w.store.add_bytes(canonical(s.document), cid_version=1)
    total = sum(PRICE * (1 + BANKS.index(b)) for s in p.steps for b in BANKS if w.grants[b] in s.request.grant_ids)
    return cc.request_collaboration(w.space, w.consumer.account, p.description_hash, p.requests(), 3600, total)


def test_psi_and_vertical_statistics_through_the_party_nodes(world):
    w = world
    cid = submit(w)
    outcomes = w.extra["coordinator"].run_until_idle()
    assert [(o.step, o.ok) for o in outcomes] == [(0, True), (1, True)], outcomes
    got = open_result(w.identities["analyst"], w.store, outcomes[1].result_cid)["values"]
    joined = list(w.common_customers().values())
    loans = [float(c["bank-b"]["loans"]) for c in joined]
    spend = [float(c["bank-c"]["card_spend"]) for c in joined]
    assert got["count"] == pytest.approx(len(joined)) and len(joined) == 10
    assert got["mean"]["balance"] == pytest.approx(statistics.fmean(float(c["bank-a"]["balance"]) for c in joined))
    assert got["pearson"]["loans,card_spend"] == pytest.approx(statistics.correlation(loans, spend), abs=1e-4)
    for seg in SEGMENTS:
        assert got["crosstab"]["segment"]["count"][seg] == pytest.approx(
            sum(1 for c in joined if c["bank-a"]["segment"] == seg))
    assert cc.collaboration(w.space, cid)["status"] == cc.CollabStatus.COMPLETED
    assert not any(n.matched or n.runs for n in w.extra["nodes"].values())  # every node forgot it


def test_only_the_steps_coordinator_is_answered(world):
    w = world
    cid = submit(w, STEPS[:1])
    url = w.extra["served"]["bank-a"].url
    path = f"/v1/collab/{cid}/steps/0/psi/prepare"
    body = {"source": "bank-a-customers", "dids": [w.banks[b].did for b in BANKS]}
    anonymous = httpx.post(url + path, json=body)
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    assert anonymous.json()["kind"] == "AuthenticationRequired"
    stranger = BoundHttpClient(url, w.identities["node-2"]).post(path, body)   # a compute node, not the coordinator
    assert stranger.status_code == 403 and stranger.json()["kind"] == "NotCoordinator", stranger.text
    coordinator = BoundHttpClient(url, w.identities["node-1"])
    early = coordinator.post(f"/v1/collab/{cid}/forget", {})
    assert early.status_code == 409 and early.json()["kind"] == "StillRunning"
    wrong = coordinator.post(path, {**body, "source": "bank-b-customers"})     # not this bank's asset
    assert wrong.status_code == 409 and wrong.json()["kind"] == "ContributionRefused"
    assert "holds no asset" in wrong.json()["error"]
    assert [o.ok for o in w.extra["coordinator"].run_until_idle()] == [True]


def test_a_party_node_that_goes_away_fails_the_step_and_a_rerun_succeeds(world):
    w = world
    served = w.extra["served"]
    served["bank-c"].stop()
    try:
        cid = submit(w)
        outcomes = w.extra["coordinator"].run_until_idle()
        assert len(outcomes) == 1 and not outcomes[0].ok and outcomes[0].reason == REASON_PARTY_UNREACHABLE
        assert "bank-c" in outcomes[0].detail or w.banks["bank-c"].did in outcomes[0].detail
        assert cc.collaboration(w.space, cid)["status"] == cc.CollabStatus.TERMINATED
        ended = w.space.c["Collaborations"].events.CollaborationTerminated().get_logs(
            from_block=w.space.deployment["block"], argument_filters={"id": cid})
        assert ended[0]["args"]["refund"] == (1 + 2 + 3) * PRICE * 2   # both steps refunded
        assert not any(n.runs for n in w.extra["nodes"].values())      # the others closed their endpoints
    finally:
        served["bank-c"] = serve(w, "bank-c")
        w.space.send(w.banks["bank-c"].account,
                     w.space.c["NodeRegistry"].functions.setEndpoint(served["bank-c"].url))
    w.extra["coordinator"].providers = registered_parties(w.space, w.identities["node-1"], timeout=60)
    again = submit(w)
    assert [o.ok for o in w.extra["coordinator"].run_until_idle()] == [True, True]
    assert cc.collaboration(w.space, again)["status"] == cc.CollabStatus.COMPLETED


def test_output_psi_delivers_the_intersection_or_its_size_and_anchors_the_receipt(world):
    """An output PSI step: the consumer opens the intersection (or only its size) sealed by the
    leader; the transcript hash (session, parties, mode, size) is anchored as the billing receipt."""
    from eth_utils import keccak

    from offchain.psi.protocol import transcript_hash
    from oracle.collab.coordinator import PSI_RECEIPT

    w = world
    common = sorted(w.common_customers())
    for mode in ("intersection", "cardinality"):
        step = {"id": "match", "engine": "psi", "inputs": SOURCES, "nodes": ["node-1"], "output": True,
                "params": {"mode": mode}}
        cid = submit(w, [step])
        [outcome] = w.extra["coordinator"].run_until_idle()
        assert outcome.ok and outcome.result_cid, outcome
        opened = open_result(w.identities["analyst"], w.store, outcome.result_cid)
        if mode == "intersection":
            assert opened["ids"] == common
        else:
            assert opened["size"] == len(common) and "ids" not in opened
        session = f"c{w.space.w3.eth.chain_id}-{cid}-s0"
        parties = [w.banks[b].did for b in BANKS]
        receipts = w.space.c["Evidence"].events.HashAnchored().get_logs(
            from_block=w.space.deployment["block"], argument_filters={"kind": PSI_RECEIPT})
        mine = [e["args"] for e in receipts if e["args"]["subjectId"] == cid]
        assert len(mine) == 1 and bytes(mine[0]["hash"]) == transcript_hash(session, parties, mode, len(common))
        assert mine[0]["producer"] == w.nodes["node-1"].address
        assert keccak(w.store.cat(outcome.result_cid)) == bytes(
            w.space.c["Collaborations"].functions.stepOf(cid, 0).call()[0][7])   # the anchored result hash
