"""The auditor's explorer over HTTP (TestClient) on the audited lifecycle: human units, links on
every page, search routing, clear 404s, exports (CSV rows = JSON rows, the hash recomputes),
failed transactions decoded by name, and the explorer of a gateway without an event index."""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any, ClassVar

import pytest
from eth_utils import keccak
from fastapi.testclient import TestClient

from audit.index import EventIndex
from chain.accounts import dev_account
from chain.tx import Sender
from tds.gateway import create_app
from tds.gateway.explorer import export as ex
from tds.gateway.explorer import html as h
from tds.gateway.explorer.units import (
    operations_text,
    reason_text,
    role_name,
    short,
    wei_text,
)
from tds.gateway.limits import RateLimit
from tests.support.lifecycle import did_for, shared_lifecycle
from tests.tds.explorer_world import ExplorerWorld, with_failed_tx


@pytest.fixture(scope="module")
def world(request, tmp_path_factory) -> Iterator[ExplorerWorld]:
    yield from with_failed_tx(shared_lifecycle(request, tmp_path_factory))


@pytest.fixture(scope="module")
def idx(world: ExplorerWorld, tmp_path_factory) -> EventIndex:
    lc = world.lc
    index = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path_factory.mktemp('explorer') / 'i.sqlite'}")
    index.catch_up()
    return index


@pytest.fixture(scope="module")
def client(world: ExplorerWorld, idx: EventIndex) -> TestClient:
    lc = world.lc
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    return TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch, index=idx,
                                 rate_limit=RateLimit(per_second=1000, burst=1000)), follow_redirects=False)


class Visible(HTMLParser):
    """The page's text outside links, code, buttons and times (where a full value may appear)."""

    SKIP: ClassVar[set[str]] = {"a", "code", "button", "pre", "time", "script", "style", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.text = 0, []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.depth += tag in self.SKIP

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag in self.SKIP

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.text.append(data)


def unlinked(page: str) -> list[str]:
    """Full addresses or 32-byte hashes shown as bare text (each should be a link or code)."""
    p = Visible()
    p.feed(page)
    return re.findall(r"0x[0-9a-fA-F]{40,64}", " ".join(p.text))


def test_units_and_escaping_are_pure():
    assert wei_text(10**15) == "0.001 ETH" and wei_text(0) == "0 ETH"
    assert wei_text(1_250_000, 6, "CRD") == "1.25 CRD" and wei_text(None) == "—"
    assert short("0x" + "ab" * 20) == "0xabab…abab"
    assert role_name("0x" + keccak(text="PROVIDER").hex()) == "PROVIDER"
    assert operations_text(6) == "OPE_RANGE+HOM_AGG" and operations_text(0) == "none"
    assert reason_text("job", 17) == "17 (grant frozen)" and reason_text("freeze", 0xA001) == f"{0xA001} (burst)"
    bad = "<script>alert(1)</script>"
    assert "<script>" not in h.value("name", bad) and "&lt;script&gt;" in h.value("name", bad)
    assert "<script>" not in h.did_link("did:x:" + bad) and "<script>" not in h.address("0x" + "1" * 40, name=bad)


def test_landing_shows_totals_catalog_and_latest(client: TestClient, world: ExplorerWorld):
    r = client.get("/explorer")
    assert r.status_code == 200, r.text
    page = r.text
    for total in ("assets", "grants", "jobs", "paid", "frozen", "alerts"):
        assert f"data-total='{total}'" in page
    assert "0.002 ETH" in page  # two completed jobs paid at 0.001 ETH each (the refund is not a payment)
    for asset in (world.lc.asset, world.lc.other_asset):
        assert f'href="/explorer/asset/{asset}"' in page
    assert "confidential" in page or "sensitive" in page
    assert "/explorer/static/explorer.css" in page and "http" not in page.split("<body")[0].replace("http-equiv", "")
    assert not unlinked(page)


@pytest.mark.parametrize("kind", ["asset", "grant", "job", "job-bare", "tx", "block", "address", "did", "batch",
                                  "hash-anchor", "workflow"])
def test_search_lands_on_the_right_page(client: TestClient, world: ExplorerWorld, kind: str):
    lc = world.lc
    reg = lc.c["AssetRegistry"].events.AssetRegistered().get_logs(from_block=0)[0]
    tx = reg["transactionHash"].to_0x_hex()
    anchored = lc.c["Evidence"].events.BatchAnchored().get_logs(from_block=0)[0]
    query, want = {
        "asset": (f"asset {lc.asset}", f"/explorer/asset/{lc.asset}"),
        "grant": (f"grant:{lc.grant}", f"/explorer/grant/{lc.grant}"),
        "job": (f"job {lc.job_ok}", f"/explorer/job/{lc.job_ok}"),
        "job-bare": (str(lc.job_failed), f"/explorer/job/{lc.job_failed}"),
        "tx": (tx.upper().replace("0X", "0x"), f"/explorer/tx/{tx}"),
        "block": (f"#{reg['blockNumber']}", f"/explorer/block/{reg['blockNumber']}"),
        "address": (lc.addr["provider"].lower(), f"/explorer/address/{lc.addr['provider']}"),
        "did": (did_for("consumer"), f"/explorer/did/{did_for('consumer')}"),
        "batch": (f"batch {anchored['args']['batchId']}", f"/explorer/batch/{anchored['args']['batchId']}"),
        "hash-anchor": ("0x" + anchored["args"]["root"].hex(), f"/explorer/batch/{anchored['args']['batchId']}"),
        "workflow": (f"workflow {world.workflow}", f"/explorer/workflow/jobs/{world.workflow}"),
    }[kind]
    r = client.get("/explorer/search", params={"q": query})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == want
    landed = client.get(want, follow_redirects=True)
    assert landed.status_code == 200, landed.text


def test_an_ambiguous_number_offers_every_match_and_unknown_ids_answer_404(client: TestClient, world: ExplorerWorld):
    r = client.get("/explorer/search", params={"q": "1"})
    assert r.status_code == 200
    for href in ("/explorer/asset/1", "/explorer/grant/1", "/explorer/block/1"):
        assert f'href="{href}"' in r.text
    for url, what in (("/explorer/asset/999", "asset 999"), ("/explorer/grant/999", "grant 999"),
                      ("/explorer/job/5", "job 5"), ("/explorer/batch/77", "log batch 77"),
                      ("/explorer/tx/0x" + "00" * 32, "transaction 0x" + "00" * 32),
                      ("/explorer/block/99999999", "block 99999999"), ("/explorer/workflow/collaboration/3",
                                                                        "collaboration 3"),
                      ("/explorer/search?q=did:key:nobody", "no account is bound to did:key:nobody"),
                      ("/explorer/search?q=hello", "is not an asset")):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "Not found:" in r.text and h.esc(what) in r.text, (url, r.text[:500])


def fresh(world: ExplorerWorld, idx: EventIndex) -> TestClient:
    """A new gateway over the same index (nothing verified or cached yet)."""
    lc = world.lc
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    return TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch, index=idx,
                                 rate_limit=RateLimit(per_second=1000, burst=1000)), follow_redirects=False)


def test_asset_page_links_every_entity_and_verifies_in_place(world: ExplorerWorld, idx: EventIndex):
    lc = world.lc
    client = fresh(world, idx)
    first = client.get(f"/explorer/asset/{lc.asset}").text  # from the index at once: verdicts come after
    assert f'data-src="/explorer/verification?asset={lc.asset}&amp;format=fragment"' in first
    assert "data-step" not in first and 'href="/explorer/verification?asset=' in first  # a link without script
    fragment = client.get("/explorer/verification", params={"asset": lc.asset, "format": "fragment"})
    assert fragment.status_code == 200 and "PASS:" in fragment.text and 'data-ref="job:' in fragment.text
    page = client.get(f"/explorer/asset/{lc.asset}").text  # computed at this indexed block: shown in place
    assert "verdicts-slot" not in page and '<span class="badge pass">signature pass</span>' in page
    for href in (f"/explorer/grant/{lc.grant}", f"/explorer/grant/{lc.signed_grant}", f"/explorer/job/{lc.job_ok}",
                 f"/explorer/job/{lc.job_failed}", f"/explorer/address/{lc.addr['provider']}", "/explorer/batch/",
                 "/explorer/tx/0x", "/explorer/block/", "/explorer/did/did:"):
        assert f'href="{href}' in page, href
    assert f'href="/explorer/job/{lc.job_ok - (lc.job_ok & 0xFFFFFFFF) + 99}"' not in page
    assert "0.001 ETH" in page and str(10**15) not in re.sub(r'title="[^"]*"', "", page)
    assert "HOM_AGG" in page and "17 (grant frozen)" not in page
    assert "data-step='signature'" in page.replace('"', "'") and "what was compared" in page
    assert "PASS:" in page
    assert not unlinked(page)
    grant = client.get(f"/explorer/grant/{lc.grant}").text
    assert f'href="/explorer/asset/{lc.asset}"' in grant and f'href="/explorer/job/{lc.job_ok}"' in grant
    assert "regulator" in grant and "0.001 ETH" in grant and not unlinked(grant)
    job = client.get(f"/explorer/job/{lc.job_failed}").text
    assert "7 (" in job and f'href="/explorer/grant/{lc.grant}"' in job and "refund" in job and not unlinked(job)


def test_transactions_decode_calls_events_and_custom_errors(client: TestClient, world: ExplorerWorld):
    lc = world.lc
    failed = client.get(f"/explorer/tx/{world.failed_tx}").text
    error = re.search(r'id="error-name">([^<]*)<', failed)
    assert error and re.match(r"^[A-Z][A-Za-z]+\(", error.group(1)), failed[:3000]
    assert "Jobs.requestJob" in failed and "failed" in failed
    done = lc.c["Jobs"].events.JobCompleted().get_logs(from_block=0)[0]["transactionHash"].to_0x_hex()
    page = client.get(f"/explorer/tx/{done}").text
    assert "Jobs.completeJob" in page and "JobCompleted" in page and "Credited" in page
    assert "Call tree" in page and ("Jobs" in page.split("Call tree")[1] or "does not offer" in page)
    assert not unlinked(page)
    block = client.get(f"/explorer/block/{lc.w3.eth.get_transaction(done)['blockNumber']}").text
    assert f'href="/explorer/tx/{done}"' in block and "completeJob" in block


def test_participant_and_contract_pages(client: TestClient, world: ExplorerWorld):
    lc = world.lc
    page = client.get(f"/explorer/address/{lc.addr['provider']}").text
    assert "PROVIDER" in page and f'href="/explorer/asset/{lc.asset}"' in page and "withdraw" in page
    assert did_for("provider") in page and not unlinked(page)
    jobs = lc.c["Jobs"].address
    contract = client.get(f"/explorer/address/{jobs}").text
    assert 'href="/explorer/contract/Jobs"' in contract
    src = client.get("/explorer/contract/Jobs").text
    path = re.search(r'href="(/explorer/contract/Jobs/source\?path=contracts/jobs/Jobs\.sol)"', src).group(1)
    text = client.get(path.replace("&amp;", "&")).text
    assert "contract Jobs" in text
    assert client.get("/explorer/contract/Jobs/source", params={"path": "/etc/passwd"}).status_code == 404
    verified = client.get("/explorer/contract/Evidence/verify").text  # recompiles one contract (~5 s)
    assert '<span class="badge pass">full</span>' in verified and "recompiled from the published" in verified
    assert '<span class="badge pass">full</span>' in client.get("/explorer/contract/Evidence").text


def test_exports_csv_equals_json_and_the_hash_recomputes(client: TestClient, world: ExplorerWorld):
    lc = world.lc
    doc = client.get("/explorer/export", params={"asset": lc.asset, "format": "json"}).json()
    trail = client.get(f"/assets/{lc.asset}/trail").json()["trail"]
    assert [r["id"] for r in doc["rows"]] == [e["id"] for e in trail]
    assert doc["blocks"]["from"] == trail[0]["block"] and doc["blocks"]["to"] == trail[-1]["block"]
    assert doc["verification"]["ok"] is True and doc["verification"]["verdicts"]
    assert doc["hash"] == "0x" + keccak(ex.canonical(doc)).hex()
    r = client.get("/explorer/export", params={"asset": lc.asset, "format": "csv"})
    assert r.headers["x-tds-export-hash"] == doc["hash"]  # the same trail at the same block: the same hash
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows == [{k: "" if v is None else str(v) for k, v in row.items()} for row in doc["rows"]]
    report = client.get("/explorer/export", params={"asset": lc.asset, "format": "html"}).text
    assert report.count("<tr") >= len(doc["rows"]) + 1 and "PASS" in report
    mine = client.get("/explorer/export", params={"participant": did_for("consumer"), "format": "json"}).json()
    assert mine["rows"] and all(lc.addr["consumer"] in (r["actor"] + r["object"] + r["detail"])
                                or r["action"] in ("credit",) for r in mine["rows"])
    everything = client.get("/explorer/export", params={"from": "0", "format": "json"}).json()
    assert len(everything["rows"]) > len(doc["rows"]) and everything["scope"]["kind"] == "range"


def test_the_auditor_page_still_answers_and_a_gateway_without_index_explores(world: ExplorerWorld, client: TestClient):
    lc = world.lc
    assert client.get("/auditor").status_code == 200
    settings = replace(lc.settings, rpc_url=lc.w3.provider.endpoint_uri)
    bare = TestClient(create_app(settings, logs_dir=lc.logs_dir, fetch=lc.fetch))
    r = bare.get(f"/explorer/asset/{lc.asset}")
    assert r.status_code == 200 and f'href="/explorer/grant/{lc.grant}"' in r.text


def test_the_workflow_page_and_an_anchored_export_hash(client: TestClient, world: ExplorerWorld, idx: EventIndex):
    lc = world.lc
    page = client.get(f"/explorer/workflow/jobs/{world.workflow}").text
    assert "running" in page and "0.002 ETH" in page and f'href="/explorer/grant/{lc.other_job >> 32}"' in page
    assert 'href="/explorer/job/' in page and not unlinked(page)
    doc = client.get("/explorer/export", params={"asset": lc.asset, "format": "json"}).json()
    regulator = Sender(lc.w3, dev_account(1))
    anchor = lc.c["Evidence"].functions.anchorHash(bytes.fromhex(doc["hash"][2:]), keccak(text=ex.ANCHOR_KIND))
    r = regulator.send(anchor)
    idx.catch_up()
    found = client.get("/explorer/search", params={"q": doc["hash"]})
    assert found.status_code == 303 and found.headers["location"] == f"/explorer/tx/{r['transactionHash'].to_0x_hex()}"


def test_credits_amounts_use_the_tokens_own_decimals_and_symbol(world: ExplorerWorld, idx: EventIndex):
    from types import SimpleNamespace

    from audit.index_entities import EntityReads
    from tds.gateway.explorer.data import ExplorerData

    data = ExplorerData(None, SimpleNamespace(index=idx, reads=EntityReads(idx.w3, idx.deployment, idx.engine)),
                        None, None)
    credits = world.lc.c["Credits"].functions
    decimals, symbol = credits.decimals().call(), credits.symbol().call()
    assert data.token(world.lc.c["Credits"].address) == (decimals, symbol)
    assert data.amount(15 * 10 ** (decimals - 1), world.lc.c["Credits"].address) == f"1.5 {symbol}"
    assert data.amount(10**15, None) == "0.001 ETH"


def test_a_node_without_trace_apis_gets_a_note_and_the_error_still_decodes(world: ExplorerWorld, idx: EventIndex):
    """Without debug_* / ots_* (e.g. the ethereumjs client) the page says so, and a failed
    transaction's error comes from replaying it with eth_call on the state before its block."""
    from types import SimpleNamespace

    from audit.index_entities import EntityReads
    from tds.gateway.explorer.chainview import transaction

    real = EntityReads(idx.w3, idx.deployment, idx.engine).base

    class NoTraces:
        def make_request(self, method: str, params: Any) -> Any:
            if method.startswith(("debug_", "ots_")):
                return {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}}
            return real.w3.provider.make_request(method, params)

    base = SimpleNamespace(w3=SimpleNamespace(eth=real.w3.eth, provider=NoTraces()), contracts=real.contracts,
                           names_by_address=real.names_by_address, decoder=real.decoder)
    t = transaction(base, world.failed_tx)
    assert t is not None and t["status"] == "failed" and not t["calls"] and not t["internal"]
    assert len(t["notes"]) == 2 and all("Method not found" in n for n in t["notes"])
    assert t["error"]["decoded"].startswith("GrantNotActive(grantId=")


def test_verification_answers_json_for_an_asset_a_job_and_a_batch(client: TestClient, world: ExplorerWorld):
    lc = world.lc
    doc = client.get("/explorer/verification", params={"asset": lc.asset}).json()
    assert doc["ok"] is True and doc["scope"] == {"kind": "asset", "id": lc.asset} and doc["indexedBlock"]
    steps = {v["step"] for v in doc["verdicts"]}
    assert {"signature", "payment", "batch-root", "batch-inclusion"} <= steps
    from audit.verify import verify_all  # the same verdicts as from the chain alone (the index is caught up)

    direct = verify_all(lc.w3, lc.deployment, asset=lc.asset, logs_dir=lc.logs_dir, fetch=lc.fetch)
    assert [(v["step"], v["subject"], v["status"], v["detail"]) for v in doc["verdicts"]] == [
        (v["step"], v["subject"], v["status"], v["detail"]) for v in direct]
    job = client.get("/explorer/verification", params={"job": lc.job_ok}).json()
    assert job["verdicts"] and all(v["refs"].get("job") == lc.job_ok for v in job["verdicts"])
    batch = lc.c["Evidence"].events.BatchAnchored().get_logs(from_block=0)[0]["args"]["batchId"]
    b = client.get("/explorer/verification", params={"batch": batch}).json()
    assert [v["status"] for v in b["verdicts"] if v["step"] == "batch-inclusion"] == ["pass"]
    page = client.get(f"/explorer/batch/{batch}").text  # computed: the batch page shows it in place
    assert "data-step=\"batch-root\"" in page and "verdicts-slot" not in page
    two = client.get("/explorer/verification", params={"asset": lc.asset, "job": lc.job_ok})
    assert two.status_code == 400 and two.json()["error"] == "one-scope"
    assert client.get("/explorer/verification", params={"asset": 999}).status_code == 404
    assert client.get("/explorer/verification", params={"batch": 999, "format": "html"}).status_code == 404


def test_long_tables_page_and_keep_the_other_tables_where_they_were(client: TestClient, world: ExplorerWorld,
                                                                    monkeypatch: pytest.MonkeyPatch):
    from tds.gateway.explorer import pages, paging

    lc = world.lc
    whole = client.get("/explorer/export", params={"asset": lc.asset, "format": "json"}).json()["rows"]
    monkeypatch.setattr(paging, "PAGE_ROWS", 4)
    page = client.get(f"/explorer/asset/{lc.asset}", params={"trail": 2, "jobs": 1}).text
    ids = re.findall(r'data-id="([^"]+)"', page.split('id="trail"')[1])
    assert ids == [r["id"] for r in whole[4:8]]
    assert f'href="/explorer/asset/{lc.asset}?jobs=1&amp;trail=3#trail" rel="next"' in page  # jobs kept
    assert f'href="/explorer/asset/{lc.asset}?jobs=1#trail" rel="first"' in page
    assert f"rows 5–8 of {len(whole)}" in page
    beyond = client.get(f"/explorer/asset/{lc.asset}", params={"trail": 999}).text  # the last page
    assert re.findall(r'data-id="([^"]+)"', beyond.split('id="trail"')[1])[-1] == whole[-1]["id"]
    monkeypatch.setattr(pages, "ACTIVITY_ROWS", 4)
    log = client.get("/explorer/activity").text
    assert "(newest first)" in log and 'href="/explorer/activity?page=2#log" rel="next"' in log


def test_a_long_export_comes_in_parts_pinned_at_one_block_with_a_manifest(client: TestClient, world: ExplorerWorld):
    lc = world.lc
    whole = client.get("/explorer/export", params={"asset": lc.asset, "format": "json"})
    at = int(whole.headers["x-tds-export-at"])
    rows, n, parts = [], 1, []
    while True:
        r = client.get("/explorer/export", params={"asset": lc.asset, "format": "json", "rows": 5, "part": n,
                                                    "at": at})
        doc = r.json()
        assert doc["hash"] == "0x" + keccak(ex.canonical(doc)).hex() == r.headers["x-tds-export-hash"]
        assert r.headers["x-tds-export-blocks"] == f"{doc['blocks']['from']}-{doc['blocks']['to']}"
        assert doc["blocks"]["covered_to"] == at and len(doc["rows"]) <= 5 and doc["part"]["number"] == n
        rows += doc["rows"]
        parts.append(doc)
        if doc["part"]["last"]:
            assert "rel=\"next\"" not in r.headers.get("link", "")
            break
        assert f"part={n + 1}" in r.headers["link"] and "rel=\"next\"" in r.headers["link"]
        n += 1
    assert n > 1 and rows == whole.json()["rows"]
    manifest = client.get("/explorer/export", params={"asset": lc.asset, "format": "manifest", "rows": 5,
                                                      "at": at}).json()
    assert [p["hash"] for p in manifest["parts"]] == [p["hash"] for p in parts]
    assert manifest["hash"] == "0x" + keccak(ex.canonical(manifest)).hex() and manifest["rows"] == len(rows)
    csv_part = client.get("/explorer/export", params={"asset": lc.asset, "format": "csv", "rows": 5, "part": 2,
                                                      "at": at})
    assert list(csv.DictReader(io.StringIO(csv_part.text))) == [
        {k: "" if v is None else str(v) for k, v in row.items()} for row in parts[1]["rows"]]
    report = client.get("/explorer/export", params={"asset": lc.asset, "format": "html", "rows": 5, "part": 2,
                                                    "at": at}).text
    assert "next part →" in report and "← previous part" in report and parts[1]["hash"] in report
    beyond = client.get("/explorer/export", params={"asset": lc.asset, "format": "json", "rows": 5, "part": n + 1,
                                                    "at": at})
    assert beyond.status_code == 400 and beyond.json()["error"] == "no-such-part"
    early = rows[len(rows) // 2]["block"]  # pinned at an earlier block: the trail as it stood then
    then = client.get("/explorer/export", params={"asset": lc.asset, "format": "json", "at": early}).json()
    assert then["rows"] == [r for r in rows if r["block"] <= early] and then["blocks"]["covered_to"] == early
    future = client.get("/explorer/export", params={"asset": lc.asset, "format": "json", "at": at + 10**6})
    assert future.status_code == 400 and future.json()["error"] == "beyond-index"
    mine = client.get("/explorer/export", params={"participant": lc.addr["consumer"], "format": "json", "rows": 3})
    assert len(mine.json()["rows"]) == 3 and 'rel="next"' in mine.headers["link"]
    unknown = client.get("/explorer/export", params={"asset": 999, "format": "json"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "not-found"
    bad = client.get("/explorer/export", params={"participant": "nobody", "format": "json"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid-participant"


def test_the_json_routes_are_described_in_openapi_and_search_answers_json(client: TestClient, world: ExplorerWorld):
    api = client.get("/openapi.json").json()
    for path in ("/explorer/search", "/explorer/export", "/explorer/verification"):
        op = api["paths"][path]["get"]  # held to the gateway's rules (tests/tds/test_gateway_writes.py)
        assert op["summary"] and op["tags"] == ["explorer"] and op["description"], path
        assert all(r.get("description") for r in op["responses"].values()), path
        errors = [code for code in op["responses"] if code.startswith(("4", "5"))]
        assert "404" in errors and all(op["responses"][c]["content"]["application/json"]["schema"]["$ref"]
                                       .endswith("/ErrorBody") for c in errors), path
    assert "text/csv" in api["paths"]["/explorer/export"]["get"]["responses"]["200"]["content"]
    assert "ExportDocument" in api["components"]["schemas"] and "VerificationAnswer" in api["components"]["schemas"]
    assert not [p for p in api["paths"] if p.startswith("/explorer/asset") or p == "/explorer"]  # pages stay out
    found = client.get("/explorer/search", params={"q": "1", "format": "json"}).json()
    assert {"kind": "asset", "id": "1", "url": "/explorer/asset/1"} in found["matches"]
    none = client.get("/explorer/search", params={"q": "hello", "format": "json"})
    assert none.status_code == 404 and none.json()["error"] == "not-found"


def test_a_governance_proposal_and_its_calls_are_decoded(client: TestClient, world: ExplorerWorld, tmp_path):
    """Governance contracts outside the deployment file are decoded by selector and topic (their
    compiled ABIs, or the metadata published beside a deployment); a proposal's calls one by one."""
    from chain.compiler import compile_project
    from chain.deploy import deploy_artifact
    from tds.gateway.explorer.abis import PublishedAbis

    lc, founder = world.lc, dev_account(0)
    arts = compile_project(lc.settings)  # already compiled for the lifecycle: read back
    s = Sender(lc.w3, founder)
    membership = deploy_artifact(s, arts["Membership"], founder.address)
    timelock = deploy_artifact(s, arts["TdsTimelock"], 3600, [], ["0x" + "00" * 20], founder.address)
    governor = deploy_artifact(s, arts["TdsGovernor"], membership.address, timelock.address, 1, 50, 50)
    s.send(membership.functions.admit(founder.address))
    lc.w3.provider.make_request("evm_mine", [])
    evidence = lc.c["Evidence"]
    calls = [membership.encode_abi("admit", args=[lc.addr["consumer"]]),
             evidence.encode_abi("anchorHash", args=[keccak(text="minutes"), keccak(text="MINUTES")])]
    r = s.send(governor.functions.propose([membership.address, evidence.address], [0, 0], calls, "Admit the consumer"))
    page = client.get(f"/explorer/tx/{r['transactionHash'].to_0x_hex()}").text
    assert "TdsGovernor.propose" in page and "decoded by selector" in page and "ProposalCreated" in page
    proposal = page.split('id="proposal"')[1]
    assert "<strong>admit</strong>" in proposal and f'href="/explorer/address/{lc.addr["consumer"]}"' in proposal
    assert "<strong>anchorHash</strong>" in proposal and ">Evidence<" in proposal and not unlinked(page)
    folder = tmp_path / "deployment.json.sources"  # what chain.sources publishes: solc metadata with the ABI
    folder.mkdir()
    (folder / "TdsGovernor.metadata.json").write_text(arts["TdsGovernor"]["metadata"]
                                                      if isinstance(arts["TdsGovernor"]["metadata"], str)
                                                      else json.dumps(arts["TdsGovernor"]["metadata"]))
    published = PublishedAbis.load(folder, None)
    tx = lc.w3.eth.get_transaction(r["transactionHash"])
    assert published.names == ["TdsGovernor"] and published.decode_call(bytes(tx["input"]))["function"] == "propose"
    assert PublishedAbis.load(None, None).decode_call(bytes(tx["input"])) is None
