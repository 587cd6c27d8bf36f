"""On chain: IdentityRegistry deployed to the session anvil; verification from the DID and the chain only."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from did.binding import make_binding_proof, proof_bytes
from did.credentials import credential_hash, issue_role_credential, verify_role_credential
from did.envelope import open_envelope, seal
from did.errors import CredentialRevoked, DidNotBound, InvalidDocument, UnknownDid, UntrustedIssuer
from did.identity import Identity
from did.registry import ChainTrust, IdentityRegistryClient
from chain.accounts import dev_account
from chain.compiler import compile_project
from chain.connection import connect
from chain.deploy import deploy_artifact
from chain.tx import Reverted, Sender


@pytest.fixture(scope="module")
def chain(embedded_node, session_settings):
    w3 = connect(session_settings)
    artifacts = compile_project(session_settings)
    admin = dev_account(0)
    contract = deploy_artifact(Sender(w3, admin), artifacts["IdentityRegistry"], admin.address)
    return w3, contract


@pytest.fixture(scope="module")
def people():
    # dev accounts are funded on anvil; the DID and key-agreement keys are fresh
    return {"operator": Identity.create("operator", dev_account(0)),
            "alice": Identity.create("alice", dev_account(3)),
            "mallory": Identity.create("mallory", dev_account(4))}


@pytest.fixture(scope="module")
def registry(chain, people):
    w3, contract = chain
    client = IdentityRegistryClient(w3, contract)
    for p in people.values():
        client.bind(p)
    return client


def fresh_view(chain) -> IdentityRegistryClient:
    """What another machine has: the chain's address and ABI — no keys, no files of ours."""
    w3, contract = chain
    return IdentityRegistryClient(w3, w3.eth.contract(address=contract.address, abi=contract.abi))


def test_bind_records_did_document_and_binding(chain, registry, people):
    alice = people["alice"]
    view = fresh_view(chain)
    rec = view.verify_identity(alice.did, document=alice.document, binding_proof=alice.binding)
    assert rec.account == alice.address and rec.key_agreement_key == alice.x25519_public
    assert rec.doc_digest == alice.document_digest
    assert view.account_of_did(alice.did) == alice.address
    with pytest.raises(InvalidDocument):
        view.verify_identity(alice.did, document=people["mallory"].document)
    with pytest.raises(DidNotBound):
        view.verify_identity(alice.did, binding_proof=people["mallory"].binding)
    with pytest.raises(UnknownDid):
        view.resolve(Identity.create("ghost").did)


def test_another_accounts_bind_of_a_did_is_not_taken_for_it(chain, registry, people):
    """No uniqueness on chain: another account may bind alice's DID (here replaying her proof), but
    its binding is never alice's: the proof names alice's account, not the binder's."""
    alice, thief = people["alice"], dev_account(5)
    registry.sender(thief).send(registry.contract.functions.bind(
        alice.did, alice.document_digest, alice.x25519_public, proof_bytes(alice.binding)))
    view = fresh_view(chain)
    assert {b.account for b in view.bindings_of_did(alice.did)} == {alice.address, thief.address}
    assert view.account_of_did(alice.did) == alice.address
    assert view.identity_of(thief.address).did == alice.did  # the thief's record, unverified


def test_credential_verifies_from_did_and_chain_then_revocation(chain, registry, people):
    op, alice = people["operator"], people["alice"]
    vc = issue_role_credential(op, alice.did, "PROVIDER", "Acme Hospital", days=30, subject_account=alice.address)
    registry.grant_from_credential(op.account, vc)
    view = fresh_view(chain)
    trust = ChainTrust(view)
    v = verify_role_credential(vc, trust, holder_did=alice.did, holder_account=alice.address, role="PROVIDER")
    assert v.issuer == op.did
    assert view.has_participant_role(alice.address, "PROVIDER")
    h, until = view.role_credential(alice.address, "PROVIDER")
    assert h == credential_hash(vc) and until == int(v.valid_until.timestamp())
    registry.revoke_credential(op.account, vc, "left the consortium")
    assert view.is_credential_revoked(vc)
    assert not view.has_participant_role(alice.address, "PROVIDER")
    with pytest.raises(CredentialRevoked):
        verify_role_credential(vc, ChainTrust(fresh_view(chain)))


def test_issuer_without_operator_role_is_untrusted(chain, registry, people):
    mallory, alice = people["mallory"], people["alice"]
    vc = issue_role_credential(mallory, alice.did, "REGULATOR", "Mallory Ltd", days=1)
    with pytest.raises(UntrustedIssuer):
        verify_role_credential(vc, ChainTrust(fresh_view(chain)))
    with pytest.raises(Reverted, match="AccessControl"):  # nor can mallory grant it on chain
        registry.grant_from_credential(mallory.account, vc, alice.binding)
    op_vc = issue_role_credential(people["operator"], alice.did, "CONSUMER", "Acme", days=1)
    with pytest.raises(UntrustedIssuer):  # pinned anchors narrow the chain's operators
        verify_role_credential(op_vc, ChainTrust(fresh_view(chain), anchors={mallory.did}))


def test_presenter_not_bound_to_did_refused(chain, registry, people):
    op, alice, mallory = people["operator"], people["alice"], people["mallory"]
    vc = issue_role_credential(op, alice.did, "CONSUMER", "Acme", days=1)
    with pytest.raises(DidNotBound):
        verify_role_credential(vc, ChainTrust(fresh_view(chain)), holder_account=mallory.address)
    unbound = Identity.create("nobody")
    vc2 = issue_role_credential(op, unbound.did, "CONSUMER", "Acme", days=1)
    with pytest.raises(DidNotBound):
        registry.grant_from_credential(op.account, vc2)


def test_expired_role_stops_counting_on_chain(chain, registry, people):
    op, mallory = people["operator"], people["mallory"]
    now = datetime.now(timezone.utc)
    vc = issue_role_credential(op, mallory.did, "DEVELOPER", "M", valid_from=now, valid_until=now + timedelta(days=1))
    registry.grant_from_credential(op.account, vc, mallory.binding)
    assert registry.has_participant_role(mallory.address, "DEVELOPER")
    registry.revoke_participant_role(op.account, mallory.address, "DEVELOPER", "test")
    assert not registry.has_participant_role(mallory.address, "DEVELOPER")


def test_seal_to_key_found_on_chain(chain, registry, people):
    op, alice = people["operator"], people["alice"]
    key = fresh_view(chain).key_agreement_key(alice.did)
    env = seal(op, alice.did, key, b"result bytes", "job-1")
    assert open_envelope(alice, env.to_bytes(), expected_sender=op.did) == b"result bytes"


def test_squatted_did_gains_nothing(chain, registry, people):
    """mallory's account binds a victim's DID (the victim never binds): the chain holds that
    record, but no reader takes it for the DID, since its proof is not signed by the victim's key."""
    op, mallory = people["operator"], people["mallory"]
    victim = Identity.create("victim", dev_account(7))
    squatter = Identity(victim.name, victim.ed25519, victim.x25519, dev_account(8))
    squatter.binding = make_binding_proof(mallory.ed25519, dev_account(8), registry.chain_id)  # mallory's own DID key
    registry.sender(dev_account(8)).send(registry.contract.functions.bind(
        victim.did, victim.document_digest, mallory.x25519_public, proof_bytes(squatter.binding)))
    view = fresh_view(chain)
    assert [b.account for b in view.bindings_of_did(victim.did)] == [dev_account(8).address]  # on chain …
    assert view.account_of_did(victim.did) is None  # … but its published proof is not the victim key's
    assert view.verified_account_of_did(victim.did) is None
    with pytest.raises(DidNotBound):  # no proof signed by the victim's DID key matches the record
        view.verify_identity(victim.did, binding_proof=squatter.binding)
    with pytest.raises(DidNotBound):
        ChainTrust(view, binding_proofs=[squatter.binding])
    vc = issue_role_credential(op, victim.did, "PROVIDER", "Victim Co", days=1, subject_account=victim.address)
    with pytest.raises(DidNotBound, match="binding proof"):  # the operator will not grant it to mallory
        registry.grant_from_credential(op.account, vc)
    bare = issue_role_credential(op, victim.did, "PROVIDER", "Victim Co", days=1)  # names no account
    with pytest.raises(DidNotBound, match="binding proof"):
        registry.grant_from_credential(op.account, bare)
    with pytest.raises(DidNotBound):  # the squatter cannot hold it either
        verify_role_credential(bare, ChainTrust(view), holder_account=dev_account(8).address)
    assert not view.has_participant_role(dev_account(8).address, "PROVIDER")


def test_holder_account_proven_by_binding_proof(chain, registry, people):
    op, alice = people["operator"], people["alice"]
    bare = issue_role_credential(op, alice.did, "CONSUMER", "Acme", days=1)
    with pytest.raises(DidNotBound, match="binding proof"):
        verify_role_credential(bare, ChainTrust(fresh_view(chain)), holder_account=alice.address)
    trust = ChainTrust(fresh_view(chain), binding_proofs=[alice.binding])
    assert verify_role_credential(bare, trust, holder_account=alice.address).subject_did == alice.did
    registry.grant_from_credential(op.account, bare, alice.binding)
    assert fresh_view(chain).role_credential(alice.address, "CONSUMER")[0] == credential_hash(bare)


def test_squatter_blocks_no_one(chain, registry, people):
    """A squatter binds the owner's DID first (replaying the owner's real proof): nothing is sealed
    to its key, and the owner's own bind goes through and is the DID's account, before and after
    the squatter binds again."""
    mallory = people["mallory"]
    owner = Identity.create("owner", dev_account(9))
    squatter = dev_account(6)
    replayed = owner.binding_proof(registry.chain_id)  # the owner's real proof, replayed by the squatter
    squat = registry.contract.functions.bind(owner.did, owner.document_digest, mallory.x25519_public,
                                             proof_bytes(replayed))
    registry.sender(squatter).send(squat)
    view = fresh_view(chain)
    assert view.verified_account_of_did(owner.did) is None  # the proof names the owner's account, not the squatter's
    with pytest.raises(DidNotBound, match="signed by the DID's key"):  # nothing is sealed to the squatter's key
        view.key_agreement_key(owner.did)
    assert view.key_agreement_key(owner.did, verified=False) == mallory.x25519_public  # what the chain alone says
    registry.bind(owner)  # not blocked
    assert view.account_of_did(owner.did) == owner.address
    assert view.published_binding_proof(owner.did) == owner.binding
    assert view.key_agreement_key(owner.did) == owner.x25519_public  # answers are sealed to the owner's key
    registry.sender(squatter).send(squat)  # the squatter binds again, later than the owner
    assert view.account_of_did(owner.did) == owner.address  # the latest *verified* binding counts
    assert view.bindings_of_did(owner.did)[0].account == squatter.address
    assert view.identity_of(squatter.address).key_agreement_key == mallory.x25519_public


def test_rebound_account_no_longer_names_its_old_did(chain, registry, people):
    """Only current bindings count: an account that binds another DID drops out of the old one."""
    holder = Identity.create("holder", dev_account(2))
    registry.bind(holder)
    view = fresh_view(chain)
    assert view.account_of_did(holder.did) == holder.address
    other = Identity.create("holder-2", dev_account(2))
    registry.bind(other)
    assert view.account_of_did(holder.did) is None and view.bindings_of_did(holder.did) == []
    assert view.account_of_did(other.did) == holder.address
    with pytest.raises(UnknownDid):
        view.resolve(holder.did)


def test_honest_binding_is_verified_from_the_chain(chain, registry, people):
    alice = people["alice"]
    view = fresh_view(chain)
    assert view.verified_account_of_did(alice.did) == alice.address
    assert view.published_binding_proof(alice.did) == alice.binding
    assert view.verified_account_of_did(Identity.create("ghost").did) is None
