"""Refusals and failures of the secret-sharing MPC engine. Each carries what was wrong (node,
provider, column, row, rule) so the coordinator prints one precise line and tests assert on it."""
from __future__ import annotations

from typing import Any

from offchain.errors import DataPlaneError


class MpcError(DataPlaneError):
    """Base class of every MPC engine error."""


class MpcSpecError(MpcError):
    """A joint specification is inconsistent (unknown operation, missing column ...)."""


class InputOutOfRange(MpcError):
    """A provider value cannot be encoded: not finite, or outside the fixed-point range."""

    def __init__(self, column: str, row: int, value: Any, bound: float) -> None:
        self.column, self.row, self.value, self.bound = column, row, value, bound
        super().__init__(f"column {column!r}, row {row}: value {value!r} is not a finite number "
                         f"with |x| < {bound:g}; rescale the column before sharing it")


class UnknownCategory(MpcError):
    """A group-by value is not one of the public categories declared for the session."""

    def __init__(self, column: str, row: int, value: Any) -> None:
        self.column, self.row, self.value = column, row, value
        super().__init__(f"column {column!r}, row {row}: {value!r} is not a declared category")


class BundleRefused(MpcError):
    """A compute node refused a share bundle: wrong sender DID, tampered envelope, another
    session or node, or parameters that do not match the engine's field."""

    def __init__(self, node: int, provider: str, reason: str) -> None:
        self.node, self.provider, self.reason = node, provider, reason
        super().__init__(f"compute node {node} refused the share bundle of {provider}: {reason}")


class OutputRefused(MpcError):
    """The consumer refused an output share (wrong node, session, or inconsistent shares)."""


class MinGroupRefused(MpcError):
    """The joint count or a cross-tab group is below the minimum group size ``k``; only that
    fact (one bit, computed inside MPC) is known — not which group, not its size."""

    def __init__(self, k: int) -> None:
        self.k = k
        super().__init__(f"refused: the joint count or a group is below the minimum group size {k}; "
                         "nothing was released")


class MpcSessionFailed(MpcError):
    """A session ended without outputs; nothing was released and every node was stopped."""


class MpcNodeLost(MpcSessionFailed):
    """A compute node died or stopped answering mid-session; names the node and how it ended."""

    def __init__(self, node: int, did: str, how: str) -> None:
        self.node, self.did, self.how = node, did, how
        super().__init__(f"compute node {node} ({did}) was lost: {how}; all nodes stopped, "
                         "nothing was output — rerun the session")


class MpcTimeout(MpcSessionFailed):
    """The session did not finish within its timeout; names the nodes still running."""

    def __init__(self, timeout: float, running: list[int]) -> None:
        self.timeout, self.running = timeout, running
        super().__init__(f"MPC session did not finish within {timeout:g} s (nodes still running: "
                         f"{running}); all nodes stopped, nothing was output")
