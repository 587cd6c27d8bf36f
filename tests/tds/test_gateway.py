"""The gateway over a real chain: catalog, assets, trails, verdicts, jobs, the auditor page;
JSON 4xx errors for bad input, 503 when the chain is away, an auth extension point."""
from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from audit.events import ChainReader
from audit.trail import build_trail
from tds.gateway import create_app
from tests.support.lifecycle import Lifecycle, did_for, shared_lifecycle


@pytest.fixture
def lc(request, tmp_path_factory) -> Lifecycle:
    return shared_lifecycle(request, tmp_path_factory)


@pytest.fixture
def client(lc: Lifecycle) -> TestClient:
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    return TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch))


def test_catalog_and_asset(client: TestClient, lc: Lifecycle):
    r = client.get("/catalog")
    assert r.status_code == 200
    assert [a["assetId"] for a in r.json()] == [lc.asset, lc.other_asset]
    a = client.get(f"/assets/{lc.asset}").json()
    assert a["state"] == "offline" and a["holder_did"] == did_for("provider2")
    assert a["contentCid"].startswith("0x1220")


def test_trail_and_verify(client: TestClient, lc: Lifecycle):
    trail = client.get(f"/assets/{lc.asset}/trail").json()
    expected = build_trail(ChainReader(lc.w3, lc.deployment), lc.asset)
    assert [e["id"] for e in trail["trail"]] == [e.id for e in expected]
    assert trail["trail"][0]["actor_did"] == did_for("provider")
    rep = client.get("/audit/verify", params={"asset": lc.asset}).json()
    assert rep["ok"] is True
    assert {v["step"] for v in rep["verdicts"]} == {"signature", "release", "result-hash", "payment", "batch-root",
                                                    "batch-inclusion"}
    assert client.get("/audit/verify").json()["ok"] is True


def test_jobs(client: TestClient, lc: Lifecycle):
    job = client.get(f"/jobs/{lc.job_ok}").json()
    assert job["status"] == "completed" and job["result"]["oracle"] == lc.addr["oracle"]
    assert job["amount"] == str(10**15)
    assert client.get(f"/jobs/{lc.job_failed}").json()["status"] == "failed"


@pytest.mark.parametrize("url,status,needle", [
    ("/assets/999", 404, "unknown asset 999"),
    ("/assets/999/trail", 404, "unknown asset 999"),
    ("/audit/verify?asset=999", 404, "unknown asset 999"),
    ("/jobs/7", 404, "unknown job 7"),
    ("/assets/abc", 422, "invalid input"),
    ("/assets/0/trail", 422, "greater than or equal to 1"),
    ("/audit/verify?asset=-1", 422, "invalid input"),
    ("/jobs/1e3", 422, "invalid input"),
])
def test_bad_input_is_a_json_4xx(client: TestClient, url: str, status: int, needle: str):
    r = client.get(url)
    assert r.status_code == status
    body = r.json()
    assert set(body) == {"error", "detail"} and needle in body["detail"]


def test_auditor_page_and_openapi(client: TestClient):
    page = client.get("/auditor")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '"/assets/" + id + "/trail"' in page.text and "/audit/verify?asset=" in page.text
    spec = client.get("/openapi.json").json()
    assert {"/catalog", "/assets/{asset_id}", "/assets/{asset_id}/trail", "/audit/verify", "/jobs/{job_id}",
            "/auditor"} <= set(spec["paths"])
    assert "404" in spec["paths"]["/assets/{asset_id}/trail"]["get"]["responses"]
    assert "VerifyReport" in spec["components"]["schemas"]


def test_chain_unreachable_is_503(lc: Lifecycle):
    settings = replace(lc.settings, rpc_url="http://127.0.0.1:9")
    r = TestClient(create_app(settings)).get("/catalog")
    assert r.status_code == 503 and r.json()["error"] == "chain-unavailable"
    assert "cannot reach the chain" in r.json()["detail"]


def test_guard_extension_point(lc: Lifecycle):
    def guard(request):
        if request.headers.get("authorization") != "DID did:key:zAuditor":
            raise HTTPException(401, "authenticate with a DID challenge-response first")
        return "did:key:zAuditor"

    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    c = TestClient(create_app(settings, guard=guard))
    r = c.get("/catalog")
    assert r.status_code == 401 and "challenge" in r.json()["detail"]
    assert c.get("/catalog", headers={"authorization": "DID did:key:zAuditor"}).status_code == 200
