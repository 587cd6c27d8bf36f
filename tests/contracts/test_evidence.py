"""Evidence: Merkle roots of operation-log batches and single hashes; inclusion proofs built by
the Python side (audit.merkle) verify on chain, and only for the right leaf and batch."""
import pytest

from conftest import H, now, reverts
from audit.merkle import MerkleTree, leaf_hash


def records(n):
    return [f'{{"seq":{i},"actor":"did:key:z6Mk","op":"HOM_AGG","asset":1}}'.encode() for i in range(n)]


def anchor(system, tree, count, sender=None):
    ts = now()
    return system.evidence.anchorBatch(tree.root, count, ts - 600, ts, b"bafy-batch",
                                       {"from": sender or system.cast.oracle})


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_every_record_of_a_batch_verifies(system, n):
    recs = records(n)
    tree = MerkleTree.from_records(recs)
    tx = anchor(system, tree, n)
    bid = tx.return_value
    ev = tx.events["BatchAnchored"]
    assert ev["producer"] == system.cast.oracle and ev["count"] == n and ev["root"] == "0x" + tree.root.hex()
    for i, rec in enumerate(recs):
        proof = tree.proof(i)
        assert system.evidence.verifyInclusion(bid, leaf_hash(rec), proof)
        assert system.evidence.verifyRecord(bid, rec, proof)


def test_wrong_leaf_proof_or_batch_does_not_verify(system):
    recs = records(5)
    tree = MerkleTree.from_records(recs)
    bid = anchor(system, tree, 5).return_value
    other = anchor(system, MerkleTree.from_records(records(4)), 4).return_value
    assert not system.evidence.verifyRecord(bid, b"forged line", tree.proof(0))
    assert not system.evidence.verifyRecord(bid, recs[1], tree.proof(0))
    assert not system.evidence.verifyRecord(other, recs[4], tree.proof(4))



def test_inner_node_preimage_is_not_a_record(system):
    """Second-preimage safety of double hashing: the 64 bytes under an inner node, offered as a
    record, do not verify (their leaf is keccak(keccak(bytes)), never keccak(bytes))."""
    tree = MerkleTree.from_records(records(4))
    bid = anchor(system, tree, 4).return_value
    a, b = sorted(tree.levels[0][:2])
    assert not system.evidence.verifyRecord(bid, a + b, tree.proof(0)[1:])
    assert system.evidence.verifyInclusion(bid, tree.levels[1][0], tree.proof(0)[1:])  # why raw leaves need care


def test_batch_record_and_refusals(system):
    tree = MerkleTree.from_records(records(2))
    bid = anchor(system, tree, 2).return_value
    b = system.evidence.batchOf(bid)
    assert b["producer"] == system.cast.oracle and b["count"] == 2 and system.evidence.batchCount() == bid
    ts = now()
    with reverts("ZeroRoot"):
        system.evidence.anchorBatch("0x" + "00" * 32, 2, ts - 1, ts, b"", {"from": system.cast.oracle})
    with reverts("EmptyBatch"):
        system.evidence.anchorBatch(tree.root, 0, ts - 1, ts, b"", {"from": system.cast.oracle})
    with reverts("InvalidPeriod", ts, ts - 5):
        system.evidence.anchorBatch(tree.root, 2, ts, ts - 5, b"", {"from": system.cast.oracle})
    with reverts("InvalidPeriod"):
        system.evidence.anchorBatch(tree.root, 2, ts, ts + 10**6, b"", {"from": system.cast.oracle})
    with reverts("UnknownBatch", 99):
        system.evidence.verifyInclusion(99, tree.root, [])


def test_single_hash_anchored_once_per_producer(system):
    c = system.cast
    tx = system.evidence.anchorHash(H("destruction-proof"), H("DESTRUCTION_PROOF"), {"from": c.consumer})
    assert tx.events["HashAnchored"]["kind"] == H("DESTRUCTION_PROOF")
    assert system.evidence.anchoredAt(c.consumer, H("destruction-proof")) == tx.timestamp
    with reverts("HashAlreadyAnchored", H("destruction-proof"), c.consumer, tx.timestamp):
        system.evidence.anchorHash(H("destruction-proof"), H("DESTRUCTION_PROOF"), {"from": c.consumer})
    system.evidence.anchorHash(H("destruction-proof"), H("WITNESS"), {"from": c.regulator})  # others may attest too


def test_single_hash_about_a_subject(system):
    c = system.cast
    fn = system.evidence.anchorHash["bytes32,bytes32,uint256"]
    tx = fn(H("quality-report-v2"), H("QUALITY_REPORT"), system.asset_id, {"from": c.provider})
    ev = tx.events["HashAnchored"]
    assert (ev["hash"], ev["producer"], ev["kind"], ev["subjectId"]) == (
        H("quality-report-v2"), c.provider, H("QUALITY_REPORT"), system.asset_id)
    no_subject = system.evidence.anchorHash(H("x"), H("NOTE"), {"from": c.provider})
    assert no_subject.events["HashAnchored"]["subjectId"] == 0
    with reverts("ZeroHash"):
        fn("0x" + "00" * 32, H("QUALITY_REPORT"), 1, {"from": c.provider})
    with reverts("HashAlreadyAnchored", H("quality-report-v2"), c.provider, tx.timestamp):
        fn(H("quality-report-v2"), H("QUALITY_REPORT"), 2, {"from": c.provider})
