"""The gateway's collaboration routes on a real chain: validate a description (200 with the plan
and price, 422 naming every problem), then relay the consumer's own signed requestCollaboration
only when it is exactly the description's plan (400 steps-mismatch / wrong-value, 403 when signed
by another account than the description's consumer), publishing the step documents first."""
from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from chain import collab as cc
from chain.accounts import dev_account
from chain.params import params_cid
from did.challenge import ChallengeVerifier
from did.guard import ChallengeGuard, presentation_header
from offchain.store.client import EmbeddedStore
from oracle.collab.description import load, plan
from tds.collab_world import build_collab_world
from tds.gateway import create_app
from tds.gateway.limits import RateLimit
from tests.support.chains import private_chain

STEPS = [
    {"id": "match", "engine": "psi", "inputs": ["bank-a-customers", "bank-b-customers"], "nodes": ["node-1"],
     "params": {"mode": "cardinality"}, "output": True},
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gateway-collab")
    with private_chain(tmp) as (settings, space):
        w3 = space.w3
        store = EmbeddedStore(tmp / "store")
        world = build_collab_world(space, store, dev_account(0), rows=20, common=5)
        live = replace(settings, rpc_url=w3.provider.endpoint_uri)
        app = create_app(live, store=store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")), guard_reads=False,
                         relayer=dev_account(6), rate_limit=RateLimit(per_second=1000, burst=1000))
        yield world, TestClient(app)


def signed_request(world, account, description: dict, value: int | None = None, steps=None) -> str:
    p = plan(load(description))
    fn = world.space.c["Collaborations"].functions.requestCollaboration(
        p.description_hash, steps or [s.as_tuple() for s in p.requests()], p.description.environment.step_timeout)
    w3 = world.space.w3
    total = sum(world.space.c["Authorizations"].functions.grantOf(g).call()[12]
                for s in p.requests() for g in s.grant_ids)
    tx = fn.build_transaction({"from": account.address, "value": total if value is None else value, "gas": 2_000_000,
                               "nonce": w3.eth.get_transaction_count(account.address), "maxFeePerGas": 10**10,
                               "maxPriorityFeePerGas": 10**9, "chainId": w3.eth.chain_id})
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


def auth(client, identity) -> dict:
    return presentation_header(identity, client.get("/auth/challenge").json()["www_authenticate"])


def test_validate_returns_the_plan_or_every_problem(env):
    world, client = env
    r = client.post("/collaborations/validate", json={"description": world.description(STEPS)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] and body["steps"][0]["engine"] == "psi" and int(body["price"]) == 3 * 10**15
    bad = world.description(STEPS)
    bad["data_sources"]["bank-b-customers"]["grant"] = world.grants["bank-a"]
    bad["steps"][0]["params"]["mode"] = "everything"
    r = client.post("/collaborations/validate", json={"description": bad})
    assert r.status_code == 422 and r.json()["error"] == "description-invalid" and "everything" in r.text
    bad["steps"][0]["params"]["mode"] = "cardinality"
    r = client.post("/collaborations/validate", json={"description": bad})
    assert r.status_code == 422 and r.json()["error"] == "description-refused" and "covers asset" in r.text


def test_submit_relays_only_the_descriptions_own_plan(env):
    world, client = env
    d = world.description(STEPS)
    consumer = world.identities["analyst"]
    headers = auth(client, consumer)
    wrong_value = signed_request(world, consumer.account, d, value=1)
    r = client.post("/collaborations", json={"description": d, "rawTransaction": wrong_value}, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "wrong-value", r.text
    p = plan(load(d))
    other = [s.as_tuple() for s in p.requests()]
    other[0] = (other[0][0], other[0][1], other[0][2], other[0][3], list(reversed(other[0][4])), other[0][5])
    r = client.post("/collaborations", json={"description": d, "rawTransaction": signed_request(
        world, consumer.account, d, steps=other)}, headers=auth(client, consumer))
    assert r.status_code == 400 and r.json()["error"] == "steps-mismatch", r.text
    bank = world.identities["bank-a"]
    r = client.post("/collaborations", json={"description": d, "rawTransaction": signed_request(
        world, bank.account, d)}, headers=auth(client, bank))
    assert r.status_code == 403 and r.json()["error"] == "signer-not-consumer", r.text
    r = client.post("/collaborations", json={"description": d, "rawTransaction": signed_request(
        world, consumer.account, d)}, headers=auth(client, consumer))
    assert r.status_code == 201, r.text
    cid = r.json()["collaborationId"]
    assert cc.collaboration(world.space, cid)["status"] == cc.CollabStatus.RUNNING
    assert world.store.cat(params_cid(p.steps[0].request.params_hash))  # the step document is published
    r = client.post("/collaborations", json={"description": d, "rawTransaction": signed_request(
        world, consumer.account, d)})
    assert r.status_code == 401


def test_the_explorer_shows_the_collaboration_its_steps_and_grant_uses(env):
    """The explorer (here on its own index: this gateway has none) finds the collaboration just
    requested and links its grants, assets and initiator."""
    world, client = env
    requested = world.space.c["Collaborations"].events.CollaborationRequested().get_logs(from_block=0)
    cid = requested[-1]["args"]["id"]
    r = client.get("/explorer/search", params={"q": f"collab {cid}"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/explorer/workflow/collaboration/{cid}"
    page = client.get(f"/explorer/workflow/collaboration/{cid}")
    assert page.status_code == 200, page.text
    assert "running" in page.text and "Grant uses" in page.text and 'href="/explorer/grant/' in page.text
    assert 'href="/explorer/asset/' in page.text and "request-collaboration" in page.text
    assert f'href="/explorer/address/{world.identities["analyst"].address}"' in page.text
    node = world.space.c["NodeRegistry"].events.NodeAdded().get_logs(from_block=0)[0]["args"]
    shown = client.get(f"/explorer/address/{node['node']}").text
    assert "Compute node" in shown and node["name"] in shown
