"""The gateway's catalog and assets served from the event index: the same answers as the chain,
the indexed block on every answer (field, ETag, 304 on If-None-Match), and a newly registered
asset visible within the confirmation depth plus one block."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from audit.index import EventIndex
from bench.gateway import fresh_space, mint_one
from tds.gateway import create_app
from tds.gateway.limits import RateLimit
from tests.support.lifecycle import Lifecycle, shared_lifecycle

CONFIRMATIONS = 2


@pytest.fixture
def lc(request, tmp_path_factory) -> Lifecycle:
    return shared_lifecycle(request, tmp_path_factory)


def test_index_backed_catalog_equals_todays_catalog(lc, tmp_path):
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    indexed = TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch, index=idx))
    direct = TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch))
    r = indexed.get("/catalog")
    block = idx.indexed_block()
    assert r.status_code == 200 and r.headers["x-tds-indexed-block"] == str(block)
    assert [{k: v for k, v in a.items() if k != "indexedBlock"} for a in r.json()] == direct.get("/catalog").json()
    one = indexed.get(f"/assets/{lc.asset}")
    assert one.json()["indexedBlock"] == block and one.json()["state"] == "offline"
    assert {k: v for k, v in one.json().items() if k != "indexedBlock"} == direct.get(f"/assets/{lc.asset}").json()
    assert indexed.get("/assets/999").json()["error"] == "unknown-asset"
    assert [a["assetId"] for a in indexed.get("/catalog", params={"offset": 1, "limit": 1}).json()] == [lc.other_asset]
    assert [a["assetId"] for a in direct.get("/catalog", params={"offset": 1, "limit": 1}).json()] == [lc.other_asset]


@pytest.fixture
def space(tmp_settings):
    from chain.node import EmbeddedNode

    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    yield fresh_space(tmp_settings)
    node.down()


def _visible(client: TestClient, asset: int, within: float = 1.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(a["assetId"] == asset for a in client.get("/catalog").json()):
            return True
        time.sleep(0.02)
    return False


def test_new_asset_visible_within_confirmations_plus_one_block(space, tmp_settings, tmp_path):
    w3 = space["w3"]
    idx = EventIndex(w3, space["deployment"], f"sqlite:///{tmp_path / 'i.sqlite'}", confirmations=CONFIRMATIONS)
    stop = threading.Event()
    follower = threading.Thread(target=idx.run, kwargs={"stop": stop.is_set, "idle": 0.02}, daemon=True)
    follower.start()
    try:
        client = TestClient(create_app(replace(tmp_settings, rpc_url=w3.provider.endpoint_uri), index=idx,
                                       rate_limit=RateLimit(per_second=1000, burst=1000)))
        first = client.get("/catalog")
        etag = first.headers["etag"]
        assert client.get("/catalog", headers={"If-None-Match": etag}).status_code == 304
        block = mint_one(space, "fresh")
        while not _visible(client, 1):
            assert w3.eth.block_number < block + CONFIRMATIONS + 1, "not visible within confirmations + 1 blocks"
            w3.provider.make_request("evm_mine", [])
        assert w3.eth.block_number - block <= CONFIRMATIONS + 1
        r = client.get("/catalog", headers={"If-None-Match": etag})
        assert r.status_code == 200 and r.headers["etag"] != etag  # a newer indexed block, a new ETag
        assert r.json()[0]["indexedBlock"] >= block and r.json()[0]["provider_did"].startswith("did:")
        a = client.get("/assets/1")
        assert client.get("/assets/1", headers={"If-None-Match": a.headers["etag"]}).status_code == 304
    finally:
        stop.set()
        follower.join(timeout=5)


def test_entity_routes_from_the_index_equal_todays_and_refuse_unknown_ids(lc, tmp_path):
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    indexed = TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch, index=idx))
    direct = TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch))
    block = str(idx.indexed_block())
    for url in [f"/assets/{lc.asset}/trail", f"/assets/{lc.other_asset}/trail", f"/jobs/{lc.job_ok}",
                f"/jobs/{lc.job_failed}", f"/jobs/{lc.other_job}"]:
        r = indexed.get(url)
        assert r.status_code == 200 and r.headers["x-tds-indexed-block"] == block, url
        body, today = r.json(), direct.get(url).json()
        assert today.pop("indexedBlock") is None  # today's path reads the node, not an index
        assert body.pop("indexedBlock") == int(block) and body == today, url
        assert indexed.get(url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    g = indexed.get(f"/grants/{lc.grant}")
    assert g.status_code == 200 and g.headers["x-tds-indexed-block"] == block
    grant = g.json()
    assert (grant["status"], grant["frozen"], grant["assetId"]) == ("closed", False, lc.asset)
    assert [j["jobId"] for j in grant["jobs"]] == sorted([lc.job_ok, lc.job_failed])
    assert [(a["authority"], a["reasonCode"]) for a in grant["alerts"]] == [("regulator", 42)]
    assert grant["alerts"][0]["liftedBlock"] is not None
    assert {"grant", "approve", "freeze", "unfreeze", "destroy"} <= {h["action"] for h in grant["history"]}
    for url, code in [("/grants/999", "unknown-grant"), ("/collaborations/5", "unknown-collaboration"),
                      (f"/jobs/{lc.job_ok + 77}", "unknown-job"), ("/assets/999/trail", "unknown-asset")]:
        r = indexed.get(url)
        assert r.status_code == 404 and r.json()["error"] == code and set(r.json()) == {"error", "detail"}, url
        assert "indexed up to block" in r.json()["detail"]
    r = direct.get(f"/grants/{lc.grant}")
    assert r.status_code == 503 and r.json()["error"] == "index-unavailable"
    assert indexed.get("/grants/0").json()["error"] == "invalid-input"


def test_reader_processes_answer_byte_for_byte_as_the_reader_thread(lc, tmp_path):
    """``read_processes``: entity answers built in spawned reader processes (each with its own
    index connection) are the very bytes the reader thread builds; unknown ids are still 404."""
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    thread = TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch, index=idx))
    app = create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch, index=idx, read_processes=1)
    with TestClient(app) as procs:  # the context runs startup and shutdown (the pool is closed)
        assert app.state.read_processes.warm() == 1
        for url in [f"/assets/{lc.asset}/trail", f"/jobs/{lc.job_ok}", f"/grants/{lc.grant}"]:
            a, b = procs.get(url), thread.get(url)
            assert a.status_code == b.status_code == 200 and a.content == b.content, url
            assert a.headers["etag"] == b.headers["etag"]
        r = procs.get("/assets/999/trail")
        assert r.status_code == 404 and r.json()["error"] == "unknown-asset"
    assert app.state.read_processes._pool is None


def test_participant_roles_read_from_the_index_equal_the_registry(lc, tmp_path):
    """/audit/events decides who sees every entry from the index's participant roles
    (``EntityReads.holds_role``): the same answer as ``IdentityRegistry.hasParticipantRole``."""
    from audit.index_entities import EntityReads
    from chain.system import role_id
    from tests.support.lifecycle import PARTICIPANTS

    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    reads = EntityReads(lc.w3, lc.deployment, idx.engine)
    ident = lc.c["IdentityRegistry"].functions
    now = lc.w3.eth.get_block("latest")["timestamp"]
    held = 0
    for _, name, _ in PARTICIPANTS:
        for role in ("PROVIDER", "CONSUMER", "COMPUTE_PROVIDER", "ALGORITHM_PROVIDER", "REGULATOR"):
            on_chain = ident.hasParticipantRole(lc.addr[name], role_id(role)).call()
            assert reads.holds_role(lc.addr[name], [role], now) == on_chain, (name, role)
            held += on_chain
    assert held == len(PARTICIPANTS)
    assert not reads.holds_role("0x000000000000000000000000000000000000dEaD", ["PROVIDER"], now)
