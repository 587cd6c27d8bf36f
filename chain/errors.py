"""Errors of the chain-facing side. Each names the thing that was wrong and the fix."""
from __future__ import annotations


class TdsError(Exception):
    """Base class: a user-facing error whose message says what was wrong and what to do."""


class ToolMissing(TdsError):
    """A required executable (node, anvil, the compiler front-end) is not installed."""


class NodeError(TdsError):
    """The embedded chain node could not be started, stopped or reached."""


class ChainConnectionError(TdsError):
    """The configured RPC endpoint is unreachable or reports an unexpected chain id."""


class CompilationError(TdsError):
    """Solidity compilation failed; the message carries solc's file:line diagnostics."""


class DeploymentError(TdsError):
    """A deployment file is missing, malformed or for another chain."""


class InvalidCid(TdsError, ValueError):
    """Text or bytes that are not a content identifier (CIDv0 ``Qm...`` or base32 CIDv1 ``b...``)."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        super().__init__(f"invalid CID {text!r}: {reason}")
