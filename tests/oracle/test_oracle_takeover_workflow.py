"""Several oracles (a silent one's job is taken over after the accept timeout, never before) and
multi-step workflows (advanced step by step by the oracle; a failing step stops the rest)."""
from __future__ import annotations

import pytest
from eth_utils import keccak
from web3.logs import DISCARD

from did.identity import Identity
from did.registry import IdentityRegistryClient
from chain.accounts import dev_account
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from chain.params import params_hash, seal_params
from oracle.pipeline import POLICY_REFUSED, QUERY_INVALID, result_cid_text
from oracle.runner import ACCEPTED, COMPLETED, FAILED, REQUESTED
from tds.sandbox import PRICE, build_world
from chain import Member

RANGE_SUM = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 700]]}


@pytest.fixture
def world(tmp_settings, tmp_path):
    from chain.node import EmbeddedNode

    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    yield build_world(tmp_settings, tmp_path)
    node.down()


def _second_oracle(w) -> Member:
    ident = Identity.create("oracle-b", dev_account(6))
    IdentityRegistryClient(w.space.w3, w.space.c["IdentityRegistry"]).bind(ident)
    member = Member("oracle-b", ident.account, ident.did)
    w.space.grant_role(w.operator, member, "COMPUTE_PROVIDER", keccak(text="vc:oracle-b"))
    return member


def _plain(w, lo=100, hi=700):
    sel = [a for _, _, a in w.sales_rows if lo <= a <= hi]
    return [sum(sel), len(sel)]


def _answer(w, job_id):
    ev = w.space.completion(job_id)
    return w.open(w.store.cat(result_cid_text(ev["resultCid"])))["answer"]["rows"]


def test_silent_oracle_is_taken_over_after_the_timeout_only(world, tmp_path):
    w = world
    b = _second_oracle(w)
    job = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, {"dataset": w.sales_id, **RANGE_SUM},
                              w.store, value=PRICE, ttl=3 * 3600)  # outlives the accept timeout
    # oracle A accepts, then goes silent (no journal, no compute)
    w.space.send(w.oracle.account, w.space.c["Jobs"].functions.acceptJob(job))
    runner_b = w.runner(tmp_path / "b.sqlite", oracle=b)
    runner_b.run_once()
    assert w.space.job(job)[0][3] == ACCEPTED and w.space.job(job)[1][0] == w.oracle.address
    assert runner_b.stats.posted == 0  # too early: the job stays A's
    timeout = w.space.c["Jobs"].functions.acceptTimeout().call()
    w.space.w3.provider.make_request("evm_increaseTime", [timeout + 1])
    w.space.w3.provider.make_request("evm_mine", [])
    runner_b.run_once()
    assert runner_b.stats.posted == 1
    assert w.space.job(job)[0][3] == COMPLETED and w.space.job(job)[1][0] == b.address
    accepted = w.space.c["Jobs"].events.JobAccepted().get_logs(from_block=w.space.deployment["block"])
    assert [(e["args"]["oracle"], e["args"]["previousOracle"]) for e in accepted][-1] == (b.address, w.oracle.address)
    assert _answer(w, job)[0] == _plain(w)
    # A comes back: it sees the job settled by another oracle and does nothing
    runner_a = w.runner(tmp_path / "a.sqlite")
    runner_a.run_once()
    assert runner_a.stats.posted == 0 and runner_a.stats.skipped == 1
    zero = "0x" + "00" * 20
    assert w.space.c["Jobs"].functions.balanceOf(w.oracle.address, zero).call() == 0
    assert w.space.c["Jobs"].functions.balanceOf(b.address, zero).call() == PRICE * 1500 // 10000


def _workflow(w, queries: list[dict], ops: list[int]) -> int:
    hashes = []
    for q in queries:
        data = seal_params(q, [w.space.key_agreement_key(w.provider.address)])
        w.store.add_bytes(data, cid_version=1)
        hashes.append(params_hash(data))
    jobs = w.space.c["Jobs"]
    r = w.space.send(w.consumer.account, jobs.functions.requestWorkflow(w.grant_id, ops, hashes, 3600),
                     value=PRICE * len(queries))
    return jobs.events.WorkflowRequested().process_receipt(r, errors=DISCARD)[0]["args"]["workflowId"]


def _steps(w, wf: int) -> list[int]:
    logs = w.space.c["Jobs"].events.WorkflowStepOpened().get_logs(
        from_block=w.space.deployment["block"], argument_filters={"workflowId": wf})
    return [e["args"]["jobId"] for e in sorted(logs, key=lambda e: e["args"]["step"])]


def test_workflow_advances_step_by_step(world, tmp_path):
    w = world
    q = [{"dataset": w.sales_id, **RANGE_SUM},
         {"dataset": w.sales_id, "aggregates": [["count"]], "group_by": "region"},
         {"dataset": w.sales_id, "aggregates": [["sum", "amount"]], "where": [["eq", "region", "north"]]}]
    wf = _workflow(w, q, [OPE_RANGE | HOM_AGG, DET_EQ | HOM_AGG, DET_EQ | HOM_AGG])
    runner = w.runner(tmp_path / "j.sqlite")
    assert len(_steps(w, wf)) == 1  # only the first step is open until it completes
    for expected in (1, 2, 3):
        runner.run_once()
        assert runner.stats.posted == expected
    steps = _steps(w, wf)
    assert len(steps) == 3 and all(w.space.job(j)[0][3] == COMPLETED for j in steps)
    assert w.space.c["Jobs"].functions.workflowOf(wf).call()[3] == 2  # Completed
    assert _answer(w, steps[0])[0] == _plain(w)
    regions = {}
    for _, region, _ in w.sales_rows:
        regions[region] = regions.get(region, 0) + 1
    assert {r[0]: r[1] for r in _answer(w, steps[1])} == regions
    assert _answer(w, steps[2])[0][0] == sum(a for _, r, a in w.sales_rows if r == "north")


def test_failing_step_stops_the_workflow_and_refunds_the_rest(world, tmp_path):
    w = world
    q = [{"dataset": w.sales_id, **RANGE_SUM},
         {"dataset": w.sales_id, "aggregates": [["sum", "no_such_column"]]},
         {"dataset": w.sales_id, **RANGE_SUM}]
    wf = _workflow(w, q, [OPE_RANGE | HOM_AGG, HOM_AGG, OPE_RANGE | HOM_AGG])
    runner = w.runner(tmp_path / "j.sqlite")
    for _ in range(3):
        runner.run_once()
    steps = _steps(w, wf)
    assert len(steps) == 2  # the third step was never opened
    assert w.space.job(steps[0])[0][3] == COMPLETED and w.space.job(steps[1])[0][3] == FAILED
    stopped = w.space.c["Jobs"].events.WorkflowStopped().get_logs(from_block=w.space.deployment["block"])
    assert [(e["args"]["workflowId"], e["args"]["step"]) for e in stopped] == [(wf, 1)]
    assert stopped[0]["args"]["reasonCode"] in (QUERY_INVALID, POLICY_REFUSED)  # unknown column
    assert stopped[0]["args"]["refunded"] == PRICE  # the escrow of the step never run (the failed one: by failJob)
    assert w.space.c["Jobs"].functions.workflowOf(wf).call()[3] == 3  # Failed
    assert runner.stats.posted == 1 and runner.stats.failed == 1
    assert REQUESTED not in {w.space.job(j)[0][3] for j in steps}
    zero = "0x" + "00" * 20
    assert w.space.c["Jobs"].functions.balanceOf(w.consumer.address, zero).call() == 2 * PRICE  # to withdraw
