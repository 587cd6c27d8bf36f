"""Locating the executables the project installs from npm (anvil, cast, node)."""
from __future__ import annotations

import shutil
from pathlib import Path

from chain.errors import ToolMissing


def node_executable() -> str:
    """Path of Node.js, or :class:`ToolMissing` saying what to install."""
    found = shutil.which("node")
    if not found:
        raise ToolMissing("node is not installed: install Node.js 20+ (Debian: apt-get install nodejs npm)")
    return found


def npm_binary(node_modules: Path, package: str, name: str) -> str:
    """Path of an executable shipped in an npm package, e.g. anvil in @foundry-rs/anvil-linux-amd64."""
    path = node_modules / package / "bin" / name
    if path.is_file():
        return str(path)
    linked = node_modules / ".bin" / name
    if linked.exists():
        return str(linked)
    raise ToolMissing(f"{name} is not installed (npm package {package}): run 'make setup' or 'npm ci'")


def anvil_executable(node_modules: Path) -> str:
    return npm_binary(node_modules, "@foundry-rs/anvil-linux-amd64", "anvil")


def cast_executable(node_modules: Path) -> str:
    return npm_binary(node_modules, "@foundry-rs/cast-linux-amd64", "cast")


def ethereumjs_executable(node_modules: Path) -> str:
    """The ``ethereumjs`` command of npm ``@ethereumjs/client`` (a second, independent EVM client)."""
    cli = node_modules / "@ethereumjs" / "client" / "dist" / "esm" / "bin" / "cli.js"
    if cli.is_file():
        return str(cli)
    linked = node_modules / ".bin" / "ethereumjs"
    if linked.exists():
        return str(linked)
    raise ToolMissing("ethereumjs is not installed (npm package @ethereumjs/client): run 'make setup' or 'npm ci'")
