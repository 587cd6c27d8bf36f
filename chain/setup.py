"""One-time, idempotent machine setup done by ``make setup`` (``tds setup``): the compiler
front-end in py-solc-x's folder, anvil/cast next to the venv's Python, Brownie networks."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from chain.compiler import install_frontend
from chain.tools import anvil_executable, cast_executable
from chain.config import Settings

# Brownie networks: "tds-anvil" attaches to `tds chain up` (or launches anvil on that port);
# "tds-test" is what the contract test suite launches, on its own port.
BROWNIE_TEST_PORT = 18555


def brownie_networks(settings: Settings) -> dict[str, dict[str, object]]:
    base = {"cmd": "anvil", "host": "http://127.0.0.1", "accounts": 10, "base_fee": 0, "gas_price": 0}
    return {
        "tds-anvil": {**base, "port": settings.chain_port},
        "tds-test": {**base, "port": BROWNIE_TEST_PORT, "steps_tracing": "true"},
    }


def link_node_tools(settings: Settings) -> list[Path]:
    """Symlink anvil and cast beside the venv's python so an activated venv has them on PATH."""
    bindir = Path(sys.executable).parent
    linked = []
    for exe in (anvil_executable(settings.node_modules), cast_executable(settings.node_modules)):
        target = bindir / Path(exe).name
        if target.is_symlink() or target.exists():
            if target.resolve() == Path(exe).resolve():
                continue
            target.unlink()
        target.symlink_to(Path(exe).resolve())
        linked.append(target)
    return linked


def _registered(name: str) -> dict | None:
    path = Path.home() / ".brownie" / "network-config.yaml"
    if not path.exists():
        return None
    cfg = yaml.safe_load(path.read_text()) or {}
    for group in cfg.get("development", []) or []:
        if group.get("id") == name:
            return group
    return None


def register_brownie_networks(settings: Settings) -> list[str]:
    """Add (or correct) the project's Brownie networks; returns the names changed."""
    brownie = shutil.which("brownie", path=str(Path(sys.executable).parent)) or shutil.which("brownie")
    if brownie is None:
        return []  # Brownie is a dev extra; the core library does not need it
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    changed = []
    for name, want in brownie_networks(settings).items():
        have = _registered(name)
        settings_have = (have or {}).get("cmd_settings", {})
        if have and have.get("cmd") == want["cmd"] and all(
            str(settings_have.get(k)).lower() == str(v).lower() for k, v in want.items() if k not in ("cmd", "host")
        ):
            continue
        if have:
            subprocess.run([brownie, "networks", "delete", name], env=env, capture_output=True, check=False)
        args = [f"{k}={v}" for k, v in want.items()]
        res = subprocess.run([brownie, "networks", "add", "Development", name, *args], env=env,
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"brownie networks add {name} failed: {res.stdout[-400:]}{res.stderr[-400:]}")
        changed.append(name)
    return changed


def setup_machine(settings: Settings) -> dict[str, object]:
    """Everything ``make setup`` needs beyond pip and npm."""
    return {
        "solc": str(install_frontend(settings)),
        "linked": [str(p) for p in link_node_tools(settings)],
        "brownie_networks": register_brownie_networks(settings),
    }
