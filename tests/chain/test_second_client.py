"""The whole lifecycle on a second, independent EVM client: an ethereumjs Clique chain with real
1-second blocks, reached only through ``TDS_RPC_URL`` (docs/evm-clients.md).

Deploy, register, grant, request, the oracle computes and completes, the consumer opens the
answer, the auditor verifies; then the node is stopped while a second job is open and restarted
from its data folder, and that job is completed too (no job lost). Bounded: < 4 minutes."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from eth_utils import keccak

from audit.verify import overall, verify_all
from chain.clique_node import CLIQUE_CHAIN_ID, CliqueNode, CliqueSpec, ethereumjs_chain, geth_genesis
from chain.config import load_settings
from chain.connection import log_matches
from chain.ops import HOM_AGG, OPE_RANGE
from oracle.pipeline import result_cid_text
from oracle.runner import COMPLETED
from tds.sandbox import PRICE, World, build_world

pytestmark = pytest.mark.slow
BUDGET_S = 240.0
QUERY_RANGE = (100, 500)


@pytest.fixture(scope="module")
def clique(tmp_path_factory: pytest.TempPathFactory):
    node = CliqueNode(tmp_path_factory.mktemp("clique"), CliqueSpec(period=1))
    node.start()
    yield node
    node.stop()


def test_genesis_refuses_what_ethereumjs_cannot_seal():
    genesis = geth_genesis(CliqueSpec())
    params, state = ethereumjs_chain(genesis)
    assert [h["name"] for h in params["hardforks"]][-2:] == ["shanghai", "cancun"]
    assert "paris" not in [h["name"] for h in params["hardforks"]]
    assert len(state) == 10 and params["consensus"]["clique"]["period"] == 1
    genesis["config"]["terminalTotalDifficulty"] = 0
    with pytest.raises(Exception, match="no merge"):
        ethereumjs_chain(genesis)


def test_log_filters_are_applied_again():
    query = {"address": "0xAB", "topics": ["0x01", None, ["0x03", "0x04"]]}
    assert log_matches({"address": "0xab", "topics": ["0x01", "0x99", "0x04"]}, query)
    assert not log_matches({"address": "0xab", "topics": ["0x01", "0x99", "0x05"]}, query)
    assert not log_matches({"address": "0xac", "topics": ["0x01", "0x99", "0x04"]}, query)
    assert not log_matches({"address": "0xab", "topics": ["0x01"]}, query)


def _drain(w: World, runner, job_id: int, timeout: float) -> None:
    """Run oracle passes until ``job_id`` is completed on chain (blocks take a second each)."""
    deadline = time.monotonic() + timeout
    while w.space.job(job_id)[0][3] != COMPLETED:
        assert time.monotonic() < deadline, f"job {job_id} not completed within {timeout:.0f} s"
        try:
            runner.run_once()
        except ConnectionError:
            runner.sender.resync()
        time.sleep(0.3)


def _answer(w: World, job_id: int) -> list:
    ev = w.space.completion(job_id)
    sealed = w.store.cat(result_cid_text(ev["resultCid"]))
    assert keccak(sealed) == ev["resultHash"]
    return w.open(sealed, job_id=job_id)["answer"]["rows"][0][:2]


def test_lifecycle_on_ethereumjs(clique: CliqueNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    started = time.monotonic()
    monkeypatch.setenv("TDS_RPC_URL", clique.url)
    monkeypatch.setenv("TDS_CHAIN_ID", str(CLIQUE_CHAIN_ID))
    settings = replace(load_settings(), home=tmp_path / "home", deployment_file=tmp_path / "deployment.json")
    assert settings.rpc_url == clique.url  # configured as any user would, not handed a Web3

    w = build_world(settings, tmp_path, rows=60)
    w3 = w.space.w3
    assert w3.eth.chain_id == CLIQUE_CHAIN_ID and "ethereumjs" in w3.client_version.lower()
    lo, hi = QUERY_RANGE
    plain = [a for _, _, a in w.sales_rows if lo <= a <= hi]
    query = {"dataset": w.sales_id, "aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", lo, hi]]}

    first = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, query, w.store, value=PRICE)
    runner = w.runner(tmp_path / "journal.sqlite")
    _drain(w, runner, first, timeout=60)
    assert _answer(w, first) == [sum(plain), len(plain)]

    # the node goes away while a job is open, and comes back from its data folder
    second = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, query, w.store, value=PRICE)
    height = clique.block_number()
    clique.stop()
    with pytest.raises(Exception):
        runner.run_once()  # unreachable: a transient error, nothing settled
    clique.start()
    assert clique.block_number() >= height  # the chain resumed, not restarted from genesis
    _drain(w, runner, second, timeout=60)
    assert _answer(w, second) == [sum(plain), len(plain)]
    # a query by job id finds that job's event, not the latest one (ethereumjs ignores topic filters)
    assert _answer(w, first) == [sum(plain), len(plain)]

    verdicts = verify_all(w3, w.space.deployment, fetch=w.store.cat)
    assert overall(verdicts), [v for v in verdicts if not v["ok"]]
    assert {v["refs"].get("job") for v in verdicts if v["step"] == "signature"} == {first, second}
    # real block times: the jobs' blocks are seconds apart, unlike anvil's automine
    blocks = [w3.eth.get_block(n)["timestamp"] for n in (w.space.deployment["block"], w3.eth.block_number)]
    assert blocks[1] - blocks[0] >= 10
    assert time.monotonic() - started < BUDGET_S
