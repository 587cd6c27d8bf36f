"""Merkle trees that OpenZeppelin's ``MerkleProof.verify`` accepts.

Convention (the Evidence contract and every verifier use the same):
- leaf  = keccak256(keccak256(record_bytes))  — double hashing, so a leaf can never be
  confused with an inner node (second-preimage safety);
- inner = keccak256(min(a, b) ‖ max(a, b))    — sorted pairs (OZ's commutative hash), so a
  proof is just the list of siblings;
- an odd node at the end of a level is carried up unchanged.
A tree of one leaf has root = that leaf and an empty proof.

Under the ``sm`` cryptography profile (docs/crypto-profile.md) the same construction runs over
SM3 (``hash_name="sm3"``); such a root is still anchored through Evidence, but the contract's
``verifyRecord`` / ``verifyInclusion`` recompute keccak256 and cannot check it: SM3 proofs are
verified off chain against the anchored root.
"""
from __future__ import annotations

from dataclasses import dataclass

from chain.crypto_profile import hash_function

KECCAK = "keccak256"


class MerkleError(ValueError):
    """An empty batch, or a leaf index outside the tree."""


def leaf_hash(record: bytes, hash_name: str = KECCAK) -> bytes:
    """The leaf for one canonical log record: H(H(record)), H = keccak256 or SM3."""
    h = hash_function(hash_name)
    return h(h(record))


def hash_pair(a: bytes, b: bytes, hash_name: str = KECCAK) -> bytes:
    """The parent of two nodes: H of the sorted pair."""
    h = hash_function(hash_name)
    return h(a + b) if a <= b else h(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """All levels, leaves first, so proofs are cheap to produce."""

    levels: tuple[tuple[bytes, ...], ...]
    hash_name: str = KECCAK

    @classmethod
    def from_leaves(cls, leaves: list[bytes], hash_name: str = KECCAK) -> "MerkleTree":
        if not leaves:
            raise MerkleError("cannot build a Merkle tree of an empty batch")
        levels = [tuple(leaves)]
        while len(levels[-1]) > 1:
            cur = levels[-1]
            nxt = [hash_pair(cur[i], cur[i + 1], hash_name) for i in range(0, len(cur) - 1, 2)]
            if len(cur) % 2:
                nxt.append(cur[-1])
            levels.append(tuple(nxt))
        return cls(tuple(levels), hash_name)

    @classmethod
    def from_records(cls, records: list[bytes], hash_name: str = KECCAK) -> "MerkleTree":
        return cls.from_leaves([leaf_hash(r, hash_name) for r in records], hash_name)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf ``index`` up to the root."""
        if not 0 <= index < len(self.levels[0]):
            raise MerkleError(f"leaf index {index} outside a batch of {len(self.levels[0])}")
        out = []
        for level in self.levels[:-1]:
            sib = index ^ 1
            if sib < len(level):
                out.append(level[sib])
            index //= 2
        return out


def verify(proof: list[bytes], root: bytes, leaf: bytes, hash_name: str = KECCAK) -> bool:
    """Same computation as OpenZeppelin ``MerkleProof.verify`` (over SM3 for ``hash_name="sm3"``)."""
    node = leaf
    for sib in proof:
        node = hash_pair(node, sib, hash_name)
    return node == root
