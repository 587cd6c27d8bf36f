"""IdentityRegistry: DID binding (one commitment slot per account, the record and the proof's
hash in the event, the proof in the call data; no DID uniqueness on chain), credential-backed
participant roles, revocation."""
from brownie import chain, web3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_abi import encode
from eth_utils import keccak

from chain.accounts import dev_account
from chain.identities import proof_from_input
from conftest import H, ROLES, reverts
from did.binding import binding_proof_hash, make_binding_proof, proof_bytes, verify_binding_proof
from did.keys import did_from_ed25519

DID = "did:key:z6MkNewcomer"
ZERO32 = "0x" + "00" * 32


def did_hash(did):
    return "0x" + keccak(text=did).hex()


def owned_did(index: int):
    """A fresh did:key and the two-way binding proof of its owner, dev account ``index``."""
    key = Ed25519PrivateKey.generate()
    did = did_from_ed25519(key.public_key())
    return did, make_binding_proof(key, dev_account(index), chain.id)


def record(did, doc, kak, proof: bytes):
    """The ``Identity`` struct ``bind(did, doc, kak, proof)`` commits to."""
    return (did_hash(did), doc, kak, "0x" + keccak(proof).hex())


def commitment(rec) -> str:
    return "0x" + keccak(encode(["bytes32"] * 4, [bytes.fromhex(x[2:]) for x in rec]))[:27].hex()


def test_bind_commits_to_the_record_and_logs_it(system, accounts):
    acct, proof = accounts[0], bytes.fromhex(H("proof")[2:])
    tx = system.identity.bind(DID, H("doc"), H("kak"), proof, {"from": acct})
    rec = record(DID, H("doc"), H("kak"), proof)
    c, bound_at = system.identity.commitmentOf(acct)
    assert c == commitment(rec) == system.identity.identityCommitment(rec) and bound_at == tx.timestamp
    assert system.identity.isBound(acct) and system.identity.isCurrentIdentity(acct, rec)
    ev = tx.events["IdentityBound"]
    assert ev["account"] == acct and ev["did"] == DID and ev["didHash"] == did_hash(DID)
    assert (ev["didDocDigest"], ev["keyAgreementKey"], ev["bindingProofHash"]) == rec[1:]
    assert "bindingProof" not in ev.keys()  # published once, in the call data


def test_first_bind_writes_one_slot(system, accounts):
    """Issue 14: a first binding with a real did:key proof stays within 60,000 gas."""
    did, proof = owned_did(2)
    assert not system.identity.isBound(accounts[2])  # the monitor's account never bound
    tx = system.identity.bind(did, H("doc"), H("kak"), proof_bytes(proof), {"from": accounts[2]})
    assert len(proof_bytes(proof)) > 400 and tx.gas_used <= 60_000, tx.gas_used


def test_bind_publishes_the_binding_proof_in_its_input(system, accounts):
    did, proof = owned_did(2)
    tx = system.identity.bind(did, H("doc"), H("kak"), proof_bytes(proof), {"from": accounts[2]})
    ev = tx.events["IdentityBound"]
    assert ev["bindingProofHash"] == "0x" + binding_proof_hash(proof).hex()
    data = bytes(web3.eth.get_transaction(tx.txid)["input"])
    assert proof_from_input(data, binding_proof_hash(proof)) == proof_bytes(proof)  # anyone can verify it
    assert proof_from_input(data, keccak(b"another proof")) is None
    assert system.identity.isCurrentIdentity(accounts[2], record(did, H("doc"), H("kak"), proof_bytes(proof)))
    verify_binding_proof(proof, did=did, address=accounts[2].address, chain_id=chain.id)


def test_bind_refuses_oversized_proof(system, accounts):
    with reverts("BindingProofTooLong", 2049, 2048):
        system.identity.bind(DID, H("doc"), H("kak"), b"\x01" * 2049, {"from": accounts[0]})


def test_bind_refuses_empty_did(system, accounts):
    with reverts("EmptyDid"):
        system.identity.bind("", H("doc"), H("kak"), H("proof"), {"from": accounts[0]})


def test_squatter_blocks_no_one(system, accounts):
    """No DID uniqueness on chain: a squatter binds the owner's DID first, the owner still binds it;
    both records stand, and only the owner's carries a proof the DID's key signed (readers' rule)."""
    squatter, owner = accounts[1], accounts[2]
    did, proof = owned_did(2)
    system.identity.bind(did, H("doc"), H("kak"), H("squatter's proof"), {"from": squatter})
    tx = system.identity.bind(did, H("doc"), H("kak"), proof_bytes(proof), {"from": owner})
    assert tx.events["IdentityBound"]["account"] == owner
    assert system.identity.isCurrentIdentity(owner, record(did, H("doc"), H("kak"), proof_bytes(proof)))
    squatted = record(did, H("doc"), H("kak"), bytes.fromhex(H("squatter's proof")[2:]))
    assert system.identity.isCurrentIdentity(squatter, squatted)
    assert not system.identity.isCurrentIdentity(owner, squatted)  # a record is the account's own


def test_rebind_overwrites_the_commitment(system, accounts):
    acct = accounts[0]
    system.identity.bind(DID, H("doc"), H("kak"), H("proof"), {"from": acct})
    old = record(DID, H("doc"), H("kak"), bytes.fromhex(H("proof")[2:]))
    tx = system.identity.bind(DID, H("doc2"), H("kak2"), H("proof2"), {"from": acct})
    new = record(DID, H("doc2"), H("kak2"), bytes.fromhex(H("proof2")[2:]))
    assert system.identity.isCurrentIdentity(acct, new) and not system.identity.isCurrentIdentity(acct, old)
    assert system.identity.commitmentOf(acct)[1] == tx.timestamp
    assert tx.gas_used < 40_000  # the slot is overwritten, not created


def test_unbound_account_has_no_identity(system, accounts):
    monitor = accounts[2]  # the one cast member the fixture does not bind
    assert not system.identity.isBound(monitor)
    c, bound_at = system.identity.commitmentOf(monitor)
    assert c == "0x" + "00" * 27 and bound_at == 0
    assert not system.identity.isCurrentIdentity(monitor, (ZERO32, ZERO32, ZERO32, ZERO32))


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
