"""Decoding custom-error reverts into ``ErrorName(arg=value, ...)`` for messages people read.

ABIs register themselves when a contract is bound (:func:`chain.deploy.bind`), so any
revert from a known contract is shown with its name and values instead of raw hex.
"""
from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import keccak

_ERRORS: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}


def _signature(entry: dict[str, Any]) -> str:
    def typ(i: dict[str, Any]) -> str:
        if i["type"].startswith("tuple"):
            return "(" + ",".join(typ(c) for c in i["components"]) + ")" + i["type"][5:]
        return i["type"]

    return f"{entry['name']}({','.join(typ(i) for i in entry['inputs'])})"


def register_abi(abi: list[dict[str, Any]]) -> None:
    for entry in abi:
        if entry.get("type") == "error":
            _ERRORS[keccak(text=_signature(entry))[:4]] = (entry["name"], entry["inputs"])


def describe_revert(data: str | bytes) -> str:
    """``Name(arg=value, ...)`` for a known custom error, else the raw data."""
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else bytes(data)
    found = _ERRORS.get(raw[:4])
    if not found:
        return "0x" + raw.hex()
    name, inputs = found
    try:
        values = decode([_signature({"name": "", "inputs": [i]})[1:-1] for i in inputs], raw[4:])
    except Exception:
        return f"{name}(<undecodable>)"
    args = ", ".join(f"{i['name']}={_fmt(v)}" for i, v in zip(inputs, values))
    return f"{name}({args})"


def _fmt(v: Any) -> str:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    return str(v)
