"""``tds store ...``: the content-addressed store (Kubo-compatible CIDs) and the data-plane
commands (ingest -> quality report, encrypt -> encrypted dataset in the store)."""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from oracle.cli.output import console, emit_json
from oracle.config import load_settings


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Data-plane errors become one-line CLI errors (exit 1), never tracebacks."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from offchain.errors import DataPlaneError
        try:
            return fn(*args, **kwargs)
        except (DataPlaneError, FileExistsError) as exc:
            raise click.ClickException(str(exc)) from exc
    return wrapper


def _store():
    from offchain.store.client import open_store
    return open_store(load_settings().home)


def _blocks():
    from offchain.store.blockstore import BlockStore
    if os.environ.get("TDS_IPFS_API"):
        raise click.ClickException("pin/gc/serve act on the embedded store; unset TDS_IPFS_API")
    return BlockStore(load_settings().home / "ipfs")


@click.group("store")
def store() -> None:
    """The content-addressed store (Kubo-compatible CIDs) and the data plane."""


@store.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cid-version", type=click.Choice(["0", "1"]), default="0", show_default=True)
@click.option("--pin/--no-pin", default=True, show_default=True)
@_errors
def add_cmd(file: Path, cid_version: str, pin: bool) -> None:
    """Add FILE; prints the CID `ipfs add` would print."""
    if os.environ.get("TDS_IPFS_API"):
        click.echo(_store().add_bytes(file.read_bytes(), int(cid_version), pin))
        return
    click.echo(_blocks().add_file(file, int(cid_version), pin).cid)


@store.command("cat")
@click.argument("cid")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@_errors
def cat_cmd(cid: str, output: Path | None) -> None:
    """Write the file behind CID to stdout (or --output)."""
    data = _store().cat(cid)
    if output:
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


@store.group("pin")
def pin_group() -> None:
    """Pins protect blocks from garbage collection."""


@pin_group.command("add")
@click.argument("cid")
@_errors
def pin_add_cmd(cid: str) -> None:
    for c in _blocks().pin_add(cid):
        click.echo(f"pinned {c} recursively")


@pin_group.command("rm")
@click.argument("cid")
@_errors
def pin_rm_cmd(cid: str) -> None:
    for c in _blocks().pin_rm(cid):
        click.echo(f"unpinned {c}")


@pin_group.command("ls")
@_errors
def pin_ls_cmd() -> None:
    for c, kind in sorted(_blocks().pin_ls().items()):
        click.echo(f"{c} {kind}")


@store.command("gc")
@_errors
def gc_cmd() -> None:
    """Delete blocks no pin reaches."""
    removed = _blocks().gc()
    click.echo(f"removed {len(removed)} blocks")


@store.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="loopback only")
@click.option("--port", default=5001, show_default=True, type=int)
@_errors
def serve_cmd(host: str, port: int) -> None:
    """Serve the Kubo RPC subset (add, cat, get, pin/*, block/stat, version, id, repo/gc)."""
    from offchain.store.server import KuboRpcServer
    server = KuboRpcServer(_blocks(), host, port)
    console.print(f"serving the embedded store at http://{host}:{server.port}/api/v0 "
                  f"(multiaddr {server.multiaddr}); Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


def _load_table(file: Path, schema_path: Path | None, clean_path: Path | None, yes: bool):
    from offchain.ingest.cleaning import clean, rule_from_dict
    from offchain.ingest.readers import read_raw
    from offchain.ingest.schema import Schema
    raw = read_raw(file)
    schema = Schema.load(schema_path) if schema_path else None
    table = raw.typed(schema)
    if schema is None:
        console.print("[bold]inferred schema[/] (save it and pass --schema to declare constraints):")
        emit_json(table.schema.to_dict())
        if not yes and not click.confirm("use the inferred schema?", default=True):
            raise click.Abort()
    rules = [rule_from_dict(r) for r in json.loads(clean_path.read_text())] if clean_path else []
    return clean(table, rules)


@store.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--schema", "schema_path", type=click.Path(exists=True, path_type=Path))
@click.option("--clean", "clean_path", type=click.Path(exists=True, path_type=Path),
              help="JSON list of cleaning rules")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the report here")
@click.option("--yes", is_flag=True, help="accept an inferred schema without asking")
@_errors
def ingest_cmd(file: Path, schema_path: Path | None, clean_path: Path | None, out: Path | None,
               yes: bool) -> None:
    """Read CSV/JSON/XLSX, clean, and print the quality report and its hash."""
    from offchain.ingest.quality import assess
    table, log = _load_table(file, schema_path, clean_path, yes)
    report = assess(table, log)
    if out:
        out.write_bytes(report.canonical())
    emit_json({"report": report.to_dict(), "hash": report.hash})


@store.command("encrypt")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--schema", "schema_path", type=click.Path(exists=True, path_type=Path))
@click.option("--clean", "clean_path", type=click.Path(exists=True, path_type=Path))
@click.option("--keystore", type=click.Path(dir_okay=False, path_type=Path),
              help="default: $TDS_HOME/keys/provider.json")
@click.option("--min-group-size", default=5, show_default=True, type=int)
@click.option("--processes", default=os.cpu_count() or 1, show_default=True, type=int)
@click.option("--yes", is_flag=True)
@_errors
def encrypt_cmd(file: Path, schema_path: Path | None, clean_path: Path | None,
                keystore: Path | None, min_group_size: int, processes: int, yes: bool) -> None:
    """Ingest, score, classify and onion-encrypt FILE into the store; prints the manifest CID.
    The keystore passphrase comes from $TDS_KEYSTORE_PASSPHRASE or a prompt."""
    from rich.progress import Progress

    from offchain.ingest.classification import classify
    from offchain.ingest.quality import assess
    from offchain.onion.dataset import encrypt_table
    from offchain.onion.keys import Keyring
    from offchain.onion.keystore import Keystore
    from offchain.onion.policy import default_policy
    table, log = _load_table(file, schema_path, clean_path, yes)
    report = assess(table, log)
    classification = classify(table.schema)
    policy = default_policy(table.schema, classification, min_group_size)
    path = keystore or load_settings().home / "keys" / "provider.json"
    passphrase = os.environ.get("TDS_KEYSTORE_PASSPHRASE") or click.prompt(
        "keystore passphrase", hide_input=True, confirmation_prompt=not path.exists())
    ks = Keystore.open(path, passphrase) if path.exists() else Keystore.create(path, passphrase)
    ring = Keyring()
    hom_rows = table.num_rows if any("hom" in f.onions for f in policy.fields.values()) else 0
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("encrypting", total=len(table.schema.fields) + hom_rows)
        ds = encrypt_table(table, policy, classification, ring, quality_hash=report.hash,
                           processes=processes,
                           progress=lambda stage, k: bar.advance(task, k) if stage != "chunk" else None)
    ks.add_keyring(ring)
    store_ = _store()
    manifest_cid = ds.publish(store_.add_bytes)
    emit_json({"manifest_cid": manifest_cid, "manifest_hash": ds.manifest_hash,
               "dataset_id": ds.dataset_id, "rows": table.num_rows, "objects": len(ds.objects),
               "quality_report_hash": report.hash, "classification": classification.dataset,
               "keystore": str(path)})
