"""Merkle trees that OpenZeppelin's ``MerkleProof.verify`` accepts.

Convention (the Evidence contract and every verifier use the same):
- leaf  = keccak256(keccak256(record_bytes))  — double hashing, so a leaf can never be
  confused with an inner node (second-preimage safety);
- inner = keccak256(min(a, b) ‖ max(a, b))    — sorted pairs (OZ's commutative hash), so a
  proof is just the list of siblings;
- an odd node at the end of a level is carried up unchanged.
A tree of one leaf has root = that leaf and an empty proof.
"""
from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak


class MerkleError(ValueError):
    """An empty batch, or a leaf index outside the tree."""


def leaf_hash(record: bytes) -> bytes:
    """The leaf for one canonical log record."""
    return keccak(keccak(record))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """All levels, leaves first, so proofs are cheap to produce."""

    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def from_leaves(cls, leaves: list[bytes]) -> "MerkleTree":
        if not leaves:
            raise MerkleError("cannot build a Merkle tree of an empty batch")
        levels = [tuple(leaves)]
        while len(levels[-1]) > 1:
            cur = levels[-1]
            nxt = [hash_pair(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
            if len(cur) % 2:
                nxt.append(cur[-1])
            levels.append(tuple(nxt))
        return cls(tuple(levels))

    @classmethod
    def from_records(cls, records: list[bytes]) -> "MerkleTree":
        return cls.from_leaves([leaf_hash(r) for r in records])

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


def verify(proof: list[bytes], root: bytes, leaf: bytes) -> bool:
    """Same computation as OpenZeppelin ``MerkleProof.verify``."""
    node = leaf
    for sib in proof:
        node = hash_pair(node, sib)
    return node == root
