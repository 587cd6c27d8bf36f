"""Disputes of completed jobs (JobDisputes, CertificateTemplates.setDisputeWindow): the template's
window, the held shares, the consumer's dispute, the regulator's decision (refund, release,
split) and the release of undisputed shares after the window — each rule holding and refusing."""
from brownie import chain
from conftest import (
    ACCEPT_TIMEOUT,
    PRICE,
    SPLIT,
    ZERO,
    H,
    complete,
    grant_direct,
    release,
    request,
    reverts,
)

WINDOW = 3 * 86400
NONE, HELD, DISPUTED, RELEASED, RESOLVED = 0, 1, 2, 3, 4
REQUESTED, COMPLETED = 1, 3
PROVIDER, ALGO, COMPUTE, OPERATOR = (PRICE * b // 10000 for b in SPLIT)
HELD_AMOUNT = PRICE - OPERATOR


def set_window(system, window=WINDOW):
    return system.templates.setDisputeWindow(system.template_id, window, {"from": system.cast.operator})


def completed_job(system, gid=None):
    """A job requested, accepted, released and completed by the oracle; returns (job id, tx)."""
    gid = gid or grant_direct(system)
    jid = request(system, gid).return_value
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    return jid, complete(system, jid)


def balances(system):
    c = system.cast
    return [system.jobs.balanceOf(a, ZERO) for a in (c.provider, c.algorithm, c.oracle, c.operator, c.consumer)]


def past_window():
    chain.sleep(WINDOW + 5)
    chain.mine()


# ---------------------------------------------------------------- the template's window

def test_operator_sets_window_others_refused(system):
    tx = set_window(system)
    assert tx.events["TemplateDisputeWindowSet"]["window"] == WINDOW
    assert system.templates.disputeWindow(system.template_id) == WINDOW
    with reverts("AccessControlUnauthorizedAccount"):
        system.templates.setDisputeWindow(system.template_id, 1, {"from": system.cast.provider})
    with reverts("InvalidDisputeWindow", 91 * 86400, 90 * 86400):
        set_window(system, 91 * 86400)
    with reverts("UnknownTemplate", 99):
        system.templates.setDisputeWindow(99, 1, {"from": system.cast.operator})


def test_window_zero_pays_at_completion_and_is_not_disputable(system):
    jid, tx = completed_job(system)
    assert "PaymentHeld" not in tx.events
    assert balances(system)[:4] == [PROVIDER, ALGO, COMPUTE, OPERATOR]
    assert system.jobs.holdOf(jid)["status"] == NONE
    with reverts("JobNotDisputable", jid):
        system.jobs.disputeJob(jid, H("reason"), {"from": system.cast.consumer})
    with reverts("NothingHeld", jid, NONE):
        system.jobs.releaseHeld([jid], {"from": system.cast.provider})


# ---------------------------------------------------------------- holding and releasing

def test_window_holds_every_share_but_the_operators_until_released_by_anyone(system):
    set_window(system)
    jid, tx = completed_job(system)
    until = tx.timestamp + WINDOW
    assert tx.events["PaymentHeld"]["amount"] == HELD_AMOUNT and tx.events["PaymentHeld"]["disputableUntil"] == until
    assert [e["share"] for e in tx.events["Credited"]] == [3]  # the operator's share only
    assert balances(system)[:4] == [0, 0, 0, OPERATOR]
    assert tuple(system.jobs.holdOf(jid)) == (HELD_AMOUNT, until, HELD, False)
    assert system.jobs.balance() == PRICE  # still in escrow
    with reverts("DisputeWindowOpen", jid, until):
        system.jobs.releaseHeld([jid], {"from": system.cast.provider})
    past_window()
    tx = system.jobs.releaseHeld([jid], {"from": system.cast.consumer2})  # anyone
    assert tx.events["HeldPaymentReleased"]["amount"] == HELD_AMOUNT
    assert balances(system) == [PROVIDER, ALGO, COMPUTE, OPERATOR, 0]
    assert system.jobs.holdOf(jid)["status"] == RELEASED
    with reverts("NothingHeld", jid, RELEASED):
        system.jobs.releaseHeld([jid], {"from": system.cast.provider})
    with reverts("UnknownJob", 12345):
        system.jobs.releaseHeld([12345], {"from": system.cast.provider})
    with reverts("InvalidBatch", 0):
        system.jobs.releaseHeld([], {"from": system.cast.provider})


def test_held_shares_follow_the_holder_and_settlement_without_oracle(system):
    set_window(system)
    c = system.cast
    jid = request(system, grant_direct(system)).return_value
    system.jobs.acceptJob(jid, {"from": c.oracle})
    release(system, jid)
    chain.sleep(ACCEPT_TIMEOUT + 5)
    chain.mine()
    system.jobs.settleReleased(jid, b"\x12\x20" + b"\x55" * 32, {"from": c.provider})
    assert system.jobs.holdOf(jid)["computeToHolder"]
    system.assets.transferFrom(c.provider, c.provider2, system.asset_id, {"from": c.provider})
    past_window()
    system.jobs.releaseHeld([jid], {"from": c.provider2})
    assert system.jobs.balanceOf(c.provider2, ZERO) == PROVIDER + COMPUTE  # holder at release, compute too
    assert system.jobs.balanceOf(c.oracle, ZERO) == 0


def test_grant_keeps_the_window_of_its_first_completion(system):
    set_window(system)
    gid = grant_direct(system)
    completed_job(system, gid)  # the grant's first completion fixes its window
    set_window(system, 0)
    second, tx = completed_job(system, gid)
    assert system.jobs.holdOf(second)["status"] == HELD  # this grant's window was fixed at `first`
    other, tx = completed_job(system)  # a new grant takes the template's window now
    assert "PaymentHeld" not in tx.events and system.jobs.holdOf(other)["status"] == NONE


# ---------------------------------------------------------------- the consumer's dispute

def test_consumer_disputes_within_window_and_release_is_refused(system):
    set_window(system)
    jid, _ = completed_job(system)
    tx = system.jobs.disputeJob(jid, H("wrong result"), {"from": system.cast.consumer})
    ev = tx.events["JobDisputed"]
    assert ev["consumer"] == system.cast.consumer and ev["reasonHash"] == H("wrong result")
    assert system.jobs.holdOf(jid)["status"] == DISPUTED
    past_window()
    with reverts("JobUnderDispute", jid):  # the window passing does not release a disputed job
        system.jobs.releaseHeld([jid], {"from": system.cast.provider})
    with reverts("AlreadyDisputed", jid, DISPUTED):
        system.jobs.disputeJob(jid, H("again"), {"from": system.cast.consumer})


def test_dispute_refusals(system):
    set_window(system)
    c = system.cast
    with reverts("UnknownJob", 12345):
        system.jobs.disputeJob(12345, H("r"), {"from": c.consumer})
    open_job = request(system, grant_direct(system)).return_value
    with reverts("JobNotCompleted", open_job, REQUESTED):
        system.jobs.disputeJob(open_job, H("r"), {"from": c.consumer})
    jid, _ = completed_job(system)
    for who in (c.provider, c.consumer2):
        with reverts("NotJobConsumer", jid, who):
            system.jobs.disputeJob(jid, H("r"), {"from": who})
    until = system.jobs.holdOf(jid)["until"]
    past_window()
    with reverts("DisputeWindowClosed", jid, until):
        system.jobs.disputeJob(jid, H("late"), {"from": c.consumer})


# ---------------------------------------------------------------- the arbitrator's decision

def disputed_job(system):
    set_window(system)
    jid, _ = completed_job(system)
    system.jobs.disputeJob(jid, H("missing rows"), {"from": system.cast.consumer})
    return jid


def test_full_refund_returns_the_held_amount_and_the_use(system):
    jid = disputed_job(system)
    gid = jid >> 32
    restored = system.auth.restoredUses(gid)
    tx = system.jobs.resolveDispute(jid, 10000, H("decision: refund"), {"from": system.cast.regulator})
    ev = tx.events["DisputeResolved"]
    assert (ev["refundBps"], ev["refunded"], ev["released"], ev["decisionHash"]) == (
        10000, HELD_AMOUNT, 0, H("decision: refund"))
    assert balances(system) == [0, 0, 0, OPERATOR, HELD_AMOUNT]
    assert system.auth.restoredUses(gid) == restored + 1
    assert system.jobs.holdOf(jid)["status"] == RESOLVED
    with reverts("NoOpenDispute", jid, RESOLVED):
        system.jobs.resolveDispute(jid, 0, H("again"), {"from": system.cast.regulator})
    with reverts("AlreadyDisputed", jid, RESOLVED):
        system.jobs.disputeJob(jid, H("again"), {"from": system.cast.consumer})


def test_split_decision_is_pro_rata_and_exact_and_release_pays_the_payees(system):
    jid = disputed_job(system)
    tx = system.jobs.resolveDispute(jid, 2500, H("decision: split"), {"from": system.cast.regulator})
    refund = HELD_AMOUNT * 2500 // 10000
    kept = HELD_AMOUNT - refund
    algo, compute = ALGO * kept // HELD_AMOUNT, COMPUTE * kept // HELD_AMOUNT
    assert balances(system) == [kept - algo - compute, algo, compute, OPERATOR, refund]
    assert tx.events["DisputeResolved"]["released"] == kept
    assert sum(balances(system)) == PRICE == system.jobs.balance()
    before = balances(system)
    jid, _ = completed_job(system)  # a second one, decided for the payees (0 bps refunded)
    system.jobs.disputeJob(jid, H("r"), {"from": system.cast.consumer})
    system.jobs.resolveDispute(jid, 0, H("decision: release"), {"from": system.cast.regulator})
    assert [b - a for a, b in zip(before, balances(system))] == [PROVIDER, ALGO, COMPUTE, OPERATOR, 0]


def test_decision_refusals(system):
    c = system.cast
    set_window(system)
    jid, _ = completed_job(system)
    for who in (c.operator, c.monitor):  # the admin and the monitor are no arbitrators
        with reverts("NotArbitrator", who):
            system.jobs.resolveDispute(jid, 10000, H("d"), {"from": who})
    with reverts("NoOpenDispute", jid, HELD):
        system.jobs.resolveDispute(jid, 10000, H("d"), {"from": c.regulator})
    with reverts("UnknownJob", 12345):
        system.jobs.resolveDispute(12345, 0, H("d"), {"from": c.regulator})
    system.jobs.disputeJob(jid, H("r"), {"from": c.consumer})
    with reverts("InvalidRefundBps", 10001):
        system.jobs.resolveDispute(jid, 10001, H("d"), {"from": c.regulator})
