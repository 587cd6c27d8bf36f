"""Participant onboarding on the embedded chain (contracts/identity/Onboarding.sol through
chain/onboarding.py): application → review → admission, each rule holding and refusing with its
named error, and the IdentityRegistry's application gate."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3.logs import DISCARD

from chain import Space
from chain.accounts import dev_account
from chain.config import Settings
from chain.onboarding import (
    OnboardingClient,
    UnknownRoleApplication,
    document_cid,
    document_hash,
    role_hash,
)
from chain.tx import Reverted
from did.identity import Identity
from did.registry import IdentityRegistryClient
from tests.support.chains import deployed_on

DOC = b'{"organization": "Example Data Co", "jurisdiction": "CN", "purpose": "consume health statistics"}'
REASONS = b"documents complete; organisation checked"


@pytest.fixture(scope="module")
def deployed(embedded_node: Any, session_settings: Settings, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Settings, Space, Path]:
    """The system deployed afresh on the session's anvil, with this module's own home and deployment file."""
    return deployed_on(embedded_node.url, session_settings, tmp_path_factory.mktemp("onboarding"))


@pytest.fixture(scope="module")
def space(deployed: tuple[Settings, Space, Path]) -> Space:
    return deployed[1]


@pytest.fixture(scope="module")
def onb(space: Space) -> OnboardingClient:
    return OnboardingClient.from_deployment(space.w3, space.deployment)


def _bound(space: Space, index: int, name: str) -> Identity:
    ident = Identity.create(name, dev_account(index))
    IdentityRegistryClient(space.w3, space.c["IdentityRegistry"]).bind(ident)
    return ident


def _refused(error: str, fn: Any, *args: Any) -> Reverted:
    with pytest.raises(Reverted) as info:
        fn(*args)
    assert info.value.error == error, str(info.value)
    return info.value


def test_apply_review_admit(space: Space, onb: OnboardingClient) -> None:
    operator, stranger = dev_account(0), dev_account(7)
    applicant = _bound(space, 5, "applicant")
    app_id, r = onb.apply(applicant.account, "consumer", document_hash(DOC))
    ev = onb.contract.events.RoleApplicationSubmitted().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (ev["applicant"], ev["role"], ev["documentHash"]) == (applicant.address, role_hash("CONSUMER"),
                                                                 document_hash(DOC))
    assert ev["didHash"] == keccak(text=applicant.did)
    assert onb.contract.events.ReviewRequested().process_receipt(r, errors=DISCARD)[0]["args"]["subjectId"] == app_id
    a = onb.application(app_id)
    assert (a.state, a.role, a.applicant) == ("pending", "CONSUMER", applicant.address)
    assert a.to_json()["documentCid"] == document_cid(document_hash(DOC))
    assert [x.id for x in onb.applications(pending=True)] == [app_id]

    _refused("AccessControlUnauthorizedAccount", onb.decide, stranger, app_id, True, document_hash(REASONS))
    _refused("ApplicationNotApproved", onb.admit, operator, app_id, keccak(text="vc"), 0)
    onb.decide(operator, app_id, True, document_hash(REASONS))
    assert onb.application(app_id).state == "approved"
    assert onb.decision(app_id)["reasonsCid"] == document_cid(document_hash(REASONS))
    _refused("NotPendingReview", onb.decide, operator, app_id, False, document_hash(REASONS))
    _refused("AccessControlUnauthorizedAccount", onb.admit, stranger, app_id, keccak(text="vc"), 0)
    _refused("EmptyCredentialHash", onb.admit, operator, app_id, b"\0" * 32, 0)  # the registry's own rule

    r = onb.admit(operator, app_id, keccak(text="vc"), 0)
    admitted = onb.contract.events.RoleApplicationAdmitted().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (admitted["applicant"], admitted["operator"]) == (applicant.address, operator.address)
    granted = space.c["IdentityRegistry"].events.ParticipantRoleGranted().process_receipt(r, errors=DISCARD)
    assert granted[0]["args"]["credentialHash"] == keccak(text="vc")
    assert space.c["IdentityRegistry"].functions.hasParticipantRole(applicant.address, role_hash("CONSUMER")).call()
    assert onb.application(app_id).state == "admitted"
    _refused("ApplicationAlreadyAdmitted", onb.admit, operator, app_id, keccak(text="vc2"), 0)
    _refused("RoleAlreadyHeld", onb.apply, applicant.account, "CONSUMER", document_hash(DOC))


def test_application_refusals(space: Space, onb: OnboardingClient) -> None:
    operator = dev_account(0)
    _refused("ApplicantNotBound", onb.apply, dev_account(8), "PROVIDER", document_hash(DOC))
    applicant = _bound(space, 6, "second")
    fn = onb.contract.functions
    with pytest.raises(Reverted, match="UnknownParticipantRole"):
        onb._send(applicant.account, fn.applyForRole(keccak(text="KING"), document_hash(DOC),
                                                     onb.identity_fields(applicant.address)))
    did_h, doc, _kak, proof_h = onb.identity_fields(applicant.address)
    forged = (did_h, doc, keccak(text="a key never bound"), proof_h)
    _refused("IdentityMismatch", onb._send, applicant.account,  # the identity must be the applicant's current one
             fn.applyForRole(role_hash("PROVIDER"), document_hash(DOC), forged))
    _refused("EmptyDocumentHash", onb.apply, applicant.account, "PROVIDER", b"\0" * 32)
    first, _ = onb.apply(applicant.account, "PROVIDER", document_hash(DOC))
    e = _refused("ApplicationAlreadyOpen", onb.apply, applicant.account, "PROVIDER", document_hash(DOC))
    assert f"roleApplicationId={first}" in str(e)
    onb.decide(operator, first, False, document_hash(b"no proof of organisation"))
    assert onb.application(first).state == "rejected"
    _refused("ApplicationNotApproved", onb.admit, operator, first, keccak(text="vc"), 0)
    again, _ = onb.apply(applicant.account, "PROVIDER", document_hash(DOC + b" "))  # rejected: may apply again
    onb.decide(operator, again, True, document_hash(REASONS))
    stale = onb.identity_fields(applicant.address)
    IdentityRegistryClient(space.w3, space.c["IdentityRegistry"]).bind(Identity.create("other", dev_account(6)))
    _refused("IdentityMismatch", onb._send, operator,  # the identity it applied with is no longer current
             fn.admit(again, keccak(text="vc"), 0, stale))
    _refused("ApplicantRebound", onb.admit, operator, again, keccak(text="vc"), 0)  # now behind another DID

    _refused("UnknownRoleApplication", onb.decide, operator, 999, True, document_hash(REASONS))
    with pytest.raises(UnknownRoleApplication):
        onb.application(999)


def test_application_gate(space: Space, onb: OnboardingClient) -> None:
    """With the gate set, an operator's direct grant is refused; an approved application admits."""
    operator, registry = dev_account(0), space.c["IdentityRegistry"]
    applicant = _bound(space, 9, "gated")
    direct = registry.functions.grantParticipantRole(applicant.address, role_hash("DEVELOPER"), keccak(text="d"), 0)
    _refused("AccessControlUnauthorizedAccount", space.send, dev_account(7),
             registry.functions.setApplicationGate(onb.contract.address))
    space.send(operator, registry.functions.setApplicationGate(onb.contract.address))
    try:
        assert registry.functions.applicationGate().call() == onb.contract.address
        _refused("GrantRequiresApplication", space.send, operator, direct)
        app_id, _ = onb.apply(applicant.account, "DEVELOPER", document_hash(DOC))
        onb.decide(operator, app_id, True, document_hash(REASONS))
        onb.admit(operator, app_id, keccak(text="d"), space.now() + 86_400)
        assert registry.functions.hasParticipantRole(applicant.address, role_hash("DEVELOPER")).call()
    finally:
        space.send(operator, registry.functions.setApplicationGate("0x" + "00" * 20))
    space.send(operator, registry.functions.grantParticipantRole(applicant.address, role_hash("CONSUMER"),
                                                                 keccak(text="c"), 0))  # gate lifted
