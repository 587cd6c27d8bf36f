import pytest
from eth_account.messages import encode_defunct

from eth_utils import keccak

from did.binding import (DID_DOMAIN, binding_proof_hash, check_published_binding, load_binding_proof,
                         make_binding_proof, proof_bytes, verify_binding_proof)
from did.document import canonical_json
from did.errors import DidNotBound
from did.keys import b64u


def test_binding_verifies_both_ways_offline(alice):
    proof = make_binding_proof(alice.ed25519, alice.account, 31337)
    st = verify_binding_proof(proof, did=alice.did, address=alice.address, chain_id=31337)
    assert (st["did"], st["address"]) == (alice.did, alice.address)
    assert len(binding_proof_hash(proof)) == 32
    assert binding_proof_hash(proof) == binding_proof_hash(dict(reversed(list(proof.items()))))


def test_binding_for_other_account_or_did_or_chain_refused(alice, bob):
    proof = make_binding_proof(alice.ed25519, alice.account, 31337)
    with pytest.raises(DidNotBound, match="not 0x"):
        verify_binding_proof(proof, address=bob.address)
    with pytest.raises(DidNotBound):
        verify_binding_proof(proof, did=bob.did)
    with pytest.raises(DidNotBound, match="chain"):
        verify_binding_proof(proof, chain_id=1)


def test_account_did_not_sign_refused(alice, bob):
    """Alice's DID key claims Bob's address, but Bob's account never signed: not bound."""
    proof = make_binding_proof(alice.ed25519, alice.account, 31337)
    st = dict(proof["statement"], address=bob.address)
    forged = dict(proof, statement=st,
                  didSignature=b64u(alice.ed25519.sign(DID_DOMAIN + canonical_json(st))))
    with pytest.raises(DidNotBound, match="did not sign"):
        verify_binding_proof(forged)


def test_did_controller_did_not_sign_refused(alice, bob):
    """Bob's account signs a claim on Alice's DID, signed by Bob's DID key: refused."""
    proof = make_binding_proof(bob.ed25519, bob.account, 31337)
    st = dict(proof["statement"], did=alice.did)
    acct_sig = bob.account.sign_message(encode_defunct(text=canonical_json(st).decode())).signature
    forged = dict(proof, statement=st, accountSignature="0x" + bytes(acct_sig).hex())
    with pytest.raises(DidNotBound, match="controller"):
        verify_binding_proof(forged)


def test_malformed_binding_refused(alice):
    proof = make_binding_proof(alice.ed25519, alice.account, 31337)
    for bad in ({}, dict(proof, accountSignature="zz"), dict(proof, statement={"type": "x"}),
                dict(proof, accountSignature="0x" + "00" * 65)):
        with pytest.raises(DidNotBound):
            verify_binding_proof(bad)


def test_published_proof_verifies_for_its_own_did_account_and_chain(alice):
    """What ``bind`` publishes: the canonical bytes, whose keccak256 is ``bindingProofHash``."""
    proof = make_binding_proof(alice.ed25519, alice.account, 31337)
    raw = proof_bytes(proof)
    assert keccak(raw) == binding_proof_hash(proof) and load_binding_proof(raw) == proof
    st = check_published_binding(raw, did=alice.did, address=alice.address, chain_id=31337)
    assert st["address"] == alice.address


def test_published_proof_of_a_squatter_refused(alice, bob):
    """Bob's account binds Alice's DID: whatever it publishes, no proof passes for (Alice's DID, Bob)."""
    alices = proof_bytes(make_binding_proof(alice.ed25519, alice.account, 31337))
    with pytest.raises(DidNotBound, match="not 0x"):  # Alice's real proof, replayed by Bob
        check_published_binding(alices, did=alice.did, address=bob.address, chain_id=31337)
    with pytest.raises(DidNotBound, match="chain"):  # replayed on another chain
        check_published_binding(alices, did=alice.did, address=alice.address, chain_id=1)
    bobs = proof_bytes(make_binding_proof(bob.ed25519, bob.account, 31337))
    with pytest.raises(DidNotBound, match="is for"):  # Bob's own proof, for his own DID
        check_published_binding(bobs, did=alice.did, address=bob.address, chain_id=31337)
    for junk in (b"", b"\x00" * 32, b"[1]", b"\xff\xfe", b" " + alices, alices.replace(b":", b": ", 1)):
        with pytest.raises(DidNotBound):  # placeholders, non-JSON, non-canonical bytes
            check_published_binding(junk, did=alice.did, address=alice.address, chain_id=31337)
