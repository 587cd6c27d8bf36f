"""Authorizations: the three ways to a grant (direct, apply/approve, EIP-712 signature),
revocation, freezes by authority, destruction-proof close."""
from brownie import chain

from conftest import (DET_EQ, DOWNLOAD, HOM_AGG, PER_PERIOD, PER_TASK, PRICE, ZERO, H, mint_params, now, reverts,
                      sign_grant, terms)

ACTIVE, REVOKED, CLOSED = 1, 2, 3
HOLDER, MONITOR, REGULATOR = 1, 2, 3
PROVIDER_IDX, CONSUMER_IDX = 3, 4


# ---------------------------------------------------------------- direct grants

def test_holder_grants_directly(system):
    t = terms(system)
    tx = system.auth.grant(t, {"from": system.cast.provider})
    gid = tx.return_value
    g = system.auth.grantOf(gid)
    assert g["consumer"] == system.cast.consumer and g["maxUses"] == 3 and g["uses"] == 0
    assert g["status"] == ACTIVE and g["pricePerUse"] == PRICE and g["algorithmProvider"] == system.cast.algorithm
    ev = tx.events["GrantIssued"]
    assert ev["grantId"] == gid and ev["provider"] == system.cast.provider and ev["origin"] == 0
    assert ev["terms"]["purposeHash"] == H("purpose:stats")


def test_grant_refuses_non_holder(system):
    with reverts("NotAssetHolder", system.asset_id, system.cast.provider2):
        system.auth.grant(terms(system), {"from": system.cast.provider2})


def test_grant_refuses_frozen_asset_and_out_of_scope_operations(system):
    p = system.cast.provider
    conf = system.assets.mint(mint_params(system.template_id, classification=3), {"from": p}).return_value
    with reverts("OperationsOutOfScope", conf, DOWNLOAD | DET_EQ, 63 & ~DOWNLOAD):
        system.auth.grant(terms(system, assetId=conf, operations=DOWNLOAD | DET_EQ), {"from": p})
    system.assets.freeze(system.asset_id, 1, {"from": p})
    with reverts("AssetNotUsable", system.asset_id, 2):
        system.auth.grant(terms(system), {"from": p})


def test_grant_refuses_invalid_terms(system):
    p, ts = system.cast.provider, now()
    with reverts("InvalidOperation", 0):
        system.auth.grant(terms(system, operations=0), {"from": p})
    with reverts("InvalidOperation", 128):
        system.auth.grant(terms(system, operations=128), {"from": p})
    with reverts("InvalidGrantKind", 2):
        system.auth.grant(terms(system, kind=2), {"from": p})
    with reverts("InvalidMaxUses", PER_TASK, 0):
        system.auth.grant(terms(system, maxUses=0), {"from": p})
    with reverts("InvalidValidity"):
        system.auth.grant(terms(system, expiry=ts - 1), {"from": p})
    with reverts("InvalidValidity"):
        system.auth.grant(terms(system, notBefore=ts + 100, expiry=ts + 50), {"from": p})
    with reverts("InvalidValidity"):
        system.auth.grant(terms(system, kind=PER_PERIOD, expiry=0), {"from": p})
    with reverts("ConsumerNotRegistered", system.cast.oracle):
        system.auth.grant(terms(system, consumer=system.cast.oracle.address), {"from": p})
    with reverts("PaymentTokenNotAllowed", system.evidence.address):
        system.auth.grant(terms(system, paymentToken=system.evidence.address), {"from": p})
    with reverts("AssetIdTooLarge", 2**32):
        system.auth.grant(terms(system, assetId=2**32), {"from": p})


def test_per_period_grant_without_max_uses_is_unlimited(system):
    gid = system.auth.grant(terms(system, kind=PER_PERIOD, maxUses=0), {"from": system.cast.provider}).return_value
    assert system.auth.grantOf(gid)["maxUses"] == 2**32 - 1


def test_only_admin_sets_payment_tokens(system):
    with reverts("AccessControlUnauthorizedAccount"):
        system.auth.setPaymentToken(system.evidence, True, {"from": system.cast.provider})
    with reverts("PaymentTokenNotAllowed", ZERO):
        system.auth.setPaymentToken(ZERO, False, {"from": system.cast.operator})
    assert system.auth.isPaymentTokenAllowed(system.credits) and system.auth.isPaymentTokenAllowed(ZERO)


# ---------------------------------------------------------------- apply / approve

def apply(system, **over):
    a = dict(assetId=system.asset_id, purpose=H("purpose:risk"), ops=HOM_AGG, kind=PER_TASK, nb=0,
             exp=now() + 86400, uses=2)
    a.update(over)
    return system.auth.applyFor(a["assetId"], a["purpose"], a["ops"], a["kind"], a["nb"], a["exp"], a["uses"],
                                {"from": system.cast.consumer})


def test_apply_then_approve(system):
    tx = apply(system)
    app = tx.return_value
    assert tx.events["ApplicationSubmitted"]["purposeHash"] == H("purpose:risk")
    tx = system.auth.approve(app, ZERO, PRICE, ZERO, {"from": system.cast.provider})
    gid = tx.return_value
    assert tx.events["ApplicationApproved"]["grantId"] == gid and tx.events["GrantIssued"]["origin"] == 1
    g = system.auth.grantOf(gid)
    assert g["operations"] == HOM_AGG and g["maxUses"] == 2 and g["consumer"] == system.cast.consumer
    assert system.auth.applicationOf(app)["status"] == 2
    with reverts("ApplicationNotPending", app, 2):
        system.auth.approve(app, ZERO, PRICE, ZERO, {"from": system.cast.provider})


def test_apply_refuses_unregistered_consumer_and_approve_refuses_stranger(system):
    with reverts("ConsumerNotRegistered", system.cast.oracle):
        system.auth.applyFor(system.asset_id, H("p"), HOM_AGG, 0, 0, 0, 1, {"from": system.cast.oracle})
    app = apply(system).return_value
    with reverts("NotAssetHolder", system.asset_id, system.cast.provider2):
        system.auth.approve(app, ZERO, PRICE, ZERO, {"from": system.cast.provider2})
    with reverts("UnknownApplication", 77):
        system.auth.approve(77, ZERO, PRICE, ZERO, {"from": system.cast.provider})


def test_reject(system):
    app = apply(system).return_value
    with reverts("NotAssetHolder", system.asset_id, system.cast.consumer):
        system.auth.reject(app, H("no"), {"from": system.cast.consumer})
    tx = system.auth.reject(app, H("purpose not acceptable"), {"from": system.cast.provider})
    assert tx.events["ApplicationRejected"]["reasonHash"] == H("purpose not acceptable")
    with reverts("ApplicationNotPending", app, 3):
        system.auth.approve(app, ZERO, PRICE, ZERO, {"from": system.cast.provider})


# ---------------------------------------------------------------- EIP-712 signatures

def deadline():
    return now() + 3600


def test_consumer_submits_holder_signature(system):
    t, dl = terms(system), deadline()
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl)
    assert system.auth.grantDigest(t, 0, dl) is not None
    tx = system.auth.grantBySignature(t, 0, dl, sig, {"from": system.cast.consumer})
    assert tx.events["GrantIssued"]["origin"] == 2 and tx.events["GrantIssued"]["provider"] == system.cast.provider
    assert system.auth.nonces(system.cast.provider) == 1


def test_signature_replayed_nonce_refused(system):
    t, dl = terms(system), deadline()
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl)
    system.auth.grantBySignature(t, 0, dl, sig, {"from": system.cast.consumer})
    with reverts("InvalidAccountNonce", system.cast.provider, 1):
        system.auth.grantBySignature(t, 0, dl, sig, {"from": system.cast.consumer})


def test_keyed_nonces_allow_parallel_offers(system):
    """Offers to different consumers use different nonce keys and may be redeemed in any order."""
    dl = deadline()
    t1 = terms(system)
    t2 = terms(system, consumer=system.cast.consumer2.address)
    n1, n2 = (1 << 64) | 0, (2 << 64) | 0
    s1, s2 = sign_grant(system, PROVIDER_IDX, t1, n1, dl), sign_grant(system, PROVIDER_IDX, t2, n2, dl)
    system.auth.grantBySignature(t2, n2, dl, s2, {"from": system.cast.consumer2})
    system.auth.grantBySignature(t1, n1, dl, s1, {"from": system.cast.consumer})
    assert system.auth.nonces(system.cast.provider, 1) == (1 << 64) | 1


def test_signature_expired_deadline_refused(system):
    t, dl = terms(system), now() - 1
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl)
    with reverts("SignatureExpired"):
        system.auth.grantBySignature(t, 0, dl, sig, {"from": system.cast.consumer})


def test_signature_wrong_chain_id_refused(system):
    t, dl = terms(system), deadline()
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl, chain_id=1)
    with reverts("InvalidGrantSignature"):
        system.auth.grantBySignature(t, 0, dl, sig, {"from": system.cast.consumer})


def test_signature_wrong_verifying_contract_refused(system):
    t, dl = terms(system), deadline()
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl, verifying=system.jobs.address)
    with reverts("InvalidGrantSignature"):
        system.auth.grantBySignature(t, 0, dl, sig, {"from": system.cast.consumer})


def test_signature_wrong_signer_refused(system):
    t, dl = terms(system), deadline()
    sig = sign_grant(system, CONSUMER_IDX, t, 0, dl)
    with reverts("InvalidGrantSignature", system.cast.provider, system.cast.consumer):
        system.auth.grantBySignature(t, 0, dl, sig, {"from": system.cast.consumer})


def test_signature_over_other_terms_refused(system):
    t, dl = terms(system), deadline()
    sig = sign_grant(system, PROVIDER_IDX, t, 0, dl)
    tampered = terms(system, maxUses=1000)
    with reverts("InvalidGrantSignature"):
        system.auth.grantBySignature(tampered, 0, dl, sig, {"from": system.cast.consumer})


# ---------------------------------------------------------------- lifecycle

def grant(system, **over):
    return system.auth.grant(terms(system, **over), {"from": system.cast.provider}).return_value


def test_revoke_by_holder_is_final(system):
    gid = grant(system)
    with reverts("NotAssetHolder", system.asset_id, system.cast.consumer):
        system.auth.revoke(gid, H("r"), {"from": system.cast.consumer})
    tx = system.auth.revoke(gid, H("breach"), {"from": system.cast.provider})
    assert tx.events["GrantRevoked"]["reasonHash"] == H("breach")
    with reverts("GrantNotActive", gid, REVOKED):
        system.auth.revoke(gid, H("r"), {"from": system.cast.provider})
    with reverts("UnknownGrant", 999):
        system.auth.revoke(999, H("r"), {"from": system.cast.provider})


def test_holder_freezes_and_unfreezes(system):
    gid = grant(system)
    tx = system.auth.freeze(gid, 3, {"from": system.cast.provider})
    assert tx.events["GrantFrozen"]["authority"] == HOLDER
    with reverts("AlreadyFrozen", gid, HOLDER):
        system.auth.freeze(gid, 3, {"from": system.cast.provider})
    system.auth.unfreeze(gid, {"from": system.cast.provider})
    assert system.auth.grantOf(gid)["frozenBy"] == 0
    with reverts("GrantNotFrozen", gid):
        system.auth.unfreeze(gid, {"from": system.cast.provider})


def test_monitor_alert_freeze_needs_regulator_to_restore(system):
    gid = grant(system)
    tx = system.auth.freeze(gid, 0x0101, {"from": system.cast.monitor})  # e.g. burst-of-queries alert
    ev = tx.events["GrantFrozen"]
    assert ev["authority"] == MONITOR and ev["reasonCode"] == 0x0101
    with reverts("FreezeHeldBy", gid, MONITOR):
        system.auth.unfreeze(gid, {"from": system.cast.provider})
    with reverts("FreezeHeldBy", gid, MONITOR):
        system.auth.unfreeze(gid, {"from": system.cast.monitor})
    tx = system.auth.unfreeze(gid, {"from": system.cast.regulator})
    assert tx.events["GrantUnfrozen"]["liftedAuthority"] == MONITOR


def test_regulator_freeze_escalates_and_holds(system):
    gid = grant(system)
    system.auth.freeze(gid, 1, {"from": system.cast.provider})
    system.auth.freeze(gid, 9, {"from": system.cast.regulator})
    with reverts("FreezeHeldBy", gid, REGULATOR):
        system.auth.unfreeze(gid, {"from": system.cast.provider})
    with reverts("AlreadyFrozen", gid, REGULATOR):
        system.auth.freeze(gid, 1, {"from": system.cast.monitor})
    system.auth.unfreeze(gid, {"from": system.cast.regulator})


def test_stranger_cannot_freeze(system):
    gid = grant(system)
    with reverts("NotFreezeAuthority", gid, system.cast.consumer):
        system.auth.freeze(gid, 1, {"from": system.cast.consumer})


def test_consumer_closes_with_destruction_proof(system):
    gid = grant(system)
    with reverts("NotGrantConsumer", gid, system.cast.provider):
        system.auth.close(gid, H("destroyed"), {"from": system.cast.provider})
    tx = system.auth.close(gid, H("destroyed"), {"from": system.cast.consumer})
    assert tx.events["GrantClosed"]["destructionProofHash"] == H("destroyed")
    assert system.auth.grantOf(gid)["status"] == CLOSED


def test_only_jobs_contract_consumes(system):
    gid = grant(system)
    with reverts("AccessControlUnauthorizedAccount", system.cast.consumer, H("JOBS")):
        system.auth.consume(gid, system.cast.consumer, HOM_AGG, {"from": system.cast.consumer})


def test_certificate_transfer_moves_grant_authority(system):
    gid = grant(system)
    p, p2 = system.cast.provider, system.cast.provider2
    system.assets.transferFrom(p, p2, system.asset_id, {"from": p})
    with reverts("NotAssetHolder", system.asset_id, p):
        system.auth.revoke(gid, H("r"), {"from": p})
    system.auth.revoke(gid, H("r"), {"from": p2})


def test_is_usable_view_tracks_terms(system):
    gid = grant(system, notBefore=now() + 1000)
    c = system.cast.consumer
    assert not system.auth.isUsable(gid, c, HOM_AGG)
    chain.sleep(1100)
    chain.mine()
    assert system.auth.isUsable(gid, c, HOM_AGG)
    assert not system.auth.isUsable(gid, c, DOWNLOAD)
    assert not system.auth.isUsable(gid, system.cast.consumer2, HOM_AGG)
