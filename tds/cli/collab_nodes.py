"""The long-running nodes of collaborations: ``tds party serve`` (a provider's party node: its
rows stay on its host, the coordinator reaches it over DID-bound HTTP) and ``tds collab
coordinate`` (a compute node that coordinates the steps naming it first, reaching the providers'
party nodes at the endpoints the NodeRegistry lists)."""
from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import Any

import click

from tds.cli.collab import collab
from tds.cli.output import console, err_console
from tds.cli.services import BadOption, _identity, _logging


def read_table(path: Path) -> list[dict[str, Any]]:
    """A provider's table from CSV (header row first); values stay text, the engines convert them."""
    if not path.exists():
        raise BadOption(f"--table: {path} does not exist")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise BadOption(f"--table: {path} has no data rows (a header line, then one line per row)")
    return rows


def parse_tables(values: tuple[str, ...]) -> dict[int, list[dict[str, Any]]]:
    """``ASSET=FILE.csv`` pairs -> asset id -> rows."""
    out: dict[int, list[dict[str, Any]]] = {}
    for v in values:
        asset, sep, file = v.partition("=")
        if not sep or not asset.isdigit() or not file:
            raise BadOption(f"--table {v!r}: expected ASSET=FILE.csv, e.g. 3=customers.csv")
        out[int(asset)] = read_table(Path(file))
    return out


@click.group()
def party() -> None:
    """A provider's party node for collaborations (PSI and MPC inputs from its own rows)."""


@party.command("serve")
@click.argument("name")
@click.option("--table", "tables", multiple=True, required=True, metavar="ASSET=FILE.csv",
              help="The rows of one of this provider's assets (repeatable).")
@click.option("--password-env", metavar="VAR", help="Environment variable holding the identity's password.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8710, show_default=True)
@click.option("--psi-host", default="127.0.0.1", show_default=True,
              help="Interface the PSI endpoints listen on (the peers dial it).")
@click.option("--sweep-every", type=click.FloatRange(1, None), default=30.0, show_default=True,
              help="Seconds between dropping the state of collaborations that ended.")
@click.option("-v", "--verbose", is_flag=True)
def party_serve(name: str, tables: tuple[str, ...], password_env: str | None, host: str, port: int, psi_host: str,
                sweep_every: float, verbose: bool) -> None:
    """Serve the party node of provider NAME (register it: 'tds node add ADDRESS --kind party
    --endpoint http://HOST:PORT'); it answers only each step's coordinator on chain."""
    import uvicorn

    from did.challenge import ChallengeVerifier
    from offchain.collab.party_api import create_party_app
    from offchain.collab.party_chain import PartyChain
    from offchain.collab.provider_node import ProviderNode
    from tds.cli.deployed import Deployed

    _logging(verbose)
    ident = _identity(name, password_env)
    rows = parse_tables(tables)
    d = Deployed.open()
    space = d.space
    chain = PartyChain(space, d.store())
    mine = [a for a in rows if space.c["AssetRegistry"].functions.ownerOf(a).call() != ident.address]
    if mine:
        raise BadOption(f"asset(s) {mine} are not held by {name} ({ident.address}) on chain")
    node = ProviderNode(ident, rows, chain, psi_host=psi_host)
    app = create_party_app(node, chain, ChallengeVerifier(f"party:{ident.address.lower()}"))
    stop = threading.Event()

    def sweeping() -> None:
        while not stop.wait(sweep_every):
            try:
                node.sweep(lambda c: not chain.running(c))
            except Exception as exc:  # noqa: BLE001 - retried on the next sweep
                err_console.print(f"sweep failed: {exc}", markup=False)

    threading.Thread(target=sweeping, name="tds-party-sweep", daemon=True).start()
    err_console.print(f"party node of {ident.did} ({ident.address}) on http://{host}:{port} for assets "
                      f"{sorted(rows)}", markup=False)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info" if verbose else "warning")
    finally:
        stop.set()


@collab.command("coordinate")
@click.argument("name")
@click.option("--compute", "computes", multiple=True, metavar="NAME",
              help="A compute node whose MPC process this host runs (repeatable; NAME itself is included).")
@click.option("--password-env", metavar="VAR", help="Environment variable holding the identities' password.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Work folder for the MPC node processes (default $TDS_HOME/collab).")
@click.option("--every", type=click.FloatRange(0.5, None), default=None,
              help="Keep following the chain, every N seconds (default: run what is open, then exit).")
@click.option("--timeout", type=click.FloatRange(5, None), default=300.0, show_default=True,
              help="Seconds each engine run may take.")
@click.option("-v", "--verbose", is_flag=True)
def collab_coordinate(name: str, computes: tuple[str, ...], password_env: str | None, work: Path | None,
                      every: float | None, timeout: float, verbose: bool) -> None:
    """Coordinate the open steps naming compute node NAME first: PSI between the providers' party
    nodes (from the NodeRegistry), MPC on this host's compute nodes; report on chain."""
    from chain.config import load_settings
    from oracle.collab.coordinator import REASONS, CollabCoordinator
    from oracle.collab.party_client import registered_parties
    from tds.cli.deployed import Deployed

    _logging(verbose)
    settings = load_settings()
    d = Deployed.open(settings)
    me = _identity(name, password_env)
    compute = {i.address: i for i in [me, *(_identity(n, password_env) for n in computes if n != name)]}
    coordinator = CollabCoordinator(d.space, me.account, me, d.store(), registered_parties(d.space, me, timeout),
                                    compute, work or settings.home / "collab", timeout=timeout)
    while True:
        coordinator.providers = registered_parties(d.space, me, timeout)  # endpoints may move
        for o in coordinator.run_until_idle():
            state = "completed" if o.ok else f"failed: {REASONS.get(o.reason, o.reason)} ({o.detail})"
            console.print(f"collaboration {o.collab_id} step {o.step} ({o.engine}) {state}")
        if every is None:
            return
        time.sleep(every)
