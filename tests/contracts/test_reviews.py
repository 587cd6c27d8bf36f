"""Operator review (Reviewable): under a template that requires review a certificate starts
Pending — no grant can use it — and becomes Active when a reviewer approves it, or Rejected
(final) with the hash of the reasons; only reviewers decide, once."""
from conftest import DET_EQ, H, HOM_AGG, ROLES, mint_params, reverts, terms

ACTIVE, PENDING, REJECTED = 1, 4, 5
REVIEWER = H("REVIEWER")
APPROVED_STATUS, REJECTED_STATUS = 2, 3


def reviewed_template(system):
    op = system.cast.operator
    tid = system.templates.publish("reviewed", b"\x12\x20" + b"\x66" * 32, H("terms"), 1 | 2, 63,
                                   [7000, 1000, 1500, 500], {"from": op}).return_value
    system.templates.setReviewRequired(tid, True, {"from": op})
    system.assets.grantRole(REVIEWER, op, {"from": op})
    return tid


def test_pending_until_approved(system):
    c = system.cast
    tid = reviewed_template(system)
    assert system.templates.reviewRequired(tid)
    tx = system.assets.mint(mint_params(tid), {"from": c.provider})
    aid = tx.return_value
    assert tx.events["ReviewRequested"]["subjectId"] == aid
    assert system.assets.stateOf(aid) == PENDING
    with reverts("AssetNotUsable", aid, PENDING):  # no grant over a certificate under review
        system.auth.grant(terms(system, assetId=aid, operations=DET_EQ | HOM_AGG), {"from": c.provider})
    tx = system.assets.approveRegistration(aid, H("checked consent and ownership"), {"from": c.operator})
    assert tx.events["ReviewDecided"]["approved"] and system.assets.stateOf(aid) == ACTIVE
    assert system.assets.reviewOf(aid) == APPROVED_STATUS
    system.auth.grant(terms(system, assetId=aid, operations=DET_EQ | HOM_AGG), {"from": c.provider})


def test_rejected_is_final_and_only_reviewers_decide_once(system):
    c = system.cast
    tid = reviewed_template(system)
    aid = system.assets.mint(mint_params(tid), {"from": c.provider}).return_value
    with reverts("AccessControlUnauthorizedAccount", c.provider, REVIEWER):
        system.assets.approveRegistration(aid, H("self-approval"), {"from": c.provider})
    system.assets.rejectRegistration(aid, H("no consent record"), {"from": c.operator})
    assert system.assets.stateOf(aid) == REJECTED and system.assets.reviewOf(aid) == REJECTED_STATUS
    with reverts("NotPendingReview", aid, REJECTED_STATUS):
        system.assets.approveRegistration(aid, H("second thoughts"), {"from": c.operator})
    plain = system.assets.mint(mint_params(system.template_id), {"from": c.provider}).return_value
    assert system.assets.stateOf(plain) == ACTIVE and system.assets.reviewOf(plain) == 0
    with reverts("NotPendingReview", plain, 0):
        system.assets.approveRegistration(plain, H("nothing to review"), {"from": c.operator})


def test_only_the_operator_sets_review(system):
    with reverts("AccessControlUnauthorizedAccount"):
        system.templates.setReviewRequired(system.template_id, True, {"from": system.cast.provider})
    with reverts("UnknownTemplate", 99):
        system.templates.setReviewRequired(99, True, {"from": system.cast.operator})
