"""IdentityRegistry: DID binding, credential-backed participant roles, revocation."""
from brownie import chain
from eth_utils import keccak

from conftest import H, ROLES, reverts

DID = "did:key:z6MkNewcomer"


def did_hash(did):
    return "0x" + keccak(text=did).hex()


def test_bind_records_identity_and_event(system, accounts):
    acct = accounts[0]
    tx = system.identity.bind(DID, H("doc"), H("kak"), H("proof"), {"from": acct})
    ident = system.identity.identityOf(acct)
    assert ident[0] == did_hash(DID) and ident[2] == H("kak") and ident[4] == tx.timestamp
    assert system.identity.accountOfDid(did_hash(DID)) == acct
    ev = tx.events["IdentityBound"]
    assert ev["account"] == acct and ev["did"] == DID and ev["keyAgreementKey"] == H("kak")


def test_bind_refuses_empty_did(system, accounts):
    with reverts("EmptyDid"):
        system.identity.bind("", H("doc"), H("kak"), H("proof"), {"from": accounts[0]})


def test_bind_refuses_did_bound_to_another_account(system, accounts):
    system.identity.bind(DID, H("doc"), H("kak"), H("proof"), {"from": accounts[0]})
    with reverts("DidAlreadyBound", did_hash(DID), accounts[0]):
        system.identity.bind(DID, H("doc"), H("kak"), H("proof"), {"from": accounts[1]})


def test_rebind_same_did_rotates_key_and_new_did_releases_old(system, accounts):
    acct = accounts[0]
    system.identity.bind(DID, H("doc"), H("kak"), H("proof"), {"from": acct})
    system.identity.bind(DID, H("doc2"), H("kak2"), H("proof2"), {"from": acct})
    assert system.identity.identityOf(acct)[2] == H("kak2")
    system.identity.bind(DID + "-2", H("doc"), H("kak"), H("proof"), {"from": acct})
    assert system.identity.accountOfDid(did_hash(DID)) == "0x" + "00" * 20
    system.identity.bind(DID, H("doc"), H("kak"), H("proof"), {"from": accounts[1]})  # released: free again
    assert system.identity.accountOfDid(did_hash(DID)) == accounts[1]


def test_operator_grants_role_backed_by_credential(system, accounts):
    op, acct = system.cast.operator, accounts[0]
    system.identity.bind(DID, H("doc"), H("kak"), H("proof"), {"from": acct})
    tx = system.identity.grantParticipantRole(acct, ROLES["DEVELOPER"], H("vc"), 0, {"from": op})
    assert system.identity.hasParticipantRole(acct, ROLES["DEVELOPER"])
    cred, until = system.identity.roleCredential(acct, ROLES["DEVELOPER"])
    assert cred == H("vc") and until == 0
    assert tx.events["ParticipantRoleGranted"]["credentialHash"] == H("vc")


def test_grant_refuses_non_operator(system, accounts):
    with reverts("AccessControlUnauthorizedAccount", accounts[1], ROLES["OPERATOR"]):
        system.identity.grantParticipantRole(system.cast.provider, ROLES["CONSUMER"], H("vc"), 0,
                                             {"from": accounts[1]})


def test_grant_refuses_unbound_account(system, accounts):
    with reverts("NotBound", accounts[0]):
        system.identity.grantParticipantRole(accounts[0], ROLES["CONSUMER"], H("vc"), 0,
                                             {"from": system.cast.operator})


def test_grant_refuses_unknown_role_empty_credential_past_validity(system):
    op, acct = system.cast.operator, system.cast.provider
    with reverts("UnknownParticipantRole", H("JANITOR")):
        system.identity.grantParticipantRole(acct, H("JANITOR"), H("vc"), 0, {"from": op})
    with reverts("EmptyCredentialHash", acct, ROLES["CONSUMER"]):
        system.identity.grantParticipantRole(acct, ROLES["CONSUMER"], "0x" + "00" * 32, 0, {"from": op})
    past = chain[-1].timestamp - 10
    with reverts("InvalidValidity", past):
        system.identity.grantParticipantRole(acct, ROLES["CONSUMER"], H("vc2"), past, {"from": op})


def test_role_expires_with_its_validity(system):
    op, acct = system.cast.operator, system.cast.provider
    until = chain[-1].timestamp + 100
    system.identity.grantParticipantRole(acct, ROLES["DEVELOPER"], H("vc-dev"), until, {"from": op})
    assert system.identity.hasParticipantRole(acct, ROLES["DEVELOPER"])
    chain.sleep(200)
    chain.mine()
    assert not system.identity.hasParticipantRole(acct, ROLES["DEVELOPER"])


def test_revoke_role_and_refuse_revoking_unheld(system):
    op, acct = system.cast.operator, system.cast.provider
    tx = system.identity.revokeParticipantRole(acct, ROLES["PROVIDER"], H("misconduct"), {"from": op})
    assert not system.identity.hasParticipantRole(acct, ROLES["PROVIDER"])
    assert tx.events["ParticipantRoleRevoked"]["reasonHash"] == H("misconduct")
    with reverts("RoleNotHeld", acct, ROLES["PROVIDER"]):
        system.identity.revokeParticipantRole(acct, ROLES["PROVIDER"], H("again"), {"from": op})


def test_revoked_credential_stops_counting_and_cannot_back_new_roles(system):
    op, acct = system.cast.operator, system.cast.provider
    cred = system.identity.roleCredential(acct, ROLES["PROVIDER"])[0]
    system.identity.revokeCredential(cred, H("leaked"), {"from": op})
    assert system.identity.isCredentialRevoked(cred)
    assert not system.identity.hasParticipantRole(acct, ROLES["PROVIDER"])
    with reverts("CredentialIsRevoked", cred):
        system.identity.grantParticipantRole(acct, ROLES["PROVIDER"], cred, 0, {"from": op})
    with reverts("CredentialIsRevoked", cred):
        system.identity.revokeCredential(cred, H("leaked"), {"from": op})
