"""End to end on the embedded chain: a consumer's paid job, computed on ciphertext by the
oracle, opened by the consumer, equal to the plaintext answer — and the faults around it."""
from __future__ import annotations

import random

import pytest

from chain.tx import Reverted
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from oracle.pipeline import (BAD_PARAMS, OPERATION_NOT_PAID, POLICY_REFUSED, QUERY_INVALID, RELEASE_REFUSED,
                             result_cid_text)
from oracle.runner import COMPLETED, FAILED
from chain import Member
from tds.sandbox import PRICE, build_world


@pytest.fixture
def world(tmp_settings, tmp_path):
    from chain.node import EmbeddedNode

    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    yield build_world(tmp_settings, tmp_path)
    node.down()


def _open(w, job_id):
    ev = w.space.completion(job_id)
    sealed = w.store.cat(result_cid_text(ev["resultCid"]))
    from eth_utils import keccak

    assert keccak(sealed) == ev["resultHash"]
    return w.open(sealed)["answer"]


def _plain_sum_count(rows, lo, hi):
    sel = [a for _, _, a in rows if lo <= a <= hi]
    return sum(sel), len(sel)


def test_range_sum_avg_count_and_group_by(world, tmp_path):
    w = world
    q1 = {"dataset": w.sales_id, "aggregates": [["sum", "amount"], ["count"], ["avg", "amount"]],
          "where": [["range", "amount", 100, 500]]}
    q2 = {"dataset": w.sales_id, "aggregates": [["count"], ["sum", "amount"]], "group_by": "region"}
    j1 = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, q1, w.store, value=PRICE)
    j2 = w.space.request_job(w.consumer, w.grant_id, DET_EQ | HOM_AGG, q2, w.store, value=PRICE)
    runner = w.runner(tmp_path / "journal.sqlite")
    runner.run_once()
    assert runner.stats.posted == 2
    total, count = _plain_sum_count(w.sales_rows, 100, 500)
    a1 = _open(w, j1)
    assert a1["rows"][0][:2] == [total, count]
    assert abs(float(a1["rows"][0][2]) - total / count) < 1e-9
    groups = {}
    for _, region, amount in w.sales_rows:
        c, s = groups.get(region, (0, 0))
        groups[region] = (c + 1, s + amount)
    assert {r[0]: (r[1], r[2]) for r in _open(w, j2)["rows"]} == groups
    # the chain shows the counter, the completed jobs and the split credited to the payees
    jobs = w.space.c["Jobs"]
    assert w.space.c["Authorizations"].functions.grantOf(w.grant_id).call()[1] == 2
    assert w.space.job(j1)[0][3] == COMPLETED and w.space.job(j2)[0][3] == COMPLETED
    zero = "0x" + "00" * 20
    provider_share = jobs.functions.balanceOf(w.provider.address, zero).call()
    oracle_share = jobs.functions.balanceOf(w.oracle.address, zero).call()
    assert oracle_share == 2 * PRICE * 1500 // 10000
    assert provider_share >= 2 * PRICE * 7000 // 10000


def test_job_errors_fail_with_reason_and_refund(world, tmp_path):
    w = world
    bad_col = {"dataset": w.sales_id, "aggregates": [["sum", "nope"]]}
    unpaid = {"dataset": w.sales_id, "aggregates": [["sum", "amount"]], "where": [["range", "amount", 1, 2]]}
    tiny = {"dataset": w.sales_id, "aggregates": [["sum", "amount"]],  # one row: below min group 3
            "where": [["eq", "customer", "c1"], ["range", "amount", 919, 919]]}
    garbage = {"dataset": w.sales_id, "aggregates": "sum"}
    jobs = [w.space.request_job(w.consumer, w.grant_id, HOM_AGG, bad_col, w.store, value=PRICE),
            w.space.request_job(w.consumer, w.grant_id, HOM_AGG, unpaid, w.store, value=PRICE),
            w.space.request_job(w.consumer, w.grant_id, DET_EQ | OPE_RANGE | HOM_AGG, tiny, w.store, value=PRICE),
            w.space.request_job(w.consumer, w.grant_id, HOM_AGG, garbage, w.store, value=PRICE)]
    runner = w.runner(tmp_path / "journal.sqlite")
    runner.run_once()
    assert runner.stats.failed == 4
    reasons = [runner.journal.get(j).result["reason"] for j in jobs]
    assert reasons[0] in (QUERY_INVALID, POLICY_REFUSED)  # unknown column
    assert reasons[1:] == [OPERATION_NOT_PAID, RELEASE_REFUSED, BAD_PARAMS]
    assert all(w.space.job(j)[0][3] == FAILED for j in jobs)
    zero = "0x" + "00" * 20
    assert w.space.c["Jobs"].functions.balanceOf(w.consumer.address, zero).call() == 4 * PRICE  # refunds


def test_unregistered_cannot_accept_and_second_oracle_cannot_complete(world, tmp_path):
    from chain.accounts import dev_account
    from chain.eip712 import job_result_typed_data, sign_typed

    w = world
    q = {"dataset": w.sales_id, "aggregates": [["count"]]}
    job = w.space.request_job(w.consumer, w.grant_id, HOM_AGG, q, w.store, value=PRICE)
    stranger = dev_account(8)
    with pytest.raises(Reverted, match="NotComputeProvider"):
        w.space.send(stranger, w.space.c["Jobs"].functions.acceptJob(job))
    second = Member("oracle2", dev_account(6), "did:key:z6MkOracle2")
    w.space.bind_identity(second, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
    w.space.grant_role(w.operator, second, "COMPUTE_PROVIDER", b"\x04" * 32)
    w.space.send(w.oracle.account, w.space.c["Jobs"].functions.acceptJob(job))
    with pytest.raises(Reverted, match="JobAlreadyAccepted"):
        w.space.send(second.account, w.space.c["Jobs"].functions.acceptJob(job))
    rh, cid = b"\x05" * 32, b"\x01\x55\x12\x20" + b"\x06" * 32
    sig = sign_typed(job_result_typed_data(job, rh, cid, 31337, w.space.c["Jobs"].address), second.account.key)
    with pytest.raises(Reverted, match="ResultNotReleased"):  # nothing released yet: nothing to post
        w.space.send(second.account, w.space.c["Jobs"].functions.completeJob(job, cid, rh, sig))
    w.space.send(w.provider.account, w.space.c["Jobs"].functions.recordRelease(job, rh))
    with pytest.raises(Reverted, match="NotJobOracle"):     # released to the first oracle only
        w.space.send(second.account, w.space.c["Jobs"].functions.completeJob(job, cid, rh, sig))


class Crash(BaseException):
    """Stands for kill -9 between a chain action and its journal entry."""


@pytest.mark.slow
def test_crashes_at_random_points_complete_every_job_exactly_once(world, tmp_path):
    w = world
    rng = random.Random(7)
    n = 24
    queries = [{"dataset": w.sales_id, "aggregates": [["sum", "amount"], ["count"]],
                "where": [["range", "amount", lo, lo + 400]]} for lo in range(0, n * 20, 20)]
    jobs = [w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, q, w.store, value=PRICE)
            for q in queries]
    points = ["accepted-on-chain", "computed", "completed-on-chain"]
    crashes = 0

    def checkpoint(point, job_id):
        nonlocal crashes
        if point in points and rng.random() < 0.3:
            crashes += 1
            raise Crash(point)

    done = False
    restarts = 0
    while not done:
        runner = w.runner(tmp_path / "journal.sqlite", threads=1, checkpoint=checkpoint)
        try:
            runner.run_once()
            done = not list(runner.journal.unfinished())
        except Crash:
            restarts += 1
        runner.journal.close()
        assert restarts < 200
    assert crashes > 3
    completions = w.space.c["Jobs"].events.JobCompleted().get_logs(from_block=w.space.deployment["block"])
    assert sorted(e["args"]["jobId"] for e in completions) == sorted(jobs)  # each exactly once
    for job, q in zip(jobs, queries):
        lo, hi = q["where"][0][2], q["where"][0][3]
        assert _open(w, job)["rows"][0] == list(_plain_sum_count(w.sales_rows, lo, hi))

