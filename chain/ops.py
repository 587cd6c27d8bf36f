"""Operation classes: the on-chain grant bitmask (contracts/libraries/Operations.sol) and the
off-chain query operations of :mod:`offchain.query.plan` (``"sum:amount"``, ``"range:age"``...)."""
from __future__ import annotations

from typing import Iterable

DET_EQ, OPE_RANGE, HOM_AGG, MPC, FL, DOWNLOAD, PSI = 1, 2, 4, 8, 16, 32, 64
ALL = 127

NAMES = {DET_EQ: "DET_EQ", OPE_RANGE: "OPE_RANGE", HOM_AGG: "HOM_AGG", MPC: "MPC", FL: "FL", DOWNLOAD: "DOWNLOAD",
         PSI: "PSI"}

# which on-chain class each off-chain operation kind belongs to
_KIND_BIT = {
    "equality": DET_EQ, "group_by": DET_EQ, "join": DET_EQ,
    "range": OPE_RANGE, "min": OPE_RANGE, "max": OPE_RANGE,
    "sum": HOM_AGG, "avg": HOM_AGG, "count": HOM_AGG,
}


def bit_of(operation: str) -> int:
    """The bitmask class of one off-chain operation string."""
    kind = operation.split(":", 1)[0]
    try:
        return _KIND_BIT[kind]
    except KeyError:
        raise ValueError(f"unknown operation {operation!r}") from None


def mask_of(operations: Iterable[str]) -> int:
    """The bitmask a job must request (and a grant must allow) to run these operations."""
    mask = 0
    for op in operations:
        mask |= bit_of(op)
    return mask


def allowed(operations: Iterable[str], mask: int) -> frozenset[str]:
    """The subset of ``operations`` that a grant with ``mask`` covers."""
    return frozenset(op for op in operations if bit_of(op) & mask)


def describe(mask: int) -> str:
    return "|".join(name for bit, name in NAMES.items() if mask & bit) or "none"
