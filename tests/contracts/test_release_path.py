"""The release path on chain (issue 12): a release is recorded by the asset's holder with every
term re-checked; once released a job cannot end in a refund and completes only with that answer;
an oracle cannot burn uses; roles are enforced on every path; offers can be cancelled and die with
a transfer; only completed jobs can be rated; admin hand-over is two-step; fees-on-transfer refused."""
import pytest
from brownie import FeeOnTransferToken, Jobs, chain

from conftest import (ACCEPT_TIMEOUT, HOM_AGG, PRICE, ROLES, SPLIT, ZERO, H, complete, grant_direct,
                      mint_params, now, release, request, result_hash, reverts, sign_grant, sign_result, terms)

ACCEPTED, COMPLETED, FAILED, RELEASED = 2, 3, 4, 7
PROVIDER_IDX = 3
ORACLE_FAULT = 0x101


def accepted_job(system, **over):
    gid = grant_direct(system, **over)
    jid = request(system, gid).return_value
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    return gid, jid


# ---------------------------------------------------------------- recording a release

def test_holder_records_release_and_job_completes_with_that_answer(system):
    gid, jid = accepted_job(system)
    system.jobs.checkRelease(jid, system.cast.oracle)  # the key service asks first: no revert
    tx = release(system, jid)
    ev = tx.events["AnswerReleased"]
    assert (ev["jobId"], ev["provider"], ev["oracle"]) == (jid, system.cast.provider, system.cast.oracle)
    assert system.jobs.jobOf(jid)[0]["status"] == RELEASED
    assert system.jobs.releasedHash(jid) == result_hash(jid)
    complete(system, jid)
    assert system.jobs.jobOf(jid)[0]["status"] == COMPLETED and system.jobs.hasCompletedJob(gid)


def test_only_the_holder_records_and_only_an_accepted_job(system):
    gid = grant_direct(system)
    jid = request(system, gid).return_value
    with reverts("JobNotOpen", jid, 1):  # requested, not accepted
        release(system, jid)
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    for who in (system.cast.oracle, system.cast.consumer, system.cast.provider2):
        with reverts("NotReleasingProvider", jid, who):
            system.jobs.recordRelease(jid, result_hash(jid), {"from": who})
    with reverts("EmptyResult", jid):
        system.jobs.recordRelease(jid, "0x" + "00" * 32, {"from": system.cast.provider})
    with reverts("UnknownJob", 777):
        system.jobs.recordRelease(777, result_hash(jid), {"from": system.cast.provider})
    with reverts("NotJobOracle", jid, system.cast.oracle2):
        system.jobs.checkRelease(jid, system.cast.oracle2)
    release(system, jid)
    with reverts("AnswerAlreadyReleased", jid):
        release(system, jid)


@pytest.mark.parametrize("action, error", [
    ("revoke", "GrantNotActive"), ("close", "GrantNotActive"), ("freeze-holder", "GrantIsFrozen"),
    ("freeze-monitor", "GrantIsFrozen"), ("freeze-regulator", "GrantIsFrozen"), ("asset-frozen", "AssetNotUsable"),
    ("asset-offline", "AssetNotUsable"), ("consumer-role", "ConsumerNotRegistered"),
    ("provider-role", "ProviderNotRegistered"), ("oracle-role", "OracleRoleRevoked"),
])
def test_revocation_takes_effect_at_release(system, action, error):
    """A job requested before a revoke, freeze, offline or role revocation gets nothing released."""
    c = system.cast
    gid, jid = accepted_job(system)
    {
        "revoke": lambda: system.auth.revoke(gid, H("r"), {"from": c.provider}),
        "close": lambda: system.auth.close(gid, H("d"), {"from": c.consumer}),
        "freeze-holder": lambda: system.auth.freeze(gid, 1, {"from": c.provider}),
        "freeze-monitor": lambda: system.auth.freeze(gid, 9, {"from": c.monitor}),
        "freeze-regulator": lambda: system.auth.freeze(gid, 1, {"from": c.regulator}),
        "asset-frozen": lambda: system.assets.freeze(system.asset_id, 1, {"from": c.regulator}),
        "asset-offline": lambda: system.assets.takeOffline(system.asset_id, H("f"), {"from": c.provider}),
        "consumer-role": lambda: system.identity.revokeParticipantRole(c.consumer, ROLES["CONSUMER"], H("x"),
                                                                      {"from": c.operator}),
        "provider-role": lambda: system.identity.revokeParticipantRole(c.provider, ROLES["PROVIDER"], H("x"),
                                                                      {"from": c.operator}),
        "oracle-role": lambda: system.identity.revokeParticipantRole(c.oracle, ROLES["COMPUTE_PROVIDER"], H("x"),
                                                                    {"from": c.operator}),
    }[action]()
    with reverts(error):
        system.jobs.checkRelease(jid, c.oracle)
    with reverts(error):
        release(system, jid)
    if action != "oracle-role":  # the job ends with a named reason and a refund
        system.jobs.failJob(jid, 16, {"from": c.oracle})
        assert system.jobs.balanceOf(c.consumer, ZERO) == PRICE


# ---------------------------------------------------------------- payment is final once released

def test_released_job_cannot_fail_be_reclaimed_or_taken_over(system):
    c = system.cast
    gid = grant_direct(system)
    jid = request(system, gid, ttl=3 * ACCEPT_TIMEOUT).return_value
    system.jobs.acceptJob(jid, {"from": c.oracle})
    release(system, jid)
    with reverts("AnswerAlreadyReleased", jid):
        system.jobs.failJob(jid, 3, {"from": c.oracle})
    chain.sleep(ACCEPT_TIMEOUT + 5)
    chain.mine()
    with reverts("AnswerAlreadyReleased", jid):
        system.jobs.acceptJob(jid, {"from": c.oracle2})  # a rival cannot take it (and its answer) over
    chain.sleep(3 * ACCEPT_TIMEOUT)
    chain.mine()
    with reverts("AnswerAlreadyReleased", jid):
        system.jobs.reclaim(jid, {"from": c.consumer})
    assert system.jobs.balanceOf(c.consumer, ZERO) == 0


def test_a_rival_cannot_post_the_released_answer(system):
    c = system.cast
    _, jid = accepted_job(system)
    release(system, jid)
    rh, cid = result_hash(jid), b"\x12\x20" + b"\x44" * 32
    with reverts("NotJobOracle", jid, c.oracle2):  # copied from the mempool: bound to the releasing oracle
        system.jobs.completeJob(jid, cid, rh, sign_result(system, 9, jid, rh, cid), {"from": c.oracle2})


def test_provider_settles_when_the_oracle_does_not_post(system):
    c = system.cast
    gid = grant_direct(system)
    jid = request(system, gid, ttl=4 * ACCEPT_TIMEOUT).return_value
    system.jobs.acceptJob(jid, {"from": c.oracle})
    release(system, jid)
    cid = b"\x12\x20" + b"\x55" * 32
    with reverts("SettlementTooEarly"):
        system.jobs.settleReleased(jid, cid, {"from": c.provider})
    chain.sleep(ACCEPT_TIMEOUT + 5)
    chain.mine()
    with reverts("EmptyResult", jid):
        system.jobs.settleReleased(jid, b"", {"from": c.provider})
    tx = system.jobs.settleReleased(jid, cid, {"from": c.provider})
    assert tx.events["JobSettledWithoutOracle"]["oracle"] == c.oracle
    assert tx.events["JobCompleted"]["resultHash"] == result_hash(jid)
    provider, algo, compute, op = (PRICE * b // 10000 for b in SPLIT)
    assert system.jobs.balanceOf(c.provider, ZERO) == PRICE - algo - op  # provider + compute share
    assert system.jobs.balanceOf(c.oracle, ZERO) == 0
    assert system.jobs.oracleFailures(c.oracle) == 1
    assert system.jobs.jobOf(jid)[0]["status"] == COMPLETED


# ---------------------------------------------------------------- an oracle cannot burn uses

def test_oracle_fault_gives_the_use_back_and_is_counted(system):
    c = system.cast
    gid, jid = accepted_job(system, maxUses=1)
    tx = system.jobs.failJob(jid, ORACLE_FAULT, {"from": c.oracle})
    assert tx.events["UseRestored"]["grantId"] == gid
    ev = tx.events["OracleFailureRecorded"]
    assert (ev["oracle"], ev["jobId"], ev["reasonCode"], ev["failures"]) == (c.oracle, jid, ORACLE_FAULT, 1)
    jid2 = request(system, gid).return_value  # the use came back
    assert jid2 == jid + 1 and system.auth.restoredUses(gid) == 1
    system.jobs.acceptJob(jid2, {"from": c.oracle})
    system.jobs.failJob(jid2, 3, {"from": c.oracle})  # the consumer's own fault: the use stays spent
    with reverts("UsesExhausted", gid, 1, 1):
        request(system, gid)
    assert system.jobs.oracleFailures(c.oracle) == 1


def test_abandoned_job_gives_the_use_back_and_charges_the_oracle(system):
    c = system.cast
    gid = grant_direct(system, maxUses=1)
    jid = request(system, gid, ttl=100).return_value
    system.jobs.acceptJob(jid, {"from": c.oracle})
    chain.sleep(200)
    chain.mine()
    tx = system.jobs.reclaim(jid, {"from": c.consumer})
    assert "UseRestored" in tx.events and tx.events["OracleFailureRecorded"]["oracle"] == c.oracle
    request(system, gid)


def test_takeover_charges_the_silent_oracle(system):
    c = system.cast
    jid = request(system, grant_direct(system), ttl=3 * ACCEPT_TIMEOUT).return_value
    system.jobs.acceptJob(jid, {"from": c.oracle})
    chain.sleep(ACCEPT_TIMEOUT + 5)
    chain.mine()
    tx = system.jobs.acceptJob(jid, {"from": c.oracle2})
    assert tx.events["OracleFailureRecorded"]["oracle"] == c.oracle


# ---------------------------------------------------------------- participant roles on every path

def test_consumer_without_role_cannot_apply_take_an_offer_or_request(system):
    c = system.cast
    gid = grant_direct(system)
    t, dl = terms(system), now() + 3600
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl)
    system.identity.revokeParticipantRole(c.consumer, ROLES["CONSUMER"], H("x"), {"from": c.operator})
    with reverts("ConsumerNotRegistered", c.consumer):
        system.auth.applyFor(system.asset_id, H("p"), HOM_AGG, 0, 0, now() + 86400, 2, {"from": c.consumer})
    with reverts("ConsumerNotRegistered", c.consumer):
        system.auth.grantBySignature(t, 0, dl, sig, {"from": c.consumer})
    with reverts("ConsumerNotRegistered", c.consumer):
        request(system, gid)
    assert not system.auth.isUsable(gid, c.consumer, HOM_AGG)


def test_provider_without_role_cannot_mint_grant_approve_or_sign(system):
    c = system.cast
    app = system.auth.applyFor(system.asset_id, H("p"), HOM_AGG, 0, 0, now() + 86400, 2,
                               {"from": c.consumer}).return_value
    t, dl = terms(system), now() + 3600
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl)
    system.identity.revokeParticipantRole(c.provider, ROLES["PROVIDER"], H("x"), {"from": c.operator})
    with reverts("ProviderNotRegistered", c.provider):
        system.assets.mint(mint_params(system.template_id), {"from": c.provider})
    with reverts("ProviderNotRegistered", c.provider):
        system.auth.grant(terms(system), {"from": c.provider})
    with reverts("ProviderNotRegistered", c.provider):
        system.auth.approve(app, ZERO, PRICE, ZERO, {"from": c.provider})
    with reverts("ProviderNotRegistered", c.provider):
        system.auth.grantBySignature(t, 0, dl, sig, {"from": c.consumer})


# ---------------------------------------------------------------- offers

def test_holder_cancels_an_offer(system):
    t, dl = terms(system), now() + 3600
    nonce = 5 << 64
    sig = sign_grant(system, PROVIDER_IDX, t, nonce, dl)
    tx = system.auth.cancelOffer(nonce, {"from": system.cast.provider})
    assert tx.events["OfferCancelled"]["nonce"] == nonce
    with reverts("InvalidAccountNonce", system.cast.provider, nonce + 1):
        system.auth.grantBySignature(t, nonce, dl, sig, {"from": system.cast.consumer})


def test_offers_die_when_the_certificate_changes_hands(system):
    c = system.cast
    t, dl = terms(system), now() + 3600
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl)  # signed at transfer count 0
    system.assets.transferFrom(c.provider, c.provider2, system.asset_id, {"from": c.provider})
    system.assets.transferFrom(c.provider2, c.provider, system.asset_id, {"from": c.provider2})
    assert system.assets.transfersOf(system.asset_id) == 2
    with reverts("OfferOutdated", system.asset_id, 0, 2):  # back with the signer: still dead
        system.auth.grantBySignature(t, 0, dl, sig, {"from": c.consumer})
    fresh = 2 << 224
    sig2 = sign_grant(system, PROVIDER_IDX, t, fresh, dl)
    system.auth.grantBySignature(t, fresh, dl, sig2, {"from": c.consumer})


# ---------------------------------------------------------------- roles, admin, money

def test_jobs_role_only_for_contracts(system):
    with reverts("JobsRoleNeedsContract", system.cast.operator):
        system.auth.grantRole(ROLES["JOBS"], system.cast.operator, {"from": system.cast.operator})


def test_admin_hand_over_is_two_step_with_delay(system):
    c, admin_role = system.cast, "0x" + "00" * 32
    with reverts("AccessControlEnforcedDefaultAdminRules"):
        system.auth.grantRole(admin_role, c.regulator, {"from": c.operator})
    system.auth.beginDefaultAdminTransfer(c.regulator, {"from": c.operator})
    with reverts("AccessControlEnforcedDefaultAdminDelay"):
        system.auth.acceptDefaultAdminTransfer({"from": c.regulator})
    chain.sleep(2 * 86400 + 5)
    chain.mine()
    system.auth.acceptDefaultAdminTransfer({"from": c.regulator})
    assert system.auth.defaultAdmin() == c.regulator and not system.auth.hasRole(admin_role, c.operator)


def test_credits_supply_is_capped(system):
    cap = system.credits.MAX_SUPPLY()
    system.credits.mint(system.cast.consumer, cap, H("all"), {"from": system.cast.regulator})
    with reverts("ERC20ExceededCap"):
        system.credits.mint(system.cast.consumer, 1, H("one more"), {"from": system.cast.regulator})


def test_treasury_must_not_be_zero(system):
    with reverts("InvalidTreasury"):
        Jobs.deploy(system.identity, system.auth, system.assets, system.templates, ZERO, ACCEPT_TIMEOUT,
                    {"from": system.cast.operator})


def test_fee_on_transfer_token_refused(system):
    c = system.cast
    token = FeeOnTransferToken.deploy({"from": c.consumer})
    system.auth.setPaymentToken(token, True, {"from": c.operator})
    gid = grant_direct(system, paymentToken=token.address, pricePerUse=10**18)
    token.approve(system.jobs, 10**19, {"from": c.consumer})
    with reverts("FeeOnTransferToken", token, 10**18, 10**18 - 10**16):
        request(system, gid, value=0)


def test_rating_needs_a_completed_job(system):
    gid, jid = accepted_job(system)
    with reverts("NoCompletedJob", gid):
        system.ratings.rate(gid, 4, {"from": system.cast.consumer})
    complete(system, jid)
    system.ratings.rate(gid, 4, {"from": system.cast.consumer})


def test_workflow_ids_are_not_truncated(system):
    """Workflow ids live in 32 bits of a job record: the counter refuses to wrap (storage slot 11
    of Jobs is `_workflowCount`, per solc's storage layout; set it to the last id)."""
    from brownie import web3

    web3.provider.make_request("anvil_setStorageAt", [system.jobs.address, hex(11), "0x" + f"{2**32 - 1:064x}"])
    gid = grant_direct(system, maxUses=5)
    with reverts("TooManyWorkflows"):
        system.jobs.requestWorkflow(gid, [HOM_AGG], [H("s")], 3600, {"from": system.cast.consumer, "value": PRICE})
