"""``tds audit asset <id>`` and ``tds audit verify``: the auditor's view, from chain events plus
the published operation-log batches and (optionally) the content store and documents.

By default the events come from the event index (``audit.index``; brought up to the chain's head
first, so nothing is missing); ``--from-chain`` bypasses it and reads the node alone
(``eth_getLogs``), so an auditor never has to trust the index: both ways give the same trail and
verdicts (tests/audit/test_index.py, tests/audit/test_audit_verify.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.markup import escape
from rich.table import Table

from tds.cli.output import console, emit_json, err_console


def open_reader(from_chain: bool = False, asset: int | None = None):
    """The auditor's reader over the configured deployment: the event index, caught up to the
    head, unless ``from_chain`` (or the index cannot be used: a note says why). With ``asset``,
    only the indexed events that can concern that asset are loaded (not every event of the space)."""
    from audit.events import ChainReader
    from chain.config import load_settings

    settings = load_settings()
    direct = ChainReader.open(settings, start=True)
    if from_chain:
        return direct
    try:
        from audit.index import EventIndex
        from audit.index_reads import IndexedReader

        index = EventIndex(direct.w3, direct.deployment, settings.index_database_url)
        index.catch_up()
        if asset is not None:
            from audit.index_entities import EntityReads

            _, narrow = EntityReads(direct.w3, direct.deployment, index.engine).asset_reader(asset)
            if narrow is not None:
                narrow.engine = index.engine  # what _source() reports: read from the index
                return narrow
        return IndexedReader(direct.w3, direct.deployment, index.engine)
    except Exception as exc:  # an unusable index never blocks an audit: the chain is the source
        err_console.print(f"[yellow]note:[/] event index unavailable ({escape(str(exc))}); reading the chain "
                          "directly")
        return direct


def _source(reader: Any) -> str:
    return "index" if hasattr(reader, "engine") else "chain"


FROM_CHAIN = click.option("--from-chain", is_flag=True,
                          help="Bypass the event index: rebuild everything from the node's logs alone.")


def store_fetch() -> Callable[[str], bytes | None] | None:
    """``cat`` of the configured content store (embedded or Kubo), or None if it cannot be opened."""
    try:
        from offchain.store.client import open_store
        from chain.config import load_settings

        return open_store(load_settings().home).cat
    except Exception as exc:  # the store is optional for an audit
        err_console.print(f"[yellow]note:[/] content store unavailable ({escape(str(exc))}); result bytes not checked")
        return None


def _short(value: Any, width: int = 14) -> str:
    s = str(value)
    return s if len(s) <= width else s[: width - 1] + "…"


def _object_text(obj: dict[str, Any]) -> str:
    parts = []
    for k, v in obj.items():
        parts.append(f"{k} {_short(v, 12) if isinstance(v, str) else v}")
    return ", ".join(parts)


@click.group("audit")
def audit() -> None:
    """Rebuild and verify the trail of data assets from the chain alone."""


@audit.command("asset")
@click.argument("asset_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the trail as JSON (000 §12.3.1.2 fields).")
@FROM_CHAIN
def audit_asset(asset_id: int, as_json: bool, from_chain: bool) -> None:
    """Who did what to ASSET_ID, when, with what result (chain events only)."""
    from audit.trail import build_trail

    reader = open_reader(from_chain, asset_id)
    trail = build_trail(reader, asset_id)
    if as_json:
        emit_json({"asset": asset_id, "chainId": reader.chain_id, "source": _source(reader),
                   "trail": [e.to_dict() for e in trail]})
        return
    table = Table(title=f"asset {asset_id} — {len(trail)} events on chain {reader.chain_id}", show_lines=False)
    for col in ("time (UTC)", "actor", "action", "object", "result", "id"):
        table.add_column(col, overflow="fold")
    for e in trail:
        who = e.actor_did or e.actor
        result = "[green]ok[/]" if e.result == "ok" else f"[red]{e.result}[/]"
        if e.error_code is not None:
            result += f" ({e.error_code})"
        table.add_row(e.time_iso.replace("T", " ").rstrip("Z"), escape(_short(who, 34)), e.action,
                      escape(_object_text(e.object)), result, _short(e.id, 16))
    console.print(table)


@audit.command("verify")
@click.option("--asset", "asset_id", type=click.IntRange(min=1), default=None, help="Only this asset (default: all).")
@click.option("--logs", "logs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of published operation-log batch files (*.jsonl), searched recursively.")
@click.option("--doc", "docs", multiple=True, metavar="[SUBJECT=]PATH",
              help="A document whose hash is recorded on chain (quality report, destruction proof …); repeatable. "
                   "Name it SUBJECT=PATH (e.g. grant:3:destruction=proof.json) to check one subject.")
@click.option("--no-store", is_flag=True, help="Do not fetch results from the content store.")
@click.option("--json", "as_json", is_flag=True)
@FROM_CHAIN
def audit_verify(asset_id: int | None, logs_dir: Path | None, docs: tuple[str, ...], no_store: bool,
                 as_json: bool, from_chain: bool) -> None:
    """Verify every signature, result hash, Merkle proof, document and payment; exit 1 if any fails."""
    from audit.verify import overall, verify_all

    documents = {}
    for value in docs:
        name, sep, path = value.partition("=")
        file = Path(path if sep else value)
        if not file.is_file():
            raise click.BadParameter(f"no such file: {file}", param_hint="--doc")
        documents[name if sep else file.name] = file.read_bytes()
    reader = open_reader(from_chain, asset_id)
    verdicts = verify_all(None, None, reader=reader, asset=asset_id, logs_dir=logs_dir,
                          fetch=None if no_store else store_fetch(), documents=documents)
    ok = overall(verdicts)
    if as_json:
        emit_json({"ok": ok, "chainId": reader.chain_id, "asset": asset_id, "source": _source(reader),
                   "verdicts": verdicts})
    else:
        table = Table(title=f"audit of {'asset ' + str(asset_id) if asset_id else 'all assets'}")
        for col in ("", "step", "subject", "detail"):
            table.add_column(col, overflow="fold")
        mark = {"pass": "[green]✓[/]", "fail": "[red]✗[/]", "skip": "[yellow]–[/]"}
        for v in verdicts:
            table.add_row(mark[v["status"]], v["step"], escape(v["subject"]), escape(v["detail"]))
        console.print(table)
        failed = sum(v["status"] == "fail" for v in verdicts)
        console.print(f"[bold {'green' if ok else 'red'}]{'PASS' if ok else 'FAIL'}[/]: "
                      f"{len(verdicts) - failed}/{len(verdicts)} verifications hold")
    if not ok:
        sys.exit(1)


@audit.command("contracts")
@click.option("--sources", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The published metadata and sources (default: beside the deployment file).")
@click.option("--json", "as_json", is_flag=True)
def audit_contracts(folder: Path | None, as_json: bool) -> None:
    """Recompile every deployed contract from its published solc metadata and sources and compare
    with the code on chain (Sourcify 'full match' = metadata hash included)."""
    from audit.contracts import verify_deployment
    from chain.config import load_settings
    from chain.connection import connect
    from chain.deploy import read_deployment
    from chain.sources import sources_folder

    settings = load_settings()
    w3 = connect(settings)
    path = settings.deployment_path(w3.eth.chain_id)
    deployment = read_deployment(path, w3.eth.chain_id)
    verdicts = verify_deployment(w3, settings, deployment, folder or sources_folder(path))
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in verdicts], indent=2))
    else:
        for v in verdicts:
            click.echo(f"{'PASS' if v.ok else 'FAIL'}  {v.name:22} {v.address}  {v.match:8} {v.detail}")
    if not all(v.ok for v in verdicts):
        raise SystemExit(1)
