"""``tds setup``, ``tds chain up|down|status``, ``tds compile``, ``tds deploy``."""
from __future__ import annotations

from dataclasses import asdict

import click

from chain.compiler import compile_project
from chain.node import EmbeddedNode
from tds.cli.output import console, emit_json, err_console
from chain.config import load_settings


@click.command("setup")
def setup_cmd() -> None:
    """Install the compiler front-end, link anvil/cast, register Brownie networks, compile."""
    from chain.setup import setup_machine

    settings = load_settings()
    done = setup_machine(settings)
    console.print(f"solc front-end: {done['solc']}")
    for name in done["brownie_networks"]:
        console.print(f"brownie network registered: {name}")
    arts = compile_project(settings)
    console.print(f"compiled {len(arts)} contracts into {settings.artifacts_dir}")


@click.group()
def chain() -> None:
    """The embedded local chain (anvil)."""


@chain.command("up")
@click.option("--port", type=int, default=None, help="Preferred port (another is chosen if it is taken).")
@click.option("--fresh", is_flag=True, help="Discard the saved chain state.")
@click.option("--json", "as_json", is_flag=True)
def chain_up(port: int | None, fresh: bool, as_json: bool) -> None:
    """Start anvil on a free loopback port (or report the one running)."""
    info = EmbeddedNode(load_settings()).up(port=port, fresh=fresh)
    if as_json:
        emit_json(asdict(info))
    else:
        console.print(f"chain up: pid {info.pid} at {info.url} (log {info.log_file})")


@chain.command("down")
def chain_down() -> None:
    """Stop exactly the anvil process that 'tds chain up' started."""
    info = EmbeddedNode(load_settings()).down()
    console.print("chain down" if info is None else f"chain down: stopped pid {info.pid} ({info.url})")


@chain.command("status")
@click.option("--json", "as_json", is_flag=True)
def chain_status(as_json: bool) -> None:
    """Report whether the embedded chain runs (a stale pid file is cleaned)."""
    info = EmbeddedNode(load_settings()).status()
    if as_json:
        emit_json(asdict(info) if info else {"running": False})
    elif info is None:
        console.print("chain: not running")
    else:
        console.print(f"chain: running, pid {info.pid} at {info.url}")


@click.command("compile")
@click.option("--force", is_flag=True, help="Recompile even if nothing changed.")
def compile_cmd(force: bool) -> None:
    """Compile contracts/ into artifacts/ (reproducible; keeps solc metadata)."""
    settings = load_settings()
    arts = compile_project(settings, force=force)
    console.print(f"compiled {len(arts)} contracts into {settings.artifacts_dir}")


@click.command("deploy")
@click.option("--json", "as_json", is_flag=True)
def deploy_cmd(as_json: bool) -> None:
    """Deploy the whole system to the configured chain and write the deployment file."""
    from chain.system import deploy_system

    from chain.governance import DEV_PROFILE_NOTE

    doc = deploy_system(load_settings())
    err_console.print(DEV_PROFILE_NOTE)
    if as_json:
        emit_json({k: v["address"] for k, v in doc["contracts"].items()})
    else:
        for name, entry in sorted(doc["contracts"].items()):
            console.print(f"{name:24} {entry['address']}")
