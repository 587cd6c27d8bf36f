"""The key service's hot view calls as one raw JSON-RPC batch.

web3.py spends milliseconds of CPU per contract call before anything is sent (it looks the
function up by validating the whole ABI, hashing every selector, on each call) — more than the
node needs to answer. The key service reads the same few views for every job, so their selectors
and ABI types are worked out once here, the calls of one step go out in one HTTP request, and
each answer is decoded with eth_abi. A call that reverts comes back as ``None``: the caller then
asks again through web3, which names the contract's custom error.
"""
from __future__ import annotations

from typing import Any, Sequence

from eth_abi import decode, encode
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from eth_utils.abi import get_abi_input_types, get_abi_output_types
from web3 import Web3
from web3.contract import Contract


class RawCallsUnavailable(RuntimeError):
    """The node or provider cannot take a raw JSON-RPC batch (use web3's calls instead)."""


class ViewCall:
    """One view function of one deployed contract: calldata and result decoding without web3."""

    def __init__(self, contract: Contract, name: str):
        entry = next((e for e in contract.abi if e.get("type") == "function" and e.get("name") == name), None)
        if entry is None:
            raise ValueError(f"{name} is not a function of the contract at {contract.address}")
        self.to = contract.address
        self.name = name
        self.selector = function_abi_to_4byte_selector(entry)
        self.inputs = get_abi_input_types(entry)
        self.outputs = get_abi_output_types(entry)

    def calldata(self, *args: Any) -> str:
        return "0x" + (self.selector + encode(self.inputs, list(args))).hex()

    def decode(self, data: str) -> tuple:
        """The call's outputs, as web3 returns them: tuples for structs, checksummed addresses."""
        return _checksummed(decode(self.outputs, bytes.fromhex(data.removeprefix("0x"))),
                            self.outputs)


def _checksummed(values: Sequence[Any], types: Sequence[str]) -> tuple:
    out = []
    for v, t in zip(values, types):
        if t == "address":
            out.append(to_checksum_address(v))
        elif t.startswith("(") and t.endswith(")") and isinstance(v, tuple):
            out.append(_checksummed(v, _split_tuple(t[1:-1])))
        else:
            out.append(v)
    return tuple(out)


def _split_tuple(inner: str) -> list[str]:
    """``uint8,(address,uint40),bool`` → its top-level component types."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return [p for p in parts if p]


def call_batch(w3: Web3, calls: Sequence[tuple[ViewCall, tuple]],
               extra: Sequence[tuple[str, list]] = ()) -> list[Any]:
    """Every ``(view, args)`` at the latest block in one JSON-RPC batch: each result decoded, or
    None where that call reverted; then the raw result (None on error) of each ``extra``
    ``(method, params)`` request sent along. Raises :class:`RawCallsUnavailable` if the node
    refuses the batch itself; network errors propagate (transient to the caller's retries)."""
    make = getattr(w3.provider, "make_batch_request", None)
    if make is None:
        raise RawCallsUnavailable(f"{type(w3.provider).__name__} takes no batch requests")
    requests = [("eth_call", [{"to": v.to, "data": v.calldata(*args)}, "latest"]) for v, args in calls]
    responses = make(requests + list(extra))
    if not isinstance(responses, list) or len(responses) != len(requests) + len(extra):
        raise RawCallsUnavailable(f"the node answered a batch of {len(requests) + len(extra)} requests with "
                                  f"{responses!r:.200}")
    out: list[Any] = []
    for (view, _), r in zip(calls, responses):
        if "error" in r or not isinstance(r.get("result"), str):
            out.append(None)
        else:
            out.append(view.decode(r["result"]))
    out += [None if "error" in r else r.get("result") for r in responses[len(calls):]]
    return out
