"""IdentityRegistry: DID binding (with its published proof, and the owner's take-over of a
squatted DID on an operator's attestation), credential-backed participant roles, revocation."""
from brownie import chain
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_utils import keccak

from chain.accounts import dev_account
from conftest import H, ROLES, reverts
from did.binding import binding_proof_hash, make_binding_proof, proof_bytes, verify_binding_proof
from did.keys import did_from_ed25519

DID = "did:key:z6MkNewcomer"
ZERO = "0x" + "00" * 20


def did_hash(did):
    return "0x" + keccak(text=did).hex()


def owned_did(index: int):
    """A fresh did:key and the two-way binding proof of its owner, dev account ``index``."""
    key = Ed25519PrivateKey.generate()
    did = did_from_ed25519(key.public_key())
    return did, make_binding_proof(key, dev_account(index), chain.id)


def test_bind_records_identity_and_event(system, accounts):
    acct = accounts[0]
    tx = system.identity.bind(DID, H("doc"), H("kak"), H("proof"), {"from": acct})
    ident = system.identity.identityOf(acct)
    assert ident[0] == did_hash(DID) and ident[2] == H("kak") and ident[4] == tx.timestamp
    assert ident[3] == "0x" + keccak(bytes.fromhex(H("proof")[2:])).hex()  # the hash of what was published
    assert system.identity.accountOfDid(did_hash(DID)) == acct
    ev = tx.events["IdentityBound"]
    assert ev["account"] == acct and ev["did"] == DID and ev["keyAgreementKey"] == H("kak")


def test_bind_publishes_the_binding_proof(system, accounts):
    did, proof = owned_did(2)
    tx = system.identity.bind(did, H("doc"), H("kak"), proof_bytes(proof), {"from": accounts[2]})
    ev = tx.events["IdentityBound"]
    assert bytes(ev["bindingProof"]) == proof_bytes(proof)  # anyone reading the event can verify it
    assert ev["bindingProofHash"] == "0x" + binding_proof_hash(proof).hex()
    assert system.identity.identityOf(accounts[2])[3] == "0x" + binding_proof_hash(proof).hex()
    verify_binding_proof(proof, did=did, address=accounts[2].address, chain_id=chain.id)


def test_bind_refuses_oversized_proof(system, accounts):
    with reverts("BindingProofTooLong", 2049, 2048):
        system.identity.bind(DID, H("doc"), H("kak"), b"\x01" * 2049, {"from": accounts[0]})


def test_owner_takes_over_squatted_did_on_operator_attestation(system, accounts):
    """A squatter binds the owner's DID first; the operator checks the owner's proof and attests
    it on chain; the owner's own bind then takes the DID over and the squatter loses its record."""
    op, squatter, owner = system.cast.operator, accounts[1], accounts[2]
    did, proof = owned_did(2)
    system.identity.bind(did, H("doc"), H("kak"), H("squatter's proof"), {"from": squatter})
    with reverts("DidAlreadyBound", did_hash(did), squatter):  # first come: the owner is blocked …
        system.identity.bind(did, H("doc"), H("kak"), proof_bytes(proof), {"from": owner})
    verify_binding_proof(proof, chain_id=chain.id)  # … until the operator has checked its proof off chain
    tx = system.identity.attestBinding(did_hash(did), owner, binding_proof_hash(proof), {"from": op})
    assert tx.events["BindingAttested"]["account"] == owner
    attested = system.identity.bindingAttestation(did_hash(did))
    assert attested[0] == owner and attested[1] == "0x" + binding_proof_hash(proof).hex()
    tx = system.identity.bind(did, H("doc"), H("kak"), proof_bytes(proof), {"from": owner})
    ev = tx.events["IdentitySuperseded"]
    assert ev["didHash"] == did_hash(did) and ev["previous"] == squatter and ev["account"] == owner
    assert system.identity.accountOfDid(did_hash(did)) == owner
    assert system.identity.identityOf(squatter)[0] == "0x" + "00" * 32  # the squatter is unbound
    assert system.identity.bindingAttestation(did_hash(did))[0] == ZERO  # used up
    with reverts("DidAlreadyBound", did_hash(did), owner):  # and cannot squat it again
        system.identity.bind(did, H("doc"), H("kak"), H("squatter's proof"), {"from": squatter})


def test_take_over_refused_without_the_attested_proof_and_account(system, accounts):
    op, squatter, owner = system.cast.operator, accounts[1], accounts[2]
    did, proof = owned_did(2)
    system.identity.bind(did, H("doc"), H("kak"), H("squatter's proof"), {"from": squatter})
    system.identity.attestBinding(did_hash(did), owner, binding_proof_hash(proof), {"from": op})
    with reverts("DidAlreadyBound", did_hash(did), squatter):  # another proof than the one attested
        system.identity.bind(did, H("doc"), H("kak"), H("other proof"), {"from": owner})
    with reverts("DidAlreadyBound", did_hash(did), squatter):  # another account presenting the proof
        system.identity.bind(did, H("doc"), H("kak"), proof_bytes(proof), {"from": accounts[3]})
    system.identity.attestBinding(did_hash(did), ZERO, "0x" + "00" * 32, {"from": op})  # withdrawn
    with reverts("DidAlreadyBound", did_hash(did), squatter):
        system.identity.bind(did, H("doc"), H("kak"), proof_bytes(proof), {"from": owner})


def test_attest_binding_is_operator_only(system, accounts):
    did, proof = owned_did(1)
    with reverts("AccessControlUnauthorizedAccount", accounts[1], ROLES["OPERATOR"]):  # a squatter attesting itself
        system.identity.attestBinding(did_hash(did), accounts[1], binding_proof_hash(proof), {"from": accounts[1]})


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
