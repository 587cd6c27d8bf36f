"""The oracle as a real process (``tds oracle run``) against the provider's key service over HTTP:
DID-authenticated, layer keys sealed to the oracle, exactly once through kill -9 and a node
outage, the operation log anchored."""
from __future__ import annotations

import json
import random
import time

import pytest
import requests
from eth_utils import keccak

from did.challenge import RequestBinding
from did.guard import presentation_header as bound_header
from did.sealing import ChainDirectory
from did.identity import Identity
from chain.accounts import dev_account
from oracle.journal import Journal
from oracle.keyservice_client import HttpKeyService, KeyServiceRouter
from chain.ops import HOM_AGG, OPE_RANGE
from oracle.pipeline import JobPipeline, result_cid_text
from oracle.runner import COMPLETED, OracleRunner
from tds.sandbox import PRICE
from tests.support.services import kill9, serve_world

QUERY = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 700]]}


@pytest.fixture
def served(tmp_settings, tmp_path):
    sw = serve_world(tmp_settings, tmp_path)
    yield sw
    sw.close()


def _request(w, n: int, lo: int = 100, hi: int = 700) -> list[int]:
    q = {"dataset": w.sales_id, **QUERY, "where": [["range", "amount", lo, hi]]}
    return [w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, q, w.store, value=PRICE)
            for _ in range(n)]


def _answer(w, job_id: int) -> list:
    ev = w.space.completion(job_id)
    sealed = w.store.cat(result_cid_text(ev["resultCid"]))
    assert keccak(sealed) == ev["resultHash"]
    return w.open(sealed)["answer"]["rows"][0]


def _plain(w, lo=100, hi=700):
    sel = [a for _, _, a in w.sales_rows if lo <= a <= hi]
    return [sum(sel), len(sel)]


def _http_runner(sw, journal, identity=None) -> OracleRunner:
    w = sw.world
    ident = identity or w.identities["oracle"]
    router = KeyServiceRouter(w.space.c["Jobs"], w.space.c["Authorizations"], w.space.c["AssetRegistry"], {},
                              HttpKeyService(sw.key_service.url, ident),
                              directory=ChainDirectory(w.space.c["IdentityRegistry"], w.space.deployment["block"]))
    return OracleRunner(w.space.w3, w.space.c["Jobs"], ident.account, Journal(journal),
                        JobPipeline(w.store, router, ident.address), start_block=w.space.deployment["block"])


def test_http_key_service_round_trip(served, tmp_path):
    w = served.world
    jobs = _request(w, 2)
    runner = _http_runner(served, tmp_path / "j.sqlite")
    runner.run_once()
    assert runner.stats.posted == 2
    assert [_answer(w, j) for j in jobs] == [_plain(w)] * 2
    # the release log names each job once, with the layers released (no key material)
    records = [r for r in w.key_service.oplog.pending().records]
    assert sorted(r.object["job"] for r in records if r.action == "open-result") == sorted(jobs)
    released = [r for r in records if r.action == "key-release"]
    assert released and all("key" not in layer for r in released for layer in r.object["layers"])


def test_key_service_refuses_unauthenticated_and_strangers(served, tmp_path):
    w = served.world
    job = _request(w, 1)[0]
    url = f"{served.key_service.url}/v1/jobs/{job}/prepare"
    body = json.dumps({"query": {"dataset": w.sales_id, **QUERY}}).encode()
    bound = RequestBinding.of("POST", f"/v1/jobs/{job}/prepare", body)

    def presentation_header(who, www):  # every answer is bound to the request it authenticates
        return {"content-type": "application/json", **bound_header(who, www, request=bound)}

    r = requests.post(url, data=body, timeout=10)
    assert r.status_code == 401 and "challenge" in r.json()["error"]
    assert r.headers["WWW-Authenticate"].startswith("TDS-Challenge")
    # a DID the chain does not know
    stranger = Identity.create("stranger", dev_account(7))
    r2 = requests.post(url, data=body, headers=presentation_header(stranger, r.headers["WWW-Authenticate"]), timeout=10)
    assert r2.status_code == 403 and r2.json()["kind"] == "UnknownParticipant"
    # a replayed answer is refused
    hdr = presentation_header(w.identities["oracle"], requests.get(
        f"{served.key_service.url}/v1/challenge", timeout=10).json()["www_authenticate"])
    first = requests.post(url, data=body, headers=hdr, timeout=10)
    assert first.status_code == 409  # the registered oracle, but it has not accepted this job
    assert "not accepted" in first.json()["error"]
    again = requests.post(url, data=body, headers=hdr, timeout=10)
    assert again.status_code == 401 and "Replayed" in again.json()["error"]
    # the consumer is bound but is not a compute provider
    hdr = presentation_header(w.identities["consumer"], requests.get(
        f"{served.key_service.url}/v1/challenge", timeout=10).json()["www_authenticate"])
    r3 = requests.post(url, data=body, headers=hdr, timeout=10)
    assert r3.status_code == 403 and r3.json()["kind"] == "RoleMismatch"
    # malformed input is a 422 with a JSON body, not a 500
    bad = json.dumps({"query": {"dataset": w.sales_id, "aggregates": "sum"}}).encode()
    hdr = bound_header(w.identities["oracle"], requests.get(
        f"{served.key_service.url}/v1/challenge", timeout=10).json()["www_authenticate"],
        request=RequestBinding.of("POST", f"/v1/jobs/{job}/prepare", bad))
    r4 = requests.post(url, data=bad, headers={"content-type": "application/json", **hdr}, timeout=10)
    assert r4.status_code == 422 and "query" in r4.json()["error"]


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _completed(w, jobs) -> int:
    return sum(1 for j in jobs if w.space.job(j)[0][3] == COMPLETED)


def test_kill9_at_random_points_across_100_jobs(served, tmp_path):
    """The daemon is SIGKILLed every 0.3–2 s while 100 jobs arrive; each completes exactly once."""
    w = served.world
    rng = random.Random(1234)
    log = tmp_path / "oracle.log"
    jobs: list[int] = []
    kills = 0
    proc = served.spawn_oracle(log)
    deadline = time.time() + 300
    while len(jobs) < 100 or _completed(w, jobs) < 100:
        assert time.time() < deadline, f"{_completed(w, jobs)}/100 completed; log:\n{log.read_text()[-3000:]}"
        if len(jobs) < 100:
            jobs += _request(w, min(10, 100 - len(jobs)))
        time.sleep(rng.uniform(0.1, 0.8))  # the oracle is part-way through the new jobs
        if kills < 12 and _completed(w, jobs) < len(jobs):
            kill9(proc)
            kills += 1
            proc = served.spawn_oracle(log)
        time.sleep(rng.uniform(0.2, 1.2))
    proc.terminate()
    proc.wait(timeout=30)
    assert kills >= 8
    # exactly once: one completion event per job, one key release per job, no failures
    events = w.space.c["Jobs"].events.JobCompleted().get_logs(from_block=w.space.deployment["block"])
    assert sorted(e["args"]["jobId"] for e in events) == sorted(jobs)
    opened = [r.object["job"] for r in w.key_service.oplog.pending().records if r.action == "open-result"]
    assert sorted(opened) == sorted(jobs)
    assert w.space.c["Jobs"].events.JobFailed().get_logs(from_block=w.space.deployment["block"]) == []
    for j in rng.sample(jobs, 5):
        assert _answer(w, j) == _plain(w)
    # the clean stop anchored the oracle's log: its accept/complete records are on chain
    anchored = w.space.c["Evidence"].events.BatchAnchored().get_logs(
        from_block=w.space.deployment["block"], argument_filters={"producer": w.oracle.address})
    assert anchored and sum(e["args"]["count"] for e in anchored) >= 100


def test_node_outage_of_10_seconds_loses_nothing(served, tmp_path):
    w = served.world
    log = tmp_path / "oracle.log"
    proc = served.spawn_oracle(log, "--verbose")  # logs the outage and the re-check
    jobs = _request(w, 15)
    _wait(lambda: _completed(w, jobs) >= 3, 60, "the first completions")
    served.node.down()
    time.sleep(10)
    served.node.up(port=served.settings.chain_port)
    w.space.sender(w.consumer.account).resync()
    jobs += _request(w, 5)
    try:
        _wait(lambda: _completed(w, jobs) == len(jobs), 60, "all jobs after the outage")
    except AssertionError:
        import os
        import signal
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(2)
        raise AssertionError(log.read_text()[-12000:])
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert _answer(w, jobs[-1]) == _plain(w)


def test_daemon_refuses_to_start_unregistered(served, tmp_path):
    w = served.world
    Identity.create("oracle", dev_account(8)).save(served.settings.home / "identities", "pw", overwrite=True,
                                                   scrypt_n=2**10)
    env = {**served.env(), "TDS_ORACLE_PASSWORD": "pw"}
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "from tds.cli import main; main()", "oracle", "run", "oracle",
                        "--password-env", "TDS_ORACLE_PASSWORD", "--key-service", served.key_service.url],
                       env=env, capture_output=True, text=True, timeout=60, cwd=served.settings.project_root)
    assert r.returncode == 1
    assert "is not bound" in r.stderr and "tds id bind oracle" in r.stderr
    assert w.space.w3.is_connected()
