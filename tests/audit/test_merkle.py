"""Merkle batches: every record's proof verifies; any change to a record or proof fails."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from audit.merkle import MerkleError, MerkleTree, leaf_hash, verify


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=40), st.data())
def test_every_proof_verifies(records, data):
    tree = MerkleTree.from_records(records)
    i = data.draw(st.integers(0, len(records) - 1))
    assert verify(tree.proof(i), tree.root, leaf_hash(records[i]))
    assert not verify(tree.proof(i), tree.root, leaf_hash(records[i] + b"x"))


def test_single_leaf_root_is_leaf():
    tree = MerkleTree.from_records([b"only"])
    assert tree.root == leaf_hash(b"only") and tree.proof(0) == []


def test_wrong_sibling_fails():
    tree = MerkleTree.from_records([b"a", b"b", b"c"])
    proof = tree.proof(0)
    proof[0] = b"\x00" * 32
    assert not verify(proof, tree.root, leaf_hash(b"a"))


def test_empty_and_out_of_range_refused():
    with pytest.raises(MerkleError, match="empty"):
        MerkleTree.from_leaves([])
    with pytest.raises(MerkleError, match="outside"):
        MerkleTree.from_records([b"a"]).proof(1)
