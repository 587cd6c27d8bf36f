"""``tds index run`` and ``tds index status``: the event index the gateway's catalog reads
(database: ``TDS_INDEX_URL``, default a SQLite file under ``TDS_HOME``)."""
from __future__ import annotations

import click

from tds.cli.output import console, emit_json, err_console


def open_index(confirmations: int, start: bool = True, window: int = 2000):
    """The :class:`audit.index.EventIndex` of the configured chain's deployment."""
    from audit.index import EventIndex
    from chain.config import load_settings

    return EventIndex.open(load_settings(), confirmations=confirmations, start=start, max_range=window)


@click.group("index")
def index() -> None:
    """Follow every contract's events into a database the readers share."""


@index.command("run")
@click.option("--once", is_flag=True, help="Index what is confirmed now, then exit.")
@click.option("--confirmations", type=click.IntRange(0, None), default=2, show_default=True,
              help="Only index blocks this deep (reorgs within it never reach the index).")
@click.option("--idle", type=click.FloatRange(0.05, None), default=1.0, show_default=True,
              help="Seconds between polls once caught up.")
@click.option("--window", type=click.IntRange(1, None), default=2000, show_default=True,
              help="Blocks per eth_getLogs call and per committed transaction (smaller for dense chains).")
def run_cmd(once: bool, confirmations: int, idle: float, window: int) -> None:
    """Index the chain's events (resumes where it stopped; Ctrl-C to stop)."""
    from rich.markup import escape

    idx = open_index(confirmations, window=window)
    if once:
        n = idx.catch_up()
        console.print(f"indexed {n} events; up to block {idx.indexed_block()}")
        return
    console.print(f"indexing into {idx.engine.url.render_as_string(hide_password=True)} "
                  f"({confirmations} confirmations); Ctrl-C to stop")
    try:
        idx.run(idle=idle, on_error=lambda e: err_console.print(f"[yellow]retrying:[/] {escape(str(e))}"))
    except KeyboardInterrupt:
        console.print(f"stopped at block {idx.indexed_block()}")


@index.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--confirmations", type=click.IntRange(0, None), default=2, show_default=True)
def status_cmd(as_json: bool, confirmations: int) -> None:
    """Indexed block, chain head, lag and row counts."""
    s = open_index(confirmations).status()
    if as_json:
        emit_json(s)
        return
    console.print(f"index {s['url']}  chain {s['chainId']}")
    console.print(f"indexed block {s['indexedBlock']}  head {s['head']}  lag {s['lag']} blocks "
                  f"({s['confirmations']} confirmations)")
    console.print("  ".join(f"{k} {v}" for k, v in s["counts"].items()))
