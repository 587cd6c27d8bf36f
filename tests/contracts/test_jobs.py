"""Jobs: every term checked at requestJob, escrow, the four-way split released on completion,
refunds on failure and after the deadline, oracle takeover, workflows, pull withdrawals."""
from brownie import ReentrancyProbe, chain
from eth_utils import keccak

from conftest import (ACCEPT_TIMEOUT, DET_EQ, DOWNLOAD, HOM_AGG, MPC, PRICE, ROLES, SPLIT, ZERO, H, complete,
                      grant_direct, now, release, request, result_hash, reverts, sign_result)

REQUESTED, ACCEPTED, COMPLETED, FAILED, RECLAIMED = 1, 2, 3, 4, 5


def job_id(gid, i):
    return (gid << 32) | i


# ---------------------------------------------------------------- requestJob: holding

def test_request_counts_use_escrows_price_and_emits(system):
    gid = grant_direct(system)
    tx = request(system, gid)
    jid = tx.return_value
    assert jid == job_id(gid, 0)
    assert system.auth.grantOf(gid)["uses"] == 1
    core, exe = system.jobs.jobOf(jid)
    assert core["status"] == REQUESTED and core["amount"] == PRICE and core["grantId"] == gid
    assert system.jobs.balance() == PRICE  # held in escrow: nobody's pull balance yet
    assert system.jobs.balanceOf(system.cast.provider, ZERO) == 0
    ev = tx.events["JobRequested"]
    assert ev["consumer"] == system.cast.consumer and ev["paramsHash"] == H("params") and ev["operation"] == HOM_AGG
    # everything an oracle needs, without another call
    assert (ev["jobId"], ev["grantId"], ev["assetId"]) == (jid, gid, system.asset_id)
    assert (ev["paymentToken"], ev["amount"]) == (ZERO, PRICE) and ev["deadline"] > now() - 10


# ---------------------------------------------------------------- requestJob: refusing

def test_request_refuses_wrong_payment_and_deadline(system):
    gid = grant_direct(system)
    with reverts("WrongPaymentAmount", PRICE, PRICE - 1):
        request(system, gid, value=PRICE - 1)
    with reverts("InvalidDeadline"):
        system.jobs.requestJob(gid, HOM_AGG, H("p"), now() - 1, {"from": system.cast.consumer, "value": PRICE})
    with reverts("InvalidDeadline"):
        request(system, gid, ttl=91 * 86400)


def test_request_refuses_exhausted_grant(system):
    gid = grant_direct(system, maxUses=1)
    request(system, gid)
    with reverts("UsesExhausted", gid, 1, 1):
        request(system, gid)


def test_request_refuses_expired_and_early_grant(system):
    ts = now()
    gid = grant_direct(system, expiry=ts + 100)
    chain.sleep(200)
    chain.mine()
    with reverts("GrantExpired"):
        request(system, gid)
    gid2 = grant_direct(system, notBefore=now() + 1000)
    with reverts("GrantNotYetValid"):
        request(system, gid2)


def test_request_refuses_revoked_closed_frozen(system):
    g1, g2, g3 = grant_direct(system), grant_direct(system), grant_direct(system)
    system.auth.revoke(g1, H("r"), {"from": system.cast.provider})
    system.auth.close(g2, H("d"), {"from": system.cast.consumer})
    system.auth.freeze(g3, 5, {"from": system.cast.monitor})
    with reverts("GrantNotActive", g1, 2):
        request(system, g1)
    with reverts("GrantNotActive", g2, 3):
        request(system, g2)
    with reverts("GrantIsFrozen", g3, 2):
        request(system, g3)
    with reverts("UnknownGrant", 999):
        request(system, 999)


def test_request_refuses_frozen_or_offline_asset(system):
    gid = grant_direct(system)
    system.assets.freeze(system.asset_id, 1, {"from": system.cast.regulator})
    with reverts("AssetNotUsable", system.asset_id, 2):
        request(system, gid)
    system.assets.unfreeze(system.asset_id, {"from": system.cast.regulator})
    system.assets.takeOffline(system.asset_id, H("final"), {"from": system.cast.provider})
    with reverts("AssetNotUsable", system.asset_id, 3):
        request(system, gid)


def test_request_refuses_out_of_scope_operation_and_other_consumer(system):
    gid = grant_direct(system)  # DET_EQ | HOM_AGG
    with reverts("OperationNotAllowed", gid, DOWNLOAD, DET_EQ | HOM_AGG):
        request(system, gid, op=DOWNLOAD)
    with reverts("OperationNotAllowed", gid, DET_EQ | DOWNLOAD, DET_EQ | HOM_AGG):
        request(system, gid, op=DET_EQ | DOWNLOAD)  # one operation outside the grant spoils the set
    with reverts("OperationNotAllowed", gid, 0, DET_EQ | HOM_AGG):
        request(system, gid, op=0)
    with reverts("NotGrantConsumer", gid, system.cast.consumer2):
        request(system, gid, sender=system.cast.consumer2)


# ---------------------------------------------------------------- accept / complete / split

def test_accept_requires_registered_oracle_and_is_exclusive(system):
    jid = request(system, grant_direct(system)).return_value
    with reverts("NotComputeProvider", system.cast.consumer):
        system.jobs.acceptJob(jid, {"from": system.cast.consumer})
    tx = system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    assert tx.events["JobAccepted"]["oracle"] == system.cast.oracle
    with reverts("JobAlreadyAccepted"):
        system.jobs.acceptJob(jid, {"from": system.cast.oracle2})
    with reverts("UnknownJob", 12345):
        system.jobs.acceptJob(12345, {"from": system.cast.oracle})


def test_silent_oracle_is_taken_over_after_timeout(system):
    jid = request(system, grant_direct(system), ttl=3 * ACCEPT_TIMEOUT).return_value
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    chain.sleep(ACCEPT_TIMEOUT + 5)
    chain.mine()
    tx = system.jobs.acceptJob(jid, {"from": system.cast.oracle2})
    assert tx.events["JobAccepted"]["previousOracle"] == system.cast.oracle
    with reverts("NotJobOracle", jid, system.cast.oracle):
        complete(system, jid)
    complete(system, jid, oracle=system.cast.oracle2, oracle_index=9)
    assert system.jobs.balanceOf(system.cast.oracle2, ZERO) == PRICE * SPLIT[2] // 10000


def test_completion_releases_exact_four_way_split(system):
    gid = grant_direct(system, pricePerUse=10**18 + 7)  # not divisible: dust goes to the provider
    jid = request(system, gid, value=10**18 + 7).return_value
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    tx = complete(system, jid)
    c, amount = system.cast, 10**18 + 7
    shares = [amount * b // 10000 for b in SPLIT]
    shares[0] = amount - sum(shares[1:])
    got = [system.jobs.balanceOf(a, ZERO) for a in (c.provider, c.algorithm, c.oracle, c.operator)]
    assert got == shares and sum(got) == amount == system.jobs.balance()
    assert [e["share"] for e in tx.events["Credited"]] == [0, 1, 2, 3]
    assert tx.events["JobCompleted"]["resultCid"] == "0x1220" + "44" * 32
    assert system.jobs.jobOf(jid)[0]["status"] == COMPLETED


def test_without_algorithm_provider_its_share_goes_to_provider(system):
    gid = grant_direct(system, algorithmProvider=ZERO)
    jid = request(system, gid).return_value
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    complete(system, jid)
    assert system.jobs.balanceOf(system.cast.provider, ZERO) == PRICE * (SPLIT[0] + SPLIT[1]) // 10000


def test_revenue_follows_the_certificate_holder(system):
    gid = grant_direct(system)
    jid = request(system, gid).return_value
    system.assets.transferFrom(system.cast.provider, system.cast.provider2, system.asset_id,
                               {"from": system.cast.provider})
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    complete(system, jid)
    assert system.jobs.balanceOf(system.cast.provider2, ZERO) == PRICE * SPLIT[0] // 10000
    assert system.jobs.balanceOf(system.cast.provider, ZERO) == 0


def test_completion_refusals_and_completes_once(system):
    jid = request(system, grant_direct(system)).return_value
    with reverts("JobNotOpen", jid, REQUESTED):
        complete(system, jid)
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    rh, cid = result_hash(jid), b"\x12\x20" + b"\x01" * 32
    with reverts("ResultNotReleased", jid):  # the key service has not released an answer yet
        system.jobs.completeJob(jid, cid, rh, sign_result(system, 5, jid, rh, cid), {"from": system.cast.oracle})
    release(system, jid, rh)
    other = H("an older answer")
    with reverts("ResultMismatch", jid, rh, other):  # not the answer released for this job
        system.jobs.completeJob(jid, cid, other, sign_result(system, 5, jid, other, cid), {"from": system.cast.oracle})
    with reverts("InvalidResultSignature", jid, system.cast.oracle):  # signed by someone else
        system.jobs.completeJob(jid, cid, rh, sign_result(system, 9, jid, rh, cid), {"from": system.cast.oracle})
    with reverts("InvalidResultSignature", jid, system.cast.oracle):  # other chain
        system.jobs.completeJob(jid, cid, rh, sign_result(system, 5, jid, rh, cid, chain_id=1),
                                {"from": system.cast.oracle})
    with reverts("InvalidResultSignature", jid, system.cast.oracle):  # other contract
        system.jobs.completeJob(jid, cid, rh, sign_result(system, 5, jid, rh, cid, verifying=system.auth.address),
                                {"from": system.cast.oracle})
    with reverts("EmptyResult", jid):
        system.jobs.completeJob(jid, b"", rh, sign_result(system, 5, jid, rh, b""), {"from": system.cast.oracle})
    complete(system, jid)
    with reverts("JobNotOpen", jid, COMPLETED):
        complete(system, jid)


def test_oracle_whose_role_was_revoked_gets_no_release_and_cannot_complete(system):
    jid = request(system, grant_direct(system)).return_value
    jid2 = request(system, grant_direct(system)).return_value
    for j in (jid, jid2):
        system.jobs.acceptJob(j, {"from": system.cast.oracle})
    release(system, jid2)
    system.identity.revokeParticipantRole(system.cast.oracle, ROLES["COMPUTE_PROVIDER"], H("x"),
                                          {"from": system.cast.operator})
    with reverts("OracleRoleRevoked", jid, system.cast.oracle):
        release(system, jid)
    with reverts("NotComputeProvider", system.cast.oracle):
        complete(system, jid2)


def test_release_after_deadline_refused(system):
    jid = request(system, grant_direct(system), ttl=100).return_value
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    chain.sleep(200)
    chain.mine()
    with reverts("JobDeadlinePassed"):
        release(system, jid)


# ---------------------------------------------------------------- failure, reclaim, withdraw

def test_failure_refunds_consumer_pull_balance(system):
    jid = request(system, grant_direct(system)).return_value
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    with reverts("NotJobOracle", jid, system.cast.oracle2):
        system.jobs.failJob(jid, 3, {"from": system.cast.oracle2})
    tx = system.jobs.failJob(jid, 3, {"from": system.cast.oracle})
    assert tx.events["JobFailed"]["reasonCode"] == 3
    assert system.jobs.balanceOf(system.cast.consumer, ZERO) == PRICE
    before = system.cast.consumer.balance()
    system.jobs.withdraw(ZERO, {"from": system.cast.consumer})
    assert system.cast.consumer.balance() == before + PRICE and system.jobs.balance() == 0


def test_reclaim_only_after_deadline_and_only_by_consumer(system):
    jid = request(system, grant_direct(system), ttl=100).return_value
    with reverts("JobNotExpired"):
        system.jobs.reclaim(jid, {"from": system.cast.consumer})
    chain.sleep(200)
    chain.mine()
    with reverts("NotJobConsumer", jid, system.cast.provider):
        system.jobs.reclaim(jid, {"from": system.cast.provider})
    with reverts("JobDeadlinePassed"):
        system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    tx = system.jobs.reclaim(jid, {"from": system.cast.consumer})
    assert tx.events["JobReclaimed"]["amount"] == PRICE
    assert system.jobs.balanceOf(system.cast.consumer, ZERO) == PRICE
    with reverts("JobNotOpen", jid, RECLAIMED):
        system.jobs.reclaim(jid, {"from": system.cast.consumer})


def test_withdraw_nothing_refused(system):
    with reverts("NothingToWithdraw", system.cast.provider, ZERO):
        system.jobs.withdraw(ZERO, {"from": system.cast.provider})


def test_withdraw_cannot_be_reentered(system):
    probe = ReentrancyProbe.deploy(system.jobs, {"from": system.cast.operator})
    gid = grant_direct(system, algorithmProvider=probe.address)
    for _ in range(2):
        jid = request(system, gid).return_value
        system.jobs.acceptJob(jid, {"from": system.cast.oracle})
        complete(system, jid)
    owed = system.jobs.balanceOf(probe, ZERO)
    assert owed == 2 * PRICE * SPLIT[1] // 10000
    probe.pull({"from": system.cast.operator})
    assert probe.received() == owed and probe.balance() == owed  # paid once, not twice
    assert not probe.reentered()
    assert str(probe.lastError()) == "0x" + keccak(text="ReentrancyGuardReentrantCall()")[:4].hex()
    assert system.jobs.balanceOf(probe, ZERO) == 0


def test_credits_as_payment_asset(system):
    c = system.cast
    system.credits.mint(c.consumer, 10**20, H("round-1"), {"from": c.regulator})
    gid = grant_direct(system, paymentToken=system.credits.address, pricePerUse=10**18)
    with reverts("ERC20InsufficientAllowance"):
        request(system, gid, value=0)
    system.credits.approve(system.jobs, 10**19, {"from": c.consumer})
    with reverts("WrongPaymentAmount", 0, 1):
        request(system, gid, value=1)
    jid = request(system, gid, value=0).return_value
    assert system.credits.balanceOf(system.jobs) == 10**18
    system.jobs.acceptJob(jid, {"from": c.oracle})
    complete(system, jid)
    system.jobs.withdraw(system.credits, {"from": c.provider})
    assert system.credits.balanceOf(c.provider) == 10**18 * SPLIT[0] // 10000


# ---------------------------------------------------------------- workflows

def workflow(system, gid, ops=(DET_EQ, HOM_AGG, HOM_AGG), price=PRICE, timeout=3600):
    return system.jobs.requestWorkflow(gid, list(ops), [H(f"step{i}") for i in range(len(ops))], timeout,
                                       {"from": system.cast.consumer, "value": price * len(ops)})


def test_completed_step_opens_the_next_until_done(system):
    gid = grant_direct(system, maxUses=5)
    tx = workflow(system, gid)
    wid = tx.return_value
    assert tx.events["WorkflowStepOpened"]["jobId"] == job_id(gid, 0)
    for step in range(3):
        jid = job_id(gid, step)
        system.jobs.acceptJob(jid, {"from": system.cast.oracle})
        tx = complete(system, jid)
        if step < 2:
            assert tx.events["WorkflowStepOpened"]["step"] == step + 1
            opened = tx.events["JobRequested"]  # the oracle sees the next step like any job
            assert (opened["jobId"], opened["assetId"], opened["paramsHash"]) == (
                job_id(gid, step + 1), system.asset_id, H(f"step{step + 1}"))
    assert "WorkflowCompleted" in tx.events
    assert system.jobs.workflowOf(wid)["status"] == 2 and system.auth.grantOf(gid)["uses"] == 3
    assert sum(system.jobs.balanceOf(a, ZERO) for a in system.cast.__dict__.values()) == system.jobs.balance()


def test_failed_step_stops_flow_and_refunds_the_rest(system):
    gid = grant_direct(system, maxUses=5)
    wid = workflow(system, gid).return_value
    system.jobs.acceptJob(job_id(gid, 0), {"from": system.cast.oracle})
    complete(system, job_id(gid, 0))
    system.jobs.acceptJob(job_id(gid, 1), {"from": system.cast.oracle})
    tx = system.jobs.failJob(job_id(gid, 1), 42, {"from": system.cast.oracle})
    assert tx.events["WorkflowStopped"]["reasonCode"] == 42
    assert system.jobs.workflowOf(wid)["status"] == 3
    assert system.jobs.balanceOf(system.cast.consumer, ZERO) == 2 * PRICE  # failed step + unopened step
    assert system.auth.grantOf(gid)["uses"] == 2
    assert sum(system.jobs.balanceOf(a, ZERO) for a in system.cast.__dict__.values()) == system.jobs.balance()


def test_next_step_refused_by_frozen_grant_stops_flow(system):
    gid = grant_direct(system, maxUses=5)
    wid = workflow(system, gid).return_value
    system.jobs.acceptJob(job_id(gid, 0), {"from": system.cast.oracle})
    release(system, job_id(gid, 0))  # released before the freeze: the step itself completes
    system.auth.freeze(gid, 1, {"from": system.cast.monitor})
    tx = complete(system, job_id(gid, 0))
    ev = tx.events["WorkflowStopped"]
    assert ev["reasonCode"] == 0xFFFF and ev["refunded"] == 2 * PRICE
    assert system.auth.grantOf(gid)["uses"] == 1


def test_workflow_refusals(system):
    gid = grant_direct(system, maxUses=2)
    with reverts("InvalidWorkflow", 0, 0):
        system.jobs.requestWorkflow(gid, [], [], 3600, {"from": system.cast.consumer})
    with reverts("WrongPaymentAmount", 3 * PRICE, 0):
        workflow(system, gid, price=0)
    with reverts("OperationNotAllowed", gid, MPC, DET_EQ | HOM_AGG):
        workflow(system, gid, ops=(MPC, HOM_AGG))
    with reverts("NotGrantConsumer", gid, system.cast.consumer2):
        system.jobs.requestWorkflow(gid, [HOM_AGG], [H("s")], 3600, {"from": system.cast.consumer2, "value": PRICE})
    with reverts("UnknownWorkflow", 5):
        system.jobs.workflowOf(5)
