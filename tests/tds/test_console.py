"""The participant console over HTTP: the page and its scripts are served by the gateway with
nothing from another origin, the config names this deployment, and the two wallet-proven
endpoints (sealed parameters, sealed answers) check the proof, the simulation and the consumer."""
from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak
from fastapi.testclient import TestClient

from chain.eip712 import GrantTerms
from chain.params import canonical_params, params_cid, params_hash, seal_params
from offchain.errors import BlockNotFound
from tds.gateway.console import STATIC
from tds.gateway.console.ledger import ConsoleLedger
from tds.gateway.console.proof import HEADER, ProofRefused, check_proof, proof_message
from tests.tds.console_world import ConsoleWorld, console_world

HOM_AGG = 4
PRICE = 10**15
ZERO = "0x" + "00" * 20
# the only absolute URLs the bundled library carries: text of its error messages, never loaded
KNOWN_TEXT_URLS = {"https://github.com/ethers-io/ethers.js/issues/4537"}


@pytest.fixture(scope="module")
def cw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    with console_world(tmp_path_factory.mktemp("console-http")) as w:
        yield w


@pytest.fixture(scope="module")
def client(cw: ConsoleWorld) -> TestClient:
    return TestClient(cw.app)


def proof(who: Any, action: str, subject: str, chain_id: int, expires: int | None = None,
          nonce: str | TestClient | ConsoleLedger = "") -> str:
    """A wallet proof signed by ``who``; ``nonce`` is the nonce itself or where to get a fresh one."""
    if isinstance(nonce, TestClient):
        nonce = nonce.post("/console/nonce").json()["nonce"]
    elif isinstance(nonce, ConsoleLedger):
        nonce = nonce.issue_nonce("test")[0]
    message = proof_message(action, subject, chain_id, nonce, expires or int(time.time()) + 120)
    sig = Account.sign_message(encode_defunct(text=message), who.key).signature
    return base64.urlsafe_b64encode(json.dumps({"message": message, "signature": "0x" + bytes(sig).hex()}).encode()
                                    ).decode().rstrip("=")


def test_page_and_scripts_are_served_offline(client: TestClient):
    page = client.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith(("/console/static/", "#", "data:")) for s in sources)
    for name, media in STATIC.items():
        r = client.get(f"/console/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media), name
        urls = set(re.findall(r"https?://[^\s\"'`)]+", r.text))
        assert urls <= KNOWN_TEXT_URLS, (name, urls - KNOWN_TEXT_URLS)
        if name != "vendor.js":  # the bundle is one file: it imports nothing
            imports = re.findall(r'^\s*(?:import|export)\b[^;]*?from\s*["\']([^"\']+)["\']', r.text, re.MULTILINE)
            assert all(i.startswith("./") for i in imports), (name, imports)
        assert "import(" not in r.text and "importScripts" not in r.text, name
    assert client.get("/console/static/../app.py").status_code == 404
    assert client.get("/console/static/console_wallet.js").json()["error"] == "unknown-file"


def test_config_names_this_deployment(client: TestClient, cw: ConsoleWorld):
    cfg = client.get("/console/config").json()
    assert cfg["chainId"] == cw.w3.eth.chain_id and cfg["chainIdHex"] == hex(cw.w3.eth.chain_id)
    assert cfg["proofHeader"] == HEADER
    for name in ("AssetRegistry", "Authorizations", "Jobs", "IdentityRegistry", "QualityRatings"):
        assert cfg["contracts"][name]["address"] == cw.space.c[name].address
        fns = {e["name"] for e in cfg["contracts"][name]["abi"] if e["type"] == "function"}
        assert fns
    assert {"applyFor", "grantBySignature", "approve", "close"} <= {
        e["name"] for e in cfg["contracts"]["Authorizations"]["abi"] if e["type"] == "function"}
    assert cfg["roles"]["CONSUMER"] == "0x" + keccak(text="CONSUMER").hex()
    assert cfg["operations"]["4"] == "HOM_AGG"


def test_proof_checks(cw: ConsoleWorld, tmp_path):
    chain = cw.w3.eth.chain_id
    me = cw.ids["consumer"].account
    book = ConsoleLedger(tmp_path / "ledger.sqlite")
    ok = check_proof(proof(me, "read-result", "job 7", chain, nonce=book), "read-result", "job 7", chain, book)
    assert ok.signer == me.address
    cases = [(None, "wallet-proof-missing"), ("%%%", "wallet-proof-malformed"),
             (proof(me, "read-result", "job 8", chain, nonce=book), "wallet-proof-mismatch"),
             (proof(me, "read-result", "job 7", chain + 1, nonce=book), "wallet-proof-wrong-chain"),
             (proof(me, "read-result", "job 7", chain, int(time.time()) - 5, nonce=book), "wallet-proof-expired"),
             (proof(me, "read-result", "job 7", chain, int(time.time()) + 3600, nonce=book), "wallet-proof-too-long"),
             (proof(me, "read-result", "job 7", chain, nonce="0f" * 16), "wallet-proof-replayed")]  # never issued
    for value, code in cases:
        with pytest.raises(ProofRefused) as err:
            check_proof(value, "read-result", "job 7", chain, book)
        assert err.value.code == code and err.value.status == 401


def test_a_wallet_proof_works_once_even_across_a_restart(cw: ConsoleWorld, tmp_path):
    """Each proof names a nonce the gateway issued; the first use consumes it: a replay (the same
    header again, or after the gateway restarted on the same ledger file) is refused by name."""
    chain = cw.w3.eth.chain_id
    me = cw.ids["consumer"].account
    book = ConsoleLedger(tmp_path / "ledger.sqlite")
    used = proof(me, "read-result", "job 7", chain, nonce=book)
    waiting = proof(me, "read-result", "job 7", chain, nonce=book)
    assert check_proof(used, "read-result", "job 7", chain, book).signer == me.address
    with pytest.raises(ProofRefused) as err:
        check_proof(used, "read-result", "job 7", chain, book)
    assert err.value.code == "wallet-proof-replayed"
    book.close()
    reopened = ConsoleLedger(tmp_path / "ledger.sqlite")  # a gateway restart: the file is read again
    with pytest.raises(ProofRefused) as err:
        check_proof(used, "read-result", "job 7", chain, reopened)
    assert err.value.code == "wallet-proof-replayed"
    assert check_proof(waiting, "read-result", "job 7", chain, reopened).signer == me.address  # issued, unused
    # a nonce is kept only for its lifetime: an expired one is gone, so its proof is refused too
    old = reopened.issue_nonce(now=time.time() - 3600)[0]
    assert not reopened.consume_nonce(old)
    # and one client address holds a bounded number of unused ones (429 too-many-nonces at the route)
    from tds.gateway.console.ledger import MAX_NONCES_PER_CLIENT

    for _ in range(MAX_NONCES_PER_CLIENT):
        assert isinstance(reopened.issue_nonce("10.0.0.9"), tuple)
    assert reopened.issue_nonce("10.0.0.9") == "client" and isinstance(reopened.issue_nonce("10.0.0.10"), tuple)


def _grant(cw: ConsoleWorld, max_uses: int = 2) -> int:
    auth = cw.space.c["Authorizations"]
    terms = GrantTerms(cw.asset, cw.ids["consumer"].address, keccak(text="http"), HOM_AGG, 0, 0, cw.now() + 86400,
                       max_uses, ZERO, PRICE, ZERO)
    receipt = cw.space.send(cw.ids["provider"].account, auth.functions.grant(terms.as_tuple()))
    return auth.events.GrantIssued().process_receipt(receipt)[0]["args"]["grantId"]


def test_params_are_stored_only_for_a_job_that_simulates(client: TestClient, cw: ConsoleWorld):
    grant = _grant(cw)
    params = json.loads(seal_params({"dataset": "d", "aggregates": [["sum", "x"]]},
                                    [cw.space.key_agreement_key(cw.ids["provider"].address)]))
    digest = params_hash(canonical_params(params))
    body = {"params": params, "grantId": grant, "operation": HOM_AGG, "deadline": cw.now() + 3600, "value": PRICE}
    chain = cw.w3.eth.chain_id
    consumer, stranger = cw.ids["consumer"].account, cw.ids["stranger"].account
    # the stranger is not the grant's consumer: the simulation names the contract error
    r = client.post("/console/params", json=body, headers={HEADER: proof(stranger, "store-params", "0x" + digest.hex(), chain, nonce=client)})
    assert r.status_code == 409 and r.json()["error"] == "not-grant-consumer", r.text
    # a proof for other parameters
    r = client.post("/console/params", json=body, headers={HEADER: proof(consumer, "store-params", "0x" + "00" * 32, chain, nonce=client)})
    assert r.status_code == 401 and r.json()["error"] == "wallet-proof-mismatch"
    # plaintext parameters are refused before anything else
    r = client.post("/console/params", json={**body, "params": {"dataset": "d"}},
                    headers={HEADER: proof(consumer, "store-params", "0x" + digest.hex(), chain, nonce=client)})
    assert r.status_code == 400 and r.json()["error"] == "params-not-sealed"
    with pytest.raises(BlockNotFound):  # nothing was stored
        cw.store.cat(params_cid(digest))
    r = client.post("/console/params", json=body, headers={HEADER: proof(consumer, "store-params", "0x" + digest.hex(), chain, nonce=client)})
    assert r.status_code == 201, r.text
    assert r.json()["paramsCid"] == params_cid(digest) and cw.store.cat(params_cid(digest)) == canonical_params(params)


def test_sealed_answer_for_its_consumer_only(client: TestClient, cw: ConsoleWorld):
    grant = _grant(cw)
    params = json.loads(seal_params({"dataset": "d", "aggregates": [["count", None]]},
                                    [cw.space.key_agreement_key(cw.ids["provider"].address)]))
    digest = params_hash(canonical_params(params))
    cw.store.add_bytes(canonical_params(params), cid_version=1)
    jobs = cw.space.c["Jobs"]
    receipt = cw.space.send(cw.ids["consumer"].account, jobs.functions.requestJob(grant, HOM_AGG, digest, cw.now() + 3600),
                            value=PRICE)
    job = jobs.events.JobRequested().process_receipt(receipt)[0]["args"]["jobId"]
    chain = cw.w3.eth.chain_id
    consumer, stranger = cw.ids["consumer"].account, cw.ids["stranger"].account
    r = client.get(f"/console/jobs/{job}/result", headers={HEADER: proof(consumer, "read-result", f"job {job}", chain, nonce=client)})
    assert r.status_code == 404 and r.json()["error"] == "no-result"
    sealed = cw.complete(job, {"job": job, "answer": 42})
    r = client.get(f"/console/jobs/{job}/result", headers={HEADER: proof(stranger, "read-result", f"job {job}", chain, nonce=client)})
    assert r.status_code == 403 and r.json()["error"] == "not-consumer"
    assert client.get(f"/console/jobs/{job}/result").status_code == 401
    once = {HEADER: proof(consumer, "read-result", f"job {job}", chain, nonce=client)}
    r = client.get(f"/console/jobs/{job}/result", headers=once)
    assert r.status_code == 200 and r.content == sealed
    assert r.headers["x-tds-result-hash"] == "0x" + keccak(sealed).hex()
    r = client.get(f"/console/jobs/{job}/result", headers=once)  # the same proof again: refused by name
    assert r.status_code == 401 and r.json()["error"] == "wallet-proof-replayed"


def _store_params(client: TestClient, cw: ConsoleWorld, grant: int, deadline: int) -> tuple[Any, bytes]:
    params = json.loads(seal_params({"dataset": "d", "aggregates": [["count", None]]},
                                    [cw.space.key_agreement_key(cw.ids["provider"].address)]))
    digest = params_hash(canonical_params(params))
    body = {"params": params, "grantId": grant, "operation": HOM_AGG, "deadline": deadline, "value": PRICE}
    header = proof(cw.ids["consumer"].account, "store-params", "0x" + digest.hex(), cw.w3.eth.chain_id, nonce=client)
    return client.post("/console/params", json=body, headers={HEADER: header}), digest


def test_unused_params_are_swept_and_bounded_per_account(client: TestClient, cw: ConsoleWorld):
    """Blocks no JobRequested names are unpinned once their deadline passed; one a job names is kept;
    an account may have at most MAX_PENDING_PER_ACCOUNT waiting (429 too-many-pending-params)."""
    from tds.gateway.console.ledger import MAX_PENDING_PER_ACCOUNT

    book = cw.ledger
    for p in book.pending():  # what earlier tests left waiting
        book.forget_params(p.cid)
    grant = _grant(cw, max_uses=3)
    r, used = _store_params(client, cw, grant, cw.now() + 3600)
    assert r.status_code == 201
    jobs = cw.space.c["Jobs"]
    cw.space.send(cw.ids["consumer"].account, jobs.functions.requestJob(grant, HOM_AGG, used, cw.now() + 3600),
                  value=PRICE)
    short = []
    for _ in range(MAX_PENDING_PER_ACCOUNT - 1):  # with the used one: the maximum stored
        r, digest = _store_params(client, cw, grant, cw.now() + 120)
        assert r.status_code == 201, r.text
        short.append(params_cid(digest))
    r, _ = _store_params(client, cw, grant, cw.now() + 3600)
    assert r.status_code == 201  # the used block was forgotten by the sweep: room for one more
    r, refused = _store_params(client, cw, grant, cw.now() + 3600)
    assert r.status_code == 429 and r.json()["error"] == "too-many-pending-params", r.text
    with pytest.raises(BlockNotFound):
        cw.store.cat(params_cid(refused))
    cw.w3.provider.make_request("evm_increaseTime", [600])  # the short deadlines pass
    cw.w3.provider.make_request("evm_mine", [])
    r, _ = _store_params(client, cw, grant, cw.now() + 3600)
    assert r.status_code == 201, r.text
    pins = cw.store.blocks.pin_ls()
    assert params_cid(used) in pins and not any(c in pins for c in short)
    assert len(book.pending(cw.ids["consumer"].address)) == 2


def test_quality_report_checked_against_the_chain(client: TestClient, cw: ConsoleWorld):
    report = {"format": "tds-quality/1", "dataset": "salaries", "overall": "0.97", "rows": 120}
    good = cw.reported_asset(report)
    r = client.get(f"/console/assets/{good}/quality")
    assert r.status_code == 200 and r.json() == report, r.text
    assert r.headers["x-tds-quality-hash"] == "0x" + bytes(cw.space.c["AssetRegistry"].functions.assetOf(good).call()[10]).hex()
    forged = cw.reported_asset(report, stored={**report, "overall": "0.99"})
    r = client.get(f"/console/assets/{forged}/quality")
    assert r.status_code == 502 and r.json()["error"] == "quality-report-mismatch", r.text
    r = client.get(f"/console/assets/{cw.asset}/quality")  # its manifest is not in the store
    assert r.status_code == 503 and r.json()["error"] == "quality-report-unavailable", r.text
    assert client.get("/console/assets/999/quality").json()["error"] == "unknown-asset"


def test_collaboration_output_for_its_initiator_only(client: TestClient, cw: ConsoleWorld):
    collab, sealed = cw.collaboration({"mode": "cardinality", "size": 5})
    chain = cw.w3.eth.chain_id
    subject = f"collaboration {collab} step 0"
    url = f"/console/collaborations/{collab}/steps/0/result"
    r = client.get(url, headers={HEADER: proof(cw.ids["stranger"].account, "read-output", subject, chain, nonce=client)})
    assert r.status_code == 403 and r.json()["error"] == "not-initiator"
    r = client.get(url, headers={HEADER: proof(cw.ids["consumer"].account, "read-result", subject, chain, nonce=client)})
    assert r.status_code == 401 and r.json()["error"] == "wallet-proof-mismatch"
    r = client.get(url, headers={HEADER: proof(cw.ids["consumer"].account, "read-output", subject, chain, nonce=client)})
    assert r.status_code == 200 and r.content == sealed and r.headers["x-tds-result-hash"] == "0x" + keccak(sealed).hex()
    r = client.get(f"/console/collaborations/{collab}/steps/1/result", headers={HEADER: proof(
        cw.ids["consumer"].account, "read-output", f"collaboration {collab} step 1", chain, nonce=client)})
    assert r.status_code == 404 and r.json()["error"] == "no-result"


def test_vendor_bundle_is_the_locked_ethers_build(tmp_path):
    """static/vendor.js is exactly what `npm run build:console` makes from node_modules (package-lock.json)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    esbuild = root / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.skip("node_modules absent: run 'npm ci'")
    out = tmp_path / "vendor.js"
    subprocess.run([str(esbuild), "tds/gateway/console/vendor-entry.js", "--bundle", "--format=esm", "--minify",
                    "--legal-comments=eof", "--target=es2022", f"--outfile={out}"], cwd=root, check=True,
                   capture_output=True, timeout=60)
    assert out.read_bytes() == (root / "tds" / "gateway" / "console" / "static" / "vendor.js").read_bytes()


def test_wallet_proven_endpoints_are_rate_limited():
    """Both write-ish endpoints take a token per client address before anything else."""
    from types import SimpleNamespace

    from fastapi import FastAPI

    from tds.gateway.console import console_routes
    from tds.gateway.errors import RateLimited
    from tds.gateway.limits import RateLimit

    def no_chain() -> Any:
        raise LookupError("no chain in this test")

    app = FastAPI()
    app.include_router(console_routes(SimpleNamespace(reader=no_chain), None, None, RateLimit(per_second=0.001, burst=2)))
    c = TestClient(app)
    with pytest.raises(LookupError):
        c.get("/console/jobs/1/result")
    with pytest.raises(LookupError):
        c.post("/console/params", json={"params": {}, "grantId": 1, "operation": 4, "deadline": 1, "value": 0})
    with pytest.raises(RateLimited):
        c.get("/console/jobs/1/result")
