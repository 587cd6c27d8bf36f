"""The Python side of the contracts: configuration, the embedded node, the compiler, Web3
connection, transactions and revert decoding, deployment, EIP-712 typed data, content
identifiers and job parameters as recorded on chain, and the integrator's facade.

``from chain import Space`` is the integrator's entry point (imported lazily, so that the
lower-level modules stay cheap to import)."""
from __future__ import annotations

from typing import Any

__all__ = ["Space", "Member"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from chain import space
        return getattr(space, name)
    raise AttributeError(f"module 'chain' has no attribute {name!r}")
