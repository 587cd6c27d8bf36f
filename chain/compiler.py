"""Reproducible compilation of ``contracts/`` with solcjs behind the native-compatible front-end.

Settings (optimizer, EVM version, remappings) come from ``brownie-config.yaml`` so Brownie and
the Python packages build identical bytecode. Artifacts (``artifacts/<Name>.json``) keep the
ABI, bytecode, deployed bytecode and solc's metadata JSON, serialized canonically, so anyone
can re-verify deployed code against the sources.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from chain.tools import node_executable
from chain.config import SOLC_VERSION, Settings
from chain.errors import CompilationError

FRONTEND = Path(__file__).with_name("solc_frontend.js")
OUTPUTS = [
    "abi", "metadata", "devdoc", "userdoc",
    "evm.bytecode.object", "evm.deployedBytecode.object",
    "evm.deployedBytecode.immutableReferences", "evm.methodIdentifiers",
]


def solc_wrapper_text(settings: Settings) -> str:
    """Shell wrapper that runs the front-end with this project's node_modules."""
    return (
        "#!/bin/sh\n"
        "# Trusted Data Space: solcjs behind a native-compatible front-end (written by 'tds setup')\n"
        f'TDS_PROJECT_ROOT="{settings.project_root}" TDS_NODE_MODULES="{settings.node_modules}" '
        f'exec "{node_executable()}" "{FRONTEND}" "$@"\n'
    )


def solcx_folder() -> Path:
    """py-solc-x's compiler folder (honours SOLCX_BINARY_PATH); Brownie reads the same one."""
    env = os.environ.get("SOLCX_BINARY_PATH")
    return Path(env) if env else Path.home() / ".solcx"


def install_frontend(settings: Settings) -> Path:
    """Install the wrapper as ``solc-v<version>`` in the py-solc-x folder (idempotent)."""
    folder = solcx_folder()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"solc-v{SOLC_VERSION}"
    text = solc_wrapper_text(settings)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return target


def compiler_settings(settings: Settings) -> dict[str, Any]:
    """The solc ``settings`` object, from brownie-config.yaml (the single source)."""
    cfg = yaml.safe_load((settings.project_root / "brownie-config.yaml").read_text())
    comp = cfg["compiler"]
    solc = comp["solc"]
    return {
        "evmVersion": comp.get("evm_version") or "cancun",
        "optimizer": {"enabled": bool(solc["optimizer"]["enabled"]), "runs": int(solc["optimizer"]["runs"])},
        "remappings": list(solc.get("remappings", [])),
        "metadata": {"bytecodeHash": "ipfs"},
        "outputSelection": {"*": {"*": OUTPUTS}},
    }


def source_files(settings: Settings) -> dict[str, Path]:
    """Every ``.sol`` under contracts/, keyed by its path relative to the project root."""
    root = settings.project_root
    return {p.relative_to(root).as_posix(): p for p in sorted(settings.contracts_dir.rglob("*.sol"))}


def standard_input(settings: Settings, sources: dict[str, Path] | None = None) -> dict[str, Any]:
    """Standard-JSON input with sources inlined (content, not paths: the build is relocatable)."""
    sources = sources if sources is not None else source_files(settings)
    return {
        "language": "Solidity",
        "sources": {name: {"content": path.read_text()} for name, path in sorted(sources.items())},
        "settings": compiler_settings(settings),
    }


def _input_digest(std_input: dict[str, Any]) -> str:
    blob = json.dumps(std_input, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob + SOLC_VERSION.encode()).hexdigest()


def run_solc(std_input: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Compile standard-JSON input; raise :class:`CompilationError` with solc's diagnostics."""
    import solcx
    from solcx.exceptions import SolcError

    try:
        out = solcx.compile_standard(
            std_input,
            solc_binary=str(install_frontend(settings)),
            allow_paths=[str(settings.project_root), str(settings.node_modules)],
            base_path=str(settings.project_root),
        )
    except SolcError as exc:
        raise CompilationError(_format_errors(exc)) from None
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompilationError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return out


def _format_errors(exc: Exception) -> str:
    text = getattr(exc, "stdout_data", "") or ""
    try:
        errors = json.loads(text).get("errors", [])
        msgs = [e.get("formattedMessage", e.get("message", "")) for e in errors if e.get("severity") == "error"]
        if msgs:
            return "\n".join(msgs)
    except (ValueError, AttributeError):
        pass
    return str(getattr(exc, "message", exc))


def artifacts_from_output(out: dict[str, Any], digest: str) -> dict[str, dict[str, Any]]:
    """One artifact per contract defined under contracts/ (library code included by reference)."""
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in sorted(out.get("contracts", {}).items()):
        for name, c in sorted(contracts.items()):
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "compiler": {"name": "solc", "version": SOLC_VERSION},
                "inputDigest": digest,
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
                "immutableReferences": c["evm"]["deployedBytecode"].get("immutableReferences", {}),
                "methodIdentifiers": c["evm"].get("methodIdentifiers", {}),
                "metadata": c["metadata"],
                "devdoc": c.get("devdoc", {}),
                "userdoc": c.get("userdoc", {}),
            }
    return artifacts


def canonical_json(obj: Any) -> str:
    """Stable serialization: sorted keys, fixed separators, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def compile_project(settings: Settings, *, force: bool = False) -> dict[str, dict[str, Any]]:
    """Compile contracts/ into artifacts/ unless sources and settings are unchanged."""
    std_input = standard_input(settings)
    digest = _input_digest(std_input)
    out_dir = settings.artifacts_dir
    stamp = out_dir / ".input-digest"
    if not force and stamp.exists() and stamp.read_text().strip() == digest:
        return load_artifacts(settings)
    if not std_input["sources"]:
        return {}
    out = run_solc(std_input, settings)
    artifacts = {
        name: a for name, a in artifacts_from_output(out, digest).items()
        if a["sourceName"].startswith("contracts/")
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.json"):
        if old.stem not in artifacts:
            old.unlink()
    for name, art in artifacts.items():
        path = out_dir / f"{name}.json"
        text = canonical_json(art)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    (out_dir / "standard-input.json").write_text(canonical_json(std_input))
    stamp.write_text(digest + "\n")
    return artifacts


def load_artifacts(settings: Settings) -> dict[str, dict[str, Any]]:
    """Artifacts already in artifacts/ (run :func:`compile_project` first)."""
    return {
        p.stem: json.loads(p.read_text())
        for p in sorted(settings.artifacts_dir.glob("*.json"))
        if p.name != "standard-input.json"
    }
