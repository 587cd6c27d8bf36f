"""``tds store ...``: the content-addressed store — CIDs identical to Kubo's default
``ipfs add``, pins and garbage collection, and the Kubo RPC subset served on loopback. With
``TDS_IPFS_API`` set, add and cat go to that Kubo API instead (the provider's data commands
are in :mod:`tds.cli.data`)."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from tds.cli.output import console
from chain.config import load_settings


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Data-plane errors become one-line CLI errors (exit 1), never tracebacks."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from chain.errors import InvalidCid
        from offchain.errors import DataPlaneError
        try:
            return fn(*args, **kwargs)
        except (DataPlaneError, InvalidCid, FileExistsError) as exc:
            raise click.ClickException(str(exc)) from exc
    return wrapper


def _store():
    from offchain.store.client import open_store
    return open_store(load_settings().home)


def _blocks():
    from offchain.store.blockstore import BlockStore
    if os.environ.get("TDS_IPFS_API"):
        raise click.ClickException("pin/gc/serve act on the embedded store; unset TDS_IPFS_API")
    from offchain.store.client import embedded_root
    return BlockStore(embedded_root(load_settings().home))


PROGRESS_FROM_BYTES = 16 << 20


@click.group("store")
def store() -> None:
    """The content-addressed store (Kubo-compatible CIDs, pins, GC, Kubo RPC server)."""


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
    size = file.stat().st_size
    with open(file, "rb") as fh:
        if size < PROGRESS_FROM_BYTES:
            click.echo(_blocks().add_stream(fh, int(cid_version), pin).cid)
            return
        from rich.progress import Progress

        from tds.cli.output import err_console
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task(f"adding {file.name}", total=size)

            class _Counting:
                def read(self, n: int = -1) -> bytes:
                    piece = fh.read(n)
                    bar.advance(task, len(piece))
                    return piece

            result = _blocks().add_stream(_Counting(), int(cid_version), pin)  # type: ignore[arg-type]
    click.echo(result.cid)


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
