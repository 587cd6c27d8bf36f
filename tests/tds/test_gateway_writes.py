"""The gateway's write side on a real chain: applications and jobs as the caller's own signed
transactions, grant offers relayed (the relayer pays), sealed results to the consumer only, the
audit-log query, DID challenge–response with on-chain binding, rate limits, body limits, JSON
refusals, and no plaintext in any response."""
from __future__ import annotations

import json
from typing import Any

import pytest
from eth_utils import keccak
from fastapi.testclient import TestClient

from chain.cid import parse_cid
from chain.eip712 import job_result_typed_data, sign_typed
from chain.params import (
    canonical_params,
    is_sealed,
    params_cid,
    params_hash,
)
from did.challenge import ChallengeVerifier
from did.envelope import Envelope, open_envelope, seal
from did.guard import ChallengeGuard
from did.sealing import RESULT_PURPOSE
from tds.gateway import create_app
from tds.gateway.limits import RateLimit
from tests.tds.gateway_world import (  # noqa: F401
    DET_EQ,
    HOM_AGG,
    OPE_RANGE,
    PRICE,
    SECRET,
    ZERO,
    Clock,
    World,
    _fresh_nonce,
    apply_fn,
    auth,
    granted,
    offer,
    request_job,
    sealed,
    signed,
    world,
)

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
                "/collaborations/validate", "/explorer/search", "/explorer/export", "/explorer/verification"}
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
