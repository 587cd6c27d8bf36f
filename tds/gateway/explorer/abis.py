"""The ABIs the explorer decodes with beyond the system contracts bound by address: every ABI
published beside the deployment (``<deployment>.sources/<Name>.metadata.json``, solc metadata:
``output.abi``, :mod:`chain.sources`) and the governance contracts (Membership, TdsGovernor,
TdsTimelock: ``contracts/governance``, from the compiler's artifacts), matched by function
selector and event topic; their custom errors are registered for :func:`chain.revert.describe_revert`.

A governance proposal's calls (``targets`` / ``values`` / ``calldatas`` of ``propose``, ``queue``,
``execute`` and ``ProposalCreated``) are decoded one by one: by the target's ABI when it is a
system contract, else by selector."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from audit.events import plain
from chain.revert import register_abi

GOVERNANCE = ("Membership", "TdsGovernor", "TdsTimelock")


def _type(i: dict[str, Any]) -> str:
    if i["type"].startswith("tuple"):
        return "(" + ",".join(_type(c) for c in i["components"]) + ")" + i["type"][5:]
    return i["type"]


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(_type(i) for i in entry['inputs'])})"


def _types(inputs: list[dict[str, Any]]) -> list[str]:
    return [_type(i) for i in inputs]


def _checksummed(kind: str, value: Any) -> Any:
    if kind == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if kind == "address[]" and isinstance(value, (list, tuple)):
        return [to_checksum_address(v) for v in value]
    return value


def _named(inputs: list[dict[str, Any]], values: Any) -> dict[str, Any]:
    return {(i.get("name") or f"arg{k}"): plain(_checksummed(i["type"], v))
            for k, (i, v) in enumerate(zip(inputs, values))}


class PublishedAbis:
    """Functions by selector and events by topic of the published and governance ABIs."""

    def __init__(self, abis: dict[str, list[dict[str, Any]]]):
        self.names = sorted(abis)
        self.functions: dict[bytes, tuple[str, dict[str, Any]]] = {}
        self.events: dict[bytes, tuple[str, dict[str, Any]]] = {}
        for name, abi in sorted(abis.items()):
            register_abi(abi)
            for entry in abi:
                if entry.get("type") == "function":
                    self.functions.setdefault(keccak(text=_signature(entry))[:4], (name, entry))
                elif entry.get("type") == "event" and not entry.get("anonymous"):
                    self.events.setdefault(keccak(text=_signature(entry)), (name, entry))

    @classmethod
    def load(cls, sources: Path | None, artifacts: Path | None) -> PublishedAbis:
        """Every ``*.metadata.json`` in ``sources`` (the deployment's published folder) and the
        governance contracts' artifacts in ``artifacts``, whichever exist."""
        abis: dict[str, list[dict[str, Any]]] = {}
        for name in GOVERNANCE:
            path = artifacts / f"{name}.json" if artifacts else None
            if path is not None and path.is_file():
                abis[name] = json.loads(path.read_text()).get("abi") or []
        if sources is not None and sources.is_dir():
            for meta in sorted(sources.glob("*.metadata.json")):
                try:
                    abis[meta.name.removesuffix(".metadata.json")] = json.loads(meta.read_text())["output"]["abi"]
                except (ValueError, KeyError):
                    continue  # not solc metadata: nothing to decode with
        return cls(abis)

    def decode_call(self, data: bytes) -> dict[str, Any] | None:
        """``{"contract", "function", "args", "by": "selector"}`` for calldata a published ABI declares."""
        found = self.functions.get(bytes(data[:4]))
        if found is None:
            return None
        name, entry = found
        try:
            values = decode(_types(entry["inputs"]), bytes(data[4:]))
        except Exception:  # noqa: BLE001 - a selector clash with other argument types
            return None
        return {"contract": name, "function": entry["name"], "args": _named(entry["inputs"], values), "by": "selector"}

    def decode_log(self, topics: list[bytes], data: bytes) -> tuple[str, str, dict[str, Any]] | None:
        """(contract, event, arguments) of a log a published ABI declares, or None."""
        if not topics:
            return None
        found = self.events.get(bytes(topics[0]))
        if found is None:
            return None
        name, entry = found
        indexed = [i for i in entry["inputs"] if i.get("indexed")]
        rest = [i for i in entry["inputs"] if not i.get("indexed")]
        if len(indexed) != len(topics) - 1:
            return None
        try:
            args = _named(rest, decode(_types(rest), bytes(data)))
            for i, t in zip(indexed, topics[1:]):
                dynamic = i["type"] in ("string", "bytes") or i["type"].endswith("]") or i["type"].startswith("tuple")
                args[i.get("name") or "topic"] = "0x" + bytes(t).hex() if dynamic else plain(
                    _checksummed(i["type"], decode([i["type"]], bytes(t))[0]))
        except Exception:  # noqa: BLE001 - an event signature clash
            return None
        ordered = {i.get("name") or "topic": args.get(i.get("name") or "topic") for i in entry["inputs"]}
        return name, entry["name"], ordered


def proposal_calls(args: dict[str, Any]) -> list[tuple[str, int, str]] | None:
    """(target, value, calldata hex) of a proposal's calls named in decoded arguments, or None."""
    targets, datas = args.get("targets"), args.get("calldatas")
    if not isinstance(targets, list) or not isinstance(datas, list) or len(targets) != len(datas):
        return None
    values = args.get("values") or [0] * len(targets)
    return [(t, int(v), d if isinstance(d, str) else "0x" + bytes(d).hex()) for t, v, d in zip(targets, values, datas)]
