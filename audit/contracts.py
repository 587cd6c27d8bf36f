"""Contract verification as explorers do it: recompile each deployed contract from its published
solc metadata and sources (``chain.sources``) and compare with the runtime code on chain.

- ``full``: identical runtime bytecode once immutable values (which the constructor writes) are
  masked — including the CBOR tail that carries the metadata hash, so the very metadata and
  sources published were the ones compiled (Sourcify's "full match");
- ``partial``: identical except the metadata tail (same code, other metadata: e.g. a comment
  changed in a source);
- ``mismatch``: the code differs; ``missing``: no code at the address or nothing published."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak
from web3 import Web3

from chain.compiler import run_solc
from chain.config import Settings


@dataclass(frozen=True)
class ContractVerdict:
    name: str
    address: str
    match: str  # full | partial | mismatch | missing
    detail: str

    @property
    def ok(self) -> bool:
        return self.match == "full"

    def to_dict(self) -> dict[str, Any]:
        return {"contract": self.name, "address": self.address, "match": self.match, "ok": self.ok,
                "detail": self.detail}


def _cbor_split(code: bytes) -> tuple[bytes, bytes]:
    """(code, metadata tail): solc appends CBOR metadata and its 2-byte big-endian length."""
    if len(code) < 2:
        return code, b""
    n = int.from_bytes(code[-2:], "big")
    if n + 2 > len(code):
        return code, b""
    return code[:-(n + 2)], code[-(n + 2):]


def _mask(code: bytes, refs: dict[str, list[dict[str, int]]]) -> bytes:
    out = bytearray(code)
    for spots in refs.values():
        for s in spots:
            out[s["start"]:s["start"] + s["length"]] = b"\0" * s["length"]
    return bytes(out)


def recompile_many(settings: Settings, folder: Path, names: list[str]) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """Runtime bytecode and immutable references of ``names``, from the published folder only.
    Contracts whose metadata carries the same settings are compiled in one solc run."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name in names:
        meta = json.loads((folder / f"{name}.metadata.json").read_text())
        st = {k: v for k, v in meta["settings"].items() if k != "compilationTarget"}
        groups.setdefault(json.dumps([meta["language"], st], sort_keys=True), []).append((name, meta))
    out: dict[str, tuple[bytes, dict[str, Any]]] = {}
    for key, members in groups.items():
        language, st = json.loads(key)
        sources: dict[str, dict[str, str]] = {}
        selection: dict[str, dict[str, list[str]]] = {}
        for _name, meta in members:
            for src, info in meta["sources"].items():
                content = (folder / src).read_bytes()
                if "0x" + keccak(content).hex() != info["keccak256"]:
                    raise ValueError(f"published source {src} does not hash to the metadata's keccak256")
                sources[src] = {"content": content.decode()}
            target_file, target = next(iter(meta["settings"]["compilationTarget"].items()))
            selection.setdefault(target_file, {})[target] = ["evm.deployedBytecode.object",
                                                             "evm.deployedBytecode.immutableReferences"]
        st["outputSelection"] = selection
        result = run_solc({"language": language, "sources": sources, "settings": st}, settings)
        for name, meta in members:
            target_file, target = next(iter(meta["settings"]["compilationTarget"].items()))
            c = result["contracts"][target_file][target]["evm"]["deployedBytecode"]
            out[name] = (bytes.fromhex(c["object"]), c.get("immutableReferences", {}))
    return out


def _compare(name: str, address: str, onchain: bytes, built: bytes, refs: dict[str, Any]) -> ContractVerdict:
    if _mask(onchain, refs) == _mask(built, refs):
        return ContractVerdict(name, address, "full", f"{len(onchain)} bytes identical (metadata hash included, "
                                                      f"{sum(len(v) for v in refs.values())} immutables masked)")
    code_a, _ = _cbor_split(_mask(onchain, refs))
    code_b, _ = _cbor_split(_mask(built, refs))
    if code_a == code_b:
        return ContractVerdict(name, address, "partial", "same code, different metadata hash")
    return ContractVerdict(name, address, "mismatch", f"runtime code differs ({len(onchain)} vs {len(built)} bytes)")


def verify_contract(w3: Web3, settings: Settings, folder: Path, name: str, address: str) -> ContractVerdict:
    """One contract's verdict (see verify_deployment for many: one compile for all)."""
    return verify_deployment(w3, settings, {"contracts": {name: {"address": address}}}, folder)[0]


def verify_deployment(w3: Web3, settings: Settings, deployment: dict[str, Any], folder: Path) -> list[ContractVerdict]:
    """One verdict per contract of the deployment."""
    verdicts: dict[str, ContractVerdict] = {}
    code: dict[str, bytes] = {}
    for name, entry in deployment["contracts"].items():
        code[name] = bytes(w3.eth.get_code(Web3.to_checksum_address(entry["address"])))
        if not code[name]:
            verdicts[name] = ContractVerdict(name, entry["address"], "missing", "no code at this address")
        elif not (folder / f"{name}.metadata.json").exists():
            verdicts[name] = ContractVerdict(name, entry["address"], "missing", f"no published metadata in {folder}")
    todo = [n for n in deployment["contracts"] if n not in verdicts]
    try:
        built = recompile_many(settings, folder, todo) if todo else {}
    except Exception as exc:  # noqa: BLE001 - a published source that no longer compiles or hashes
        built = {}
        for n in todo:
            verdicts[n] = ContractVerdict(n, deployment["contracts"][n]["address"], "mismatch",
                                          f"recompiling failed: {exc}")
    for n, (b, refs) in built.items():
        verdicts[n] = _compare(n, deployment["contracts"][n]["address"], code[n], b, refs)
    return [verdicts[n] for n in sorted(deployment["contracts"])]
