"""The gateway's write side on a real chain: applications and jobs as the caller's own signed
transactions, grant offers relayed (the relayer pays), sealed results to the consumer only, the
audit-log query, DID challenge–response with on-chain binding, rate limits, body limits, JSON
refusals, and no plaintext in any response."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from fastapi.testclient import TestClient
from web3.logs import DISCARD

from did.envelope import Envelope, open_envelope, seal
from did.guard import ChallengeGuard
from did.challenge import ChallengeVerifier
from did.identity import Identity
from did.registry import IdentityRegistryClient
from chain.cid import parse_cid
from offchain.store.client import EmbeddedStore
from chain.accounts import dev_account
from chain.connection import connect
from chain.node import EmbeddedNode, free_port
from chain.config import load_settings
from chain.eip712 import GrantTerms, grant_typed_data, job_result_typed_data, sign_typed
from tds.gateway import create_app
from tds.gateway.limits import RateLimit
from chain.params import canonical_params, is_sealed, params_cid, params_hash, seal_params
from did.sealing import RESULT_PURPOSE
from chain import Member, Space
from chain.system import deploy_system

DET_EQ, OPE_RANGE, HOM_AGG = 1, 2, 4
PRICE = 10**15
ZERO = "0x" + "00" * 20
SECRET = "PLAINTEXT-ROW alice 1987-03-04 salary 91234"  # what must never leave the gateway in clear
ROLES = {"provider": (3, "PROVIDER"), "consumer": (4, "CONSUMER"), "oracle": (5, "COMPUTE_PROVIDER"),
         "stranger": (8, None), "regulator": (1, None)}


@dataclass
class World:
    w3: Any
    space: Space
    ids: dict[str, Identity]
    asset: int
    store: EmbeddedStore
    settings: Any
    client: TestClient
    relayer: Any

    def now(self) -> int:
        return self.space.now()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("gateway-writes")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    try:
        w3 = connect(settings)
        doc = deploy_system(settings, w3=w3)
        space = Space(w3, doc)
        registry = IdentityRegistryClient.from_deployment(w3, doc)
        ids = {name: Identity.create(name, dev_account(i)) for name, (i, _) in ROLES.items()}
        ids["unbound"] = Identity.create("unbound", dev_account(9))
        operator = dev_account(0)
        for name, (_, role) in ROLES.items():
            registry.bind(ids[name])
            if role:
                registry.grant_participant_role(operator, ids[name].address, role, keccak(text=f"vc:{name}"))
        template = space.publish_template(operator, "standard", b"terms", 3, 63, [7000, 1000, 1500, 500])
        provider = Member("provider", ids["provider"].account, ids["provider"].did)
        asset = space.register_asset(provider, b"\x12\x20" + bytes(32), b"\x12\x20" + b"\1" * 32, keccak(text="m"),
                                     "sensitive", keccak(text="q"), template)
        store = EmbeddedStore(tmp / "store")
        live = replace(settings, rpc_url=w3.provider.endpoint_uri)
        relayer = dev_account(6)  # the operator's relayer: no role, just funded
        app = create_app(live, store=store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")), guard_reads=False,
                         relayer=relayer, rate_limit=RateLimit(per_second=1000, burst=1000))
        yield World(w3, space, ids, asset, store, live, TestClient(app), relayer)
    finally:
        node.down()


def auth(client: TestClient, who: Identity) -> dict[str, str]:
    """Answer a fresh challenge of the gateway as ``who``."""
    from did.guard import presentation_header

    return presentation_header(who, client.get("/auth/challenge").json()["www_authenticate"])


def signed(w: World, who: str, fn: Any, *, value: int = 0, chain_id: int | None = None, nonce: int | None = None) -> str:
    """``fn`` as a raw transaction signed in ``who``'s wallet (the gateway never sees the key)."""
    acct = w.ids[who].account if who in w.ids else who
    tx = fn.build_transaction({"from": acct.address, "value": value, "gas": 600_000,
                               "nonce": w.w3.eth.get_transaction_count(acct.address) if nonce is None else nonce,
                               "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
                               "chainId": chain_id or w.w3.eth.chain_id})
    return "0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex()


def apply_fn(w: World, operations: int = HOM_AGG | OPE_RANGE, asset: int | None = None) -> Any:
    return w.space.c["Authorizations"].functions.applyFor(asset or w.asset, keccak(text="study"), operations, 0, 0,
                                                          w.now() + 30 * 86400, 5)


def offer(w: World, signer: str = "provider", *, nonce: int = 0, deadline: int | None = None) -> dict[str, Any]:
    deadline = deadline if deadline is not None else w.now() + 3600
    expiry = w.now() + 30 * 86400
    terms = GrantTerms(w.asset, w.ids["consumer"].address, keccak(text="offer"), HOM_AGG, 0, 0, expiry, 3, ZERO, PRICE,
                       ZERO)
    auth_c = w.space.c["Authorizations"]
    sig = sign_typed(grant_typed_data(terms, nonce, deadline, w.w3.eth.chain_id, auth_c.address),
                     w.ids[signer].account.key)
    body = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in terms.__dict__.items()}
    return {"terms": body, "nonce": nonce, "deadline": deadline, "signature": "0x" + sig.hex()}


def granted(w: World) -> int:
    r = w.client.post("/grants", json=offer(w, nonce=_fresh_nonce(w)), headers=auth(w.client, w.ids["provider"]))
    assert r.status_code == 201, r.text
    return r.json()["grantId"]


def _fresh_nonce(w: World) -> int:
    """A new keyed nonce for an offer over ``w.asset``: its transfer count on top (offers die when the
    certificate changes hands), then a 160-bit salt, sequence 0 (chain.eip712.offer_nonce)."""
    from chain.eip712 import offer_nonce

    transfers = w.space.c["AssetRegistry"].functions.transfersOf(w.asset).call()
    return offer_nonce(transfers, int.from_bytes(keccak(text=f"k{w.now()}{w.w3.eth.block_number}")[:20], "big"))


def sealed(w: World, query: dict[str, Any]) -> dict[str, Any]:
    """The job parameters as a consumer's client sends them: sealed to the provider's key service."""
    return json.loads(seal_params(query, [w.space.key_agreement_key(w.ids["provider"].address)]))


def request_job(w: World, grant: int, query: dict[str, Any]) -> Any:
    query = sealed(w, query)
    digest = params_hash(canonical_params(query))
    fn = w.space.c["Jobs"].functions.requestJob(grant, HOM_AGG, digest, w.now() + 3600)
    return w.client.post("/jobs", json={"rawTransaction": signed(w, "consumer", fn, value=PRICE), "params": query},
                         headers=auth(w.client, w.ids["consumer"]))


# ---------------------------------------------------------------------------- applications

def test_application_is_the_consumers_own_transaction(world: World):
    w = world
    before = w.w3.eth.get_transaction_count(w.relayer.address)
    r = w.client.post("/applications", json={"rawTransaction": signed(w, "consumer", apply_fn(w))},
                      headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "mined" and body["paidBy"] == w.ids["consumer"].address
    assert body["assetId"] == w.asset and body["consumer"] == w.ids["consumer"].address
    app = w.space.c["Authorizations"].functions.applicationOf(body["applicationId"]).call()
    assert app[0] == w.ids["consumer"].address
    assert w.w3.eth.get_transaction(body["txHash"])["from"] == w.ids["consumer"].address  # its signer paid
    assert w.w3.eth.get_transaction_count(w.relayer.address) == before  # the gateway sent nothing


def test_application_refusals(world: World):
    w = world
    c = w.client
    # no answer to the challenge: 401, JSON, a fresh challenge
    r = c.post("/applications", json={"rawTransaction": signed(w, "consumer", apply_fn(w))})
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    assert r.headers["www-authenticate"].startswith("TDS-Challenge ")
    cases = [
        # signed by the provider's account, presented by the consumer's DID
        ("consumer", signed(w, "provider", apply_fn(w)), 403, "signer-not-caller"),
        # a DID that is not bound on chain
        ("unbound", signed(w, "unbound", apply_fn(w)), 403, "did-not-bound"),
        # another contract, another function, another chain
        ("consumer", signed(w, "consumer", w.space.c["Jobs"].functions.withdraw(ZERO)), 400, "wrong-contract"),
        ("consumer", signed(w, "consumer", w.space.c["Authorizations"].functions.close(1, bytes(32))), 400,
         "wrong-function"),
        ("consumer", signed(w, "consumer", apply_fn(w), chain_id=1), 400, "wrong-chain"),
        ("consumer", "0xdeadbeef", 400, "invalid-transaction"),
        ("consumer", "not hex", 422, "invalid-input"),
        # the chain would refuse it: operations outside the certificate's scope → decoded revert
        ("consumer", signed(w, "consumer", apply_fn(w, operations=1 << 7)), 409, "reverted"),
    ]
    for who, raw, status, code in cases:
        r = c.post("/applications", json={"rawTransaction": raw}, headers=auth(c, w.ids[who]))
        assert r.status_code == status and r.json()["error"] == code, (code, r.text)
        assert set(r.json()) == {"error", "detail"}
    r = c.post("/applications", json={"rawTransaction": signed(w, "consumer", apply_fn(w, operations=1 << 7))},
               headers=auth(c, w.ids["consumer"]))
    assert "InvalidOperation" in r.json()["detail"] or "OutOfScope" in r.json()["detail"]
    # a used nonce: the node refuses, still a 409 with its reason
    stale = signed(w, "consumer", apply_fn(w), nonce=0)
    r = c.post("/applications", json={"rawTransaction": stale}, headers=auth(c, w.ids["consumer"]))
    assert r.status_code == 409 and r.json()["error"] in ("rejected-by-node", "reverted"), r.text
    # a presentation is good for one request only
    header = auth(c, w.ids["consumer"])
    c.post("/applications", json={"rawTransaction": "0x00"}, headers=header)
    r = c.post("/applications", json={"rawTransaction": "0x00"}, headers=header)
    assert r.status_code == 401 and "ChallengeReplayed" in r.json()["detail"]


# ---------------------------------------------------------------------------- grants

def test_grant_offer_relayed_relayer_pays(world: World):
    w = world
    provider_before = w.w3.eth.get_balance(w.ids["provider"].address)
    r = w.client.post("/grants", json=offer(w, nonce=0), headers=auth(w.client, w.ids["provider"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["paidBy"] == w.relayer.address and body["provider"] == w.ids["provider"].address
    g = w.space.c["Authorizations"].functions.grantOf(body["grantId"]).call()
    assert g[0] == w.ids["consumer"].address
    # the relayer sent (and so paid for) the transaction; the provider's balance did not move
    assert w.w3.eth.get_transaction(body["txHash"])["from"] == w.relayer.address
    assert w.w3.eth.get_balance(w.ids["provider"].address) == provider_before
    # the same offer again: its nonce is used
    r = w.client.post("/grants", json=offer(w, nonce=0), headers=auth(w.client, w.ids["provider"]))
    assert r.status_code == 409 and r.json()["error"] == "nonce-used"


@pytest.mark.parametrize("signer,caller,tweak,status,code", [
    ("consumer", "consumer", {}, 403, "signer-not-holder"),
    ("provider", "consumer", {}, 403, "signer-not-caller"),
    ("provider", "provider", {"deadline": 1}, 409, "signature-expired"),
    ("provider", "provider", {"nonce": 5}, 409, "nonce-ahead"),
    ("provider", "provider", {"signature": "0x1234"}, 400, "invalid-signature"),
    ("provider", "provider", {"terms.assetId": 999}, 404, "unknown-asset"),
    ("provider", "provider", {"terms.consumer": "0x123"}, 400, "invalid-terms"),
    ("provider", "provider", {"terms.operations": 1 << 20}, 400, "invalid-terms"),
])
def test_grant_offer_refusals(world: World, signer: str, caller: str, tweak: dict, status: int, code: str):
    w = world
    payload = offer(w, signer, nonce=(7 << 64) if "nonce" not in tweak else tweak["nonce"],
                    deadline=tweak.get("deadline"))
    for k, v in tweak.items():
        if k.startswith("terms."):
            payload["terms"][k[6:]] = v
        elif k == "signature":
            payload[k] = v
    r = w.client.post("/grants", json=payload, headers=auth(w.client, w.ids[caller]))
    assert r.status_code == status and r.json()["error"] == code, r.text


def test_grants_without_a_relayer_are_503(world: World):
    w = world
    app = create_app(w.settings, store=w.store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")))
    c = TestClient(app)
    r = c.post("/grants", json=offer(w, nonce=9 << 64), headers=auth(c, w.ids["provider"]))
    assert r.status_code == 503 and r.json()["error"] == "no-relayer"


# ---------------------------------------------------------------------------- jobs and results

def test_job_request_stores_params_and_relays(world: World):
    w = world
    grant = granted(w)
    query = {"dataset": "sales", "op": "sum", "field": "amount"}
    r = request_job(w, grant, query)
    assert r.status_code == 201, r.text
    body = r.json()
    stored = json.loads(w.store.cat(body["paramsCid"]))
    assert body["paramsCid"] == params_cid(params_hash(canonical_params(stored)))
    assert is_sealed(stored) and b"amount" not in w.store.cat(body["paramsCid"])  # the store holds no query
    assert body["jobId"] == grant << 32 and body["paidBy"] == w.ids["consumer"].address
    job = w.client.get(f"/jobs/{body['jobId']}").json()
    assert job["status"] == "requested" and job["amount"] == str(PRICE)


def test_job_refusals(world: World):
    w = world
    grant = granted(w)
    params = sealed(w, {"op": "sum"})
    digest = params_hash(canonical_params(params))
    fn = w.space.c["Jobs"].functions.requestJob(grant, HOM_AGG, digest, w.now() + 3600)
    r = w.client.post("/jobs", json={"rawTransaction": signed(w, "consumer", fn, value=PRICE),
                                     "params": sealed(w, {"op": "max"})}, headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 400 and r.json()["error"] == "params-mismatch"
    plain = {"op": "sum"}  # a query in clear would sit in the shared store: refused
    fn_plain = w.space.c["Jobs"].functions.requestJob(grant, HOM_AGG, params_hash(canonical_params(plain)),
                                                      w.now() + 3600)
    r = w.client.post("/jobs", json={"rawTransaction": signed(w, "consumer", fn_plain, value=PRICE), "params": plain},
                      headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 400 and r.json()["error"] == "params-not-sealed"
    big = {"rows": "x" * (300 * 1024)}  # over the 256 KiB parameter limit, under the body limit
    r = w.client.post("/jobs", json={"rawTransaction": signed(w, "consumer", fn, value=PRICE), "params": big},
                      headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 413 and r.json()["error"] == "params-too-large"
    huge = json.dumps({"rawTransaction": "0x00", "params": {"rows": "x" * (600 * 1024)}})
    r = w.client.post("/jobs", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload-too-large"
    # an operation the grant does not allow: simulated, refused, nothing stored
    bad = w.space.c["Jobs"].functions.requestJob(grant, DET_EQ, digest, w.now() + 3600)
    r = w.client.post("/jobs", json={"rawTransaction": signed(w, "consumer", bad, value=PRICE), "params": params},
                      headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 409 and "OperationNotAllowed" in r.json()["detail"]
    with pytest.raises(Exception):
        w.store.cat(params_cid(digest))


def complete_with_sealed_result(w: World, job_id: int, payload: dict[str, Any]) -> bytes:
    """The oracle's part, for real: accept, seal the answer to the consumer's on-chain key, store, complete."""
    jobs = w.space.c["Jobs"]
    oracle = w.ids["oracle"]
    w.space.send(oracle.account, jobs.functions.acceptJob(job_id))
    sealed = seal(w.ids["provider"], w.ids["consumer"].did, w.space.key_agreement_key(w.ids["consumer"].address),
                  json.dumps(payload).encode(), RESULT_PURPOSE).to_bytes()
    cid = parse_cid(w.store.add_bytes(sealed, cid_version=1)).to_bytes()
    w.space.send(w.ids["provider"].account, jobs.functions.recordRelease(job_id, keccak(sealed)))  # the holder's release
    sig = sign_typed(job_result_typed_data(job_id, keccak(sealed), cid, w.w3.eth.chain_id, jobs.address), oracle.account.key)
    w.space.send(oracle.account, jobs.functions.completeJob(job_id, cid, keccak(sealed), sig))
    return sealed


def test_result_is_sealed_and_for_the_consumer_only(world: World):
    w = world
    grant = granted(w)
    job = request_job(w, grant, {"op": "sum", "field": "salary"}).json()["jobId"]
    r = w.client.get(f"/jobs/{job}/result", headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 404 and r.json()["error"] == "no-result"
    sealed = complete_with_sealed_result(w, job, {"answer": SECRET})
    r = w.client.get(f"/jobs/{job}/result", headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.content == sealed and r.headers["x-tds-result-hash"] == "0x" + keccak(sealed).hex()
    assert SECRET.encode() not in r.content
    assert json.loads(open_envelope(w.ids["consumer"], Envelope.from_bytes(r.content)))["answer"] == SECRET
    for who, status, code in [("provider", 403, "not-consumer"), ("stranger", 403, "not-consumer")]:
        r = w.client.get(f"/jobs/{job}/result", headers=auth(w.client, w.ids[who]))
        assert r.status_code == status and r.json()["error"] == code
    assert w.client.get(f"/jobs/{job}/result").status_code == 401
    r = w.client.get(f"/jobs/{(999 << 32)}/result", headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 404 and r.json()["error"] == "unknown-job"


# ---------------------------------------------------------------------------- audit log

def test_audit_events_query(world: World):
    w = world
    c = w.client
    r = c.get("/audit/events")
    assert r.status_code == 401
    everything = c.get("/audit/events", headers=auth(c, w.ids["regulator"])).json()
    assert everything["total"] > 5
    first = everything["events"][0]
    assert {"id", "actor", "time", "action", "object", "result"} <= set(first)
    assert first["action"] == "register" and first["object"]["asset"] == w.asset
    applies = c.get("/audit/events", params={"action": "apply", "asset": w.asset},
                    headers=auth(c, w.ids["regulator"])).json()["events"]
    assert applies and {e["actor"] for e in applies} == {w.ids["consumer"].address}
    by_did = c.get("/audit/events", params={"actor": w.ids["provider"].did},
                   headers=auth(c, w.ids["regulator"])).json()["events"]
    assert by_did and {e["actor_did"] for e in by_did} == {w.ids["provider"].did}
    t = first["time"]
    window = c.get("/audit/events", params={"from": str(t), "to": "2100-01-01T00:00:00Z", "limit": 2},
                   headers=auth(c, w.ids["regulator"])).json()
    assert len(window["events"]) == 2 and window["total"] == everything["total"]
    none = c.get("/audit/events", params={"to": str(t - 1)}, headers=auth(c, w.ids["regulator"])).json()
    assert none["total"] == 0
    # a participant sees its own operations only, whatever it asks for
    mine = c.get("/audit/events", headers=auth(c, w.ids["consumer"])).json()["events"]
    assert mine and all(w.ids["consumer"].address in (e["actor"], e["object"].get("payee"), e["object"].get("to"))
                        for e in mine)
    for params, code in [({"action": "steal"}, "invalid-action"), ({"from": "yesterday"}, "invalid-time"),
                         ({"actor": "bob"}, "invalid-actor"), ({"from": "10", "to": "5"}, "invalid-time")]:
        r = c.get("/audit/events", params=params, headers=auth(c, w.ids["regulator"]))
        assert r.status_code == 400 and r.json()["error"] == code, r.text
    r = c.get("/audit/events", params={"limit": 0}, headers=auth(c, w.ids["regulator"]))
    assert r.status_code == 422 and r.json()["error"] == "invalid-input"


def test_audit_events_from_the_index_equal_the_chains(world: World, tmp_path):
    """The same audit-log answers, filter for filter and caller for caller, with an event index."""
    from audit.index import EventIndex

    w = world
    idx = EventIndex(w.w3, w.space.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    c = TestClient(create_app(w.settings, store=w.store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")),
                              guard_reads=False, rate_limit=RateLimit(per_second=1000, burst=1000), index=idx))
    t = w.client.get("/audit/events", headers=auth(w.client, w.ids["regulator"])).json()["events"][3]["time"]
    for who, params in [("regulator", {}), ("regulator", {"action": "apply", "asset": w.asset}),
                        ("regulator", {"actor": w.ids["provider"].did}), ("regulator", {"from": str(t), "limit": 2}),
                        ("regulator", {"actor": w.ids["consumer"].address, "offset": 1}), ("consumer", {}),
                        ("consumer", {"action": "apply"})]:
        want = w.client.get("/audit/events", params=params, headers=auth(w.client, w.ids[who]))
        got = c.get("/audit/events", params=params, headers=auth(c, w.ids[who]))
        assert want.status_code == got.status_code == 200, (who, params, got.text)
        body = got.json()
        assert body.pop("indexedBlock") == idx.indexed_block() and want.json().pop("indexedBlock") is None
        assert body == {k: v for k, v in want.json().items() if k != "indexedBlock"}, (who, params)
    r = c.get("/audit/events", params={"action": "steal"}, headers=auth(c, w.ids["regulator"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid-action"
    r = c.get("/audit/events", params={"asset": 999}, headers=auth(c, w.ids["regulator"]))
    assert r.status_code == 404 and r.json()["error"] == "unknown-asset"


# ---------------------------------------------------------------------------- limits, errors, OpenAPI

class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_rate_limit_per_caller(world: World):
    w = world
    clock = Clock()
    guard = ChallengeGuard(ChallengeVerifier("gateway.test"))
    c = TestClient(create_app(w.settings, store=w.store, guard=guard, guard_reads=False,
                              rate_limit=RateLimit(per_second=0.5, burst=2, clock=clock)))
    assert [c.get("/catalog").status_code for _ in range(2)] == [200, 200]
    r = c.get("/catalog")
    assert r.status_code == 429 and r.json()["error"] == "rate-limited" and r.headers["retry-after"] == "2"
    # an authenticated DID has its own bucket
    www = guard.verifier.issue()
    from did.guard import challenge_header, presentation_header

    r = c.get("/audit/events", headers=presentation_header(w.ids["regulator"], challenge_header(www)))
    assert r.status_code == 200
    clock.t += 2
    assert c.get("/catalog").status_code == 200


def test_without_guard_writes_are_off(world: World):
    c = TestClient(create_app(world.settings, store=world.store))
    assert c.get("/catalog").status_code == 200
    for method, url in [("post", "/applications"), ("post", "/grants"), ("post", "/jobs"), ("get", "/audit/events"),
                        ("get", "/jobs/1/result"), ("get", "/auth/challenge")]:
        r = getattr(c, method)(url, **({"json": {}} if method == "post" else {}))
        assert r.status_code in (503, 422) and set(r.json()) == {"error", "detail"}, (url, r.text)
    r = c.post("/applications", json={"rawTransaction": "0x00"})
    assert r.status_code == 503 and r.json()["error"] == "authentication-off"


def test_user_mistakes_are_json_4xx(world: World):
    c = world.client
    for method, url, kwargs, status in [
        ("get", "/nowhere", {}, 404), ("delete", "/catalog", {}, 405),
        ("post", "/applications", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("post", "/grants", {"json": {"terms": {}}}, 401),
    ]:
        r = getattr(c, method)(url, **kwargs)
        assert r.status_code == status and set(r.json()) == {"error", "detail"}, (url, r.text)
    h = auth(c, world.ids["provider"])
    r = c.post("/grants", content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid-input"


def test_openapi_is_complete(world: World):
    spec = world.client.get("/openapi.json").json()
    expected = {"/catalog", "/assets/{asset_id}", "/assets/{asset_id}/trail", "/audit/verify", "/audit/events",
                "/jobs/{job_id}", "/jobs/{job_id}/result", "/applications", "/grants", "/jobs", "/auditor",
                "/auth/challenge", "/grants/{grant_id}", "/collaborations/{collab_id}", "/collaborations",
                "/collaborations/validate"}
    assert expected == set(spec["paths"])
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary") and op.get("tags") and op.get("description"), where
            assert all(r.get("description") for r in op["responses"].values()), where
            if path != "/auditor":
                errors = [code for code in op["responses"] if code.startswith(("4", "5"))]
                assert errors, where
                for code in errors:
                    ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (where, code)
    for write in ("/applications", "/grants", "/jobs"):
        op = spec["paths"][write]["post"]
        assert {"401", "403", "409", "413", "429"} <= set(op["responses"]) and "requestBody" in op
    assert {"ApplicationOut", "GrantOut", "JobOut", "AuditEvents", "TrailEntry", "ErrorBody"} <= set(
        spec["components"]["schemas"])


def test_no_response_carries_plaintext(world: World):
    """Every read endpoint, over a world where a sealed answer holds SECRET: never in clear."""
    w = world
    grant = granted(w)
    job = request_job(w, grant, {"op": "sum", "field": "salary"}).json()["jobId"]
    complete_with_sealed_result(w, job, {"answer": SECRET, "rows": [SECRET]})
    c = w.client
    reg = lambda: auth(c, w.ids["regulator"])  # noqa: E731
    bodies = [c.get(u).content for u in ("/catalog", f"/assets/{w.asset}", f"/assets/{w.asset}/trail",
                                         "/audit/verify", f"/audit/verify?asset={w.asset}", f"/jobs/{job}",
                                         "/auditor", "/openapi.json")]
    bodies.append(c.get("/audit/events", headers=reg()).content)
    bodies.append(c.get(f"/jobs/{job}/result", headers=auth(c, w.ids["consumer"])).content)
    assert all(SECRET.encode() not in b and b"1987-03-04" not in b for b in bodies)
    verify = c.get(f"/audit/verify?asset={w.asset}").json()
    assert any(v["step"] == "result-hash" and v["ok"] for v in verify["verdicts"])


# ---------------------------------------------------------------------------- issue 12, item 16

def _offer_for(w: World, asset: int, consumer: str, nonce: int, signer: str = "provider") -> dict[str, Any]:
    """A grant offer over ``asset`` for ``consumer`` (an address), signed by ``signer``."""
    now = w.now()
    terms = GrantTerms(asset, consumer, keccak(text="item16"), HOM_AGG, 0, 0, now + 30 * 86400, 3, ZERO, PRICE, ZERO)
    auth_c = w.space.c["Authorizations"]
    sig = sign_typed(grant_typed_data(terms, nonce, now + 3600, w.w3.eth.chain_id, auth_c.address),
                     w.ids[signer].account.key)
    body = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in terms.__dict__.items()}
    return {"terms": body, "nonce": nonce, "deadline": now + 3600, "signature": "0x" + sig.hex()}


def _salted(w: World, tag: str, transfers: int = 0) -> int:
    from chain.eip712 import offer_nonce

    return offer_nonce(transfers, int.from_bytes(keccak(text=f"{tag}{w.w3.eth.block_number}")[:20], "big"))


def _operator_grants(w: World, who: str, role: str) -> None:
    if not w.space.c["IdentityRegistry"].functions.hasParticipantRole(w.ids[who].address, keccak(text=role)).call():
        w.space.grant_role(dev_account(0), Member(who, w.ids[who].account, w.ids[who].did), role,
                           keccak(text=f"vc:{who}:{role}"))


def _new_asset(w: World, holder: str = "provider") -> int:
    _operator_grants(w, holder, "PROVIDER")
    member = Member(holder, w.ids[holder].account, w.ids[holder].did)
    return w.space.register_asset(member, b"\x12\x20" + keccak(text=f"a{w.w3.eth.block_number}"),
                                  b"\x12\x20" + bytes(32), keccak(text="m"), "internal", keccak(text="q"), 1)


def test_job_params_stored_only_once_the_node_accepts(world: World):
    """(a) A request that simulates but that the node refuses (a used nonce) leaves nothing in the
    store; the same signed request posted twice is sent once."""
    w = world
    grant = granted(w)
    query = sealed(w, {"op": "sum", "field": "node-refused"})
    digest = params_hash(canonical_params(query))
    fn = w.space.c["Jobs"].functions.requestJob(grant, HOM_AGG, digest, w.now() + 3600)
    stale = signed(w, "consumer", fn, value=PRICE, nonce=0)  # simulates fine; the node refuses the nonce
    r = w.client.post("/jobs", json={"rawTransaction": stale, "params": query}, headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 409 and r.json()["error"] == "rejected-by-node", r.text
    assert set(r.json()) == {"error", "detail"} and "nonce" in r.json()["detail"]
    with pytest.raises(Exception):
        w.store.cat(params_cid(digest))  # nothing stored for it
    raw = signed(w, "consumer", fn, value=PRICE)
    first = w.client.post("/jobs", json={"rawTransaction": raw, "params": query},
                          headers=auth(w.client, w.ids["consumer"]))
    assert first.status_code == 201, first.text
    assert params_cid(digest) in w.store.blocks.pin_ls()  # stored (and pinned) once accepted and mined
    sent = w.w3.eth.get_transaction_count(w.ids["consumer"].address)
    again = w.client.post("/jobs", json={"rawTransaction": raw, "params": query},
                          headers=auth(w.client, w.ids["consumer"]))
    assert again.status_code == 201 and again.json()["jobId"] == first.json()["jobId"]
    assert w.w3.eth.get_transaction_count(w.ids["consumer"].address) == sent  # not sent twice


def test_job_params_unpinned_when_the_mined_request_reverts(world: World):
    """(a) Simulated and accepted, then mined after its deadline (the chain moved on): a 409 and
    the parameters are not left pinned in the store."""
    import threading

    from web3 import HTTPProvider, Web3

    w = world
    grant = granted(w)
    query = sealed(w, {"op": "sum", "field": "mined-late"})
    digest = params_hash(canonical_params(query))
    deadline = w.now() + 60
    raw = signed(w, "consumer", w.space.c["Jobs"].functions.requestJob(grant, HOM_AGG, digest, deadline), value=PRICE)
    headers = auth(w.client, w.ids["consumer"])
    miner = Web3(HTTPProvider(w.settings.rpc_url))
    tx_hash = keccak(bytes.fromhex(raw[2:]))

    def mine_after_the_deadline() -> None:
        from web3.exceptions import TransactionNotFound

        for _ in range(600):  # until the gateway has handed the transaction to the node
            try:
                miner.eth.get_transaction(tx_hash)
                break
            except TransactionNotFound:
                threading.Event().wait(0.01)
        miner.provider.make_request("evm_setNextBlockTimestamp", [deadline + 100])
        miner.provider.make_request("evm_mine", [])

    w.w3.provider.make_request("evm_setAutomine", [False])
    thread = threading.Thread(target=mine_after_the_deadline, daemon=True)
    try:
        thread.start()
        r = w.client.post("/jobs", json={"rawTransaction": raw, "params": query}, headers=headers)
    finally:
        thread.join(timeout=10)
        w.w3.provider.make_request("evm_setAutomine", [True])
    assert r.status_code == 409 and r.json()["error"] == "reverted", r.text
    assert w.w3.eth.get_transaction_receipt(tx_hash)["status"] == 0  # mined, reverted
    assert params_cid(digest) not in w.store.blocks.pin_ls()


def test_relayed_offer_the_chain_would_refuse_costs_the_relayer_nothing(world: World):
    """(b) Offers that pass the gateway's own checks but would revert: a 409 naming the contract
    error, and the relayer sends nothing."""
    w = world
    c, provider = w.client, w.ids["provider"]
    sent = w.w3.eth.get_transaction_count(w.relayer.address)
    # a consumer without the CONSUMER role
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["stranger"].address, _salted(w, "c")),
               headers=auth(c, provider))
    assert r.status_code == 409 and r.json()["error"] == "consumer-not-registered", r.text
    assert "ConsumerNotRegistered" in r.json()["detail"] and set(r.json()) == {"error", "detail"}
    # a holder whose PROVIDER role was revoked since it signed
    registry = w.space.c["IdentityRegistry"].functions
    w.space.send(dev_account(0), registry.revokeParticipantRole(provider.address, keccak(text="PROVIDER"),
                                                                 keccak(text="suspended")))
    try:
        r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "p")),
                   headers=auth(c, provider))
        assert r.status_code == 409 and r.json()["error"] == "provider-not-registered", r.text
    finally:
        _operator_grants(w, "provider", "PROVIDER")
    # an offer signed before the certificate changed hands (there and back): OfferOutdated
    asset = _new_asset(w)
    old = _offer_for(w, asset, w.ids["consumer"].address, _salted(w, "o", transfers=0))
    _operator_grants(w, "stranger", "PROVIDER")
    assets = w.space.c["AssetRegistry"].functions
    w.space.send(provider.account, assets.transferFrom(provider.address, w.ids["stranger"].address, asset))
    w.space.send(w.ids["stranger"].account, assets.transferFrom(w.ids["stranger"].address, provider.address, asset))
    r = c.post("/grants", json=old, headers=auth(c, provider))
    assert r.status_code == 409 and r.json()["error"] == "offer-outdated", r.text
    assert "OfferOutdated" in r.json()["detail"]
    assert w.w3.eth.get_transaction_count(w.relayer.address) == sent  # none of them was sent
    fresh = _offer_for(w, asset, w.ids["consumer"].address, _salted(w, "n", transfers=2))
    r = c.post("/grants", json=fresh, headers=auth(c, provider))
    assert r.status_code == 201, r.text  # the holder's new offer, at the current transfer count


def test_offer_used_just_before_sending_is_not_paid_for(world: World):
    """(b) The simulation runs right before sending: an offer whose nonce was spent after the
    gateway's checks (here: cancelled on chain) is refused with InvalidAccountNonce, not sent;
    over HTTP, a cancelled offer is a 409 offer-cancelled."""
    from tds.gateway.errors import Conflict
    from tds.gateway.relay import Relay, RelayBudget, Relayer

    w = world
    provider = w.ids["provider"]
    nonce = _salted(w, "cancel")
    offer_body = _offer_for(w, w.asset, w.ids["consumer"].address, nonce)
    terms = GrantTerms(**{k: (bytes.fromhex(v[2:]) if k == "purposeHash" else v)
                          for k, v in offer_body["terms"].items()})
    auth_c = w.space.c["Authorizations"]
    fn = auth_c.functions.grantBySignature(terms.as_tuple(), nonce, offer_body["deadline"],
                                           bytes.fromhex(offer_body["signature"][2:]))
    assert auth_c.functions.nonces(provider.address, nonce >> 64).call() == nonce  # passes the gateway's check …
    w.space.send(provider.account, auth_c.functions.cancelOffer(nonce))  # … then the holder cancels it
    payer = dev_account(7)
    budget = RelayBudget()
    relay = Relay(w.w3, Relayer(payer, budget))
    before = w.w3.eth.get_transaction_count(payer.address)
    with pytest.raises(Conflict) as refused:
        relay.send_as_relayer(fn, provider.address)
    assert refused.value.code == "invalid-account-nonce" and "InvalidAccountNonce" in refused.value.detail
    assert w.w3.eth.get_transaction_count(payer.address) == before and not budget._live(provider.address, 0)
    r = w.client.post("/grants", json=offer_body, headers=auth(w.client, provider))
    assert r.status_code == 409 and r.json()["error"] == "offer-cancelled", r.text


def test_relay_budget_per_holder(world: World):
    """(c) Each holder gets so many relayed offers and so much gas per window; then a 429 with
    Retry-After, while other holders still relay; the window slides."""
    from tds.gateway.relay import RelayBudget, Relayer

    w = world
    clock = Clock()
    payer = dev_account(2)
    app = create_app(w.settings, store=w.store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")),
                     guard_reads=False, relayer=Relayer(payer, RelayBudget(max_offers=2, window=600, clock=clock)),
                     rate_limit=RateLimit(per_second=1000, burst=1000))
    c = TestClient(app)
    provider, stranger = w.ids["provider"], w.ids["stranger"]
    theirs = _new_asset(w, "stranger")
    gas = []
    for tag in ("b1", "b2"):
        r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, tag)),
                   headers=auth(c, provider))
        assert r.status_code == 201 and r.json()["paidBy"] == payer.address, r.text
        gas.append(r.json()["gasUsed"])
    sent = w.w3.eth.get_transaction_count(payer.address)
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "b3")),
               headers=auth(c, provider))
    assert r.status_code == 429 and r.json()["error"] == "relay-budget-offers", r.text
    assert r.headers["retry-after"] == "600" and set(r.json()) == {"error", "detail"}
    assert w.w3.eth.get_transaction_count(payer.address) == sent
    r = c.post("/grants", json=_offer_for(w, theirs, w.ids["consumer"].address, _salted(w, "s1"), signer="stranger"),
               headers=auth(c, stranger))
    assert r.status_code == 201, r.text  # another holder's budget is its own
    clock.t += 601
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "b4")),
               headers=auth(c, provider))
    assert r.status_code == 201, r.text

    # gas: room for one offer, not two
    app = create_app(w.settings, store=w.store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")),
                     guard_reads=False, rate_limit=RateLimit(per_second=1000, burst=1000),
                     relayer=Relayer(payer, RelayBudget(max_gas=int(max(gas) * 1.5), window=600, clock=clock)))
    c = TestClient(app)
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "g1")),
               headers=auth(c, provider))
    assert r.status_code == 201, r.text
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "g2")),
               headers=auth(c, provider))
    assert r.status_code == 429 and r.json()["error"] == "relay-budget-gas", r.text
    assert int(r.headers["retry-after"]) == 600
