"""``tds oracle run`` and ``tds provider serve``: the two long-running services of a data space.

Both load a DID identity from ``$TDS_HOME/identities`` (password from ``--password-env VAR`` or
a prompt), refuse to start if the chain does not know them, log one line per event to stderr,
and stop cleanly on SIGTERM / Ctrl-C (a SIGKILL is safe too: the oracle's journal and the
provider's release cache make every job exactly-once).
"""
from __future__ import annotations

import faulthandler
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click

from tds.cli.output import err_console
from chain.config import keystore_password, load_settings
from chain.errors import TdsError
from offchain.query.cluster import PARTITION_ROWS


class BadOption(TdsError):
    """A command-line value that cannot be used as given."""


def _identity(name: str, password_env: str | None) -> Any:
    from did.identity import Identity
    from tds.cli.identity import _password, _root

    return Identity.load(_root(load_settings()), name, _password(password_env, name))


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def parse_key_services(values: tuple[str, ...]) -> dict[str, str]:
    """``ADDRESS=URL`` per provider, or a bare ``URL`` for every provider without one."""
    from eth_utils import is_address, to_checksum_address

    out: dict[str, str] = {}
    for v in values:
        addr, sep, url = v.partition("=")
        if not sep:
            addr, url = "*", v
        elif not is_address(addr):
            raise BadOption(f"--key-service {v!r}: {addr!r} is not an address (expected ADDRESS=URL or URL)")
        else:
            addr = to_checksum_address(addr)
        if not url.startswith(("http://", "https://")):
            raise BadOption(f"--key-service {v!r}: the URL must start with http:// or https://")
        out[addr] = url
    return out


VERSION_REFRESH_S = 5.0   # how often `tds provider serve` looks for dataset versions recorded on chain
_SCHEDULER_HELP = ("Run the partitions of big tables on this Dask scheduler (tcp://HOST:PORT; start one with "
                   "'dask scheduler' and 'dask worker tcp://HOST:PORT'); default: a local cluster on this machine.")
_PARTITION_HELP = "Tables of at least this many rows run as partitions on the Dask cluster; smaller ones in-process."


def parse_scheduler(value: str | None) -> str | None:
    """``tcp://HOST:PORT`` (or ``tls://``), checked for shape; None stays None."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    url = urlsplit(value)
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme not in ("tcp", "tls") or not url.hostname or port is None or url.path not in ("", "/"):
        raise BadOption(f"--scheduler {value!r}: expected tcp://HOST:PORT (the address 'dask scheduler' prints)")
    return f"{url.scheme}://{url.hostname}:{port}"


def use_cluster(scheduler: str | None, partition_rows: int, workers: int = 2) -> str:
    """Set this process's partitioning rule; with a scheduler, connect now (a clear error if it
    does not answer). Returns one line describing where big tables run."""
    from offchain.query.cluster import DaskOptions, Partitioning, check_scheduler, configure

    options = DaskOptions(scheduler=parse_scheduler(scheduler), workers=workers)
    configure(Partitioning(options, partition_rows))
    if options.scheduler is None:
        return f"tables of {partition_rows:,}+ rows run on a local Dask cluster of {workers} workers"
    n = check_scheduler(options)
    warn = "" if n else f" (no worker yet: start 'dask worker {options.scheduler}')"
    return f"tables of {partition_rows:,}+ rows run on the Dask scheduler {options.scheduler}, {n} workers{warn}"


# --- the oracle -----------------------------------------------------------------------------
@click.group("oracle")
def oracle() -> None:
    """The compute oracle: follows job requests, computes on ciphertext, posts results."""


@oracle.command("run")
@click.argument("name")
@click.option("--password-env", metavar="VAR", help="Environment variable holding the identity's password.")
@click.option("--key-service", "key_services", multiple=True, metavar="[ADDRESS=]URL", required=True,
              help="A provider's key service (repeatable); a bare URL serves every other provider.")
@click.option("--confirmations", type=click.IntRange(0, 64), default=1, show_default=True,
              help="Blocks a JobRequested must be buried under before the job is taken.")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Jobs run at once.")
@click.option("--processes", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes per query (for large datasets).")
@click.option("--anchor-every", type=click.FloatRange(1, None), default=60.0, show_default=True,
              help="Seconds between anchoring the oracle's operation log on chain.")
@click.option("--claim", type=click.IntRange(2, 64), default=16, show_default=True,
              help="Jobs claimed per acceptJobs transaction: several oracles on one queue share a backlog.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None, help=_SCHEDULER_HELP)
@click.option("--partition-rows", type=click.IntRange(1, None), default=PARTITION_ROWS, show_default=True,
              help=_PARTITION_HELP)
@click.option("--exit-when-idle", type=click.FloatRange(0.1, None), default=None, metavar="SECONDS",
              help="Exit after this long with no unfinished job (for scripts); default: run until stopped.")
@click.option("-v", "--verbose", is_flag=True, help="Log every step, not only warnings.")
def oracle_run(name: str, password_env: str | None, key_services: tuple[str, ...], confirmations: int, threads: int,
               processes: int, anchor_every: float, claim: int, scheduler: str | None, partition_rows: int,
               exit_when_idle: float | None, verbose: bool) -> None:
    """Run the oracle under identity NAME (bound on chain, holding COMPUTE_PROVIDER)."""
    from offchain.store.client import open_store
    from chain.connection import connect
    from oracle.daemon import DaemonOptions, OracleDaemon

    _logging(verbose)
    settings = load_settings()
    services = parse_key_services(key_services)
    where = use_cluster(scheduler, partition_rows, max(2, processes))  # refused before the password prompt
    ident = _identity(name, password_env)
    w3 = connect(settings)

    def say(kind: str, data: dict[str, Any]) -> None:
        extra = f" reason {data['reason']}: {data.get('detail', '')}" if kind == "failed" else ""
        err_console.print(f"job {data['job']} {kind}{extra}", markup=False)

    daemon = OracleDaemon(settings, w3, ident, open_store(settings.home, settings.ipfs_api),
                          DaemonOptions(services, confirmations, threads, processes, anchor_every, claim=claim),
                          on_event=say)
    daemon.install_signal_handlers()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>` prints every thread's stack
    err_console.print(f"oracle {ident.did} ({ident.address}) on chain {w3.eth.chain_id}; journal in "
                      f"{daemon.folder}; {where}", markup=False)
    idle_since = [time.monotonic()]

    def until() -> bool:
        if exit_when_idle is None:
            return False
        if any(True for _ in daemon.runner.journal.unfinished()):
            idle_since[0] = time.monotonic()
        return time.monotonic() - idle_since[0] >= exit_when_idle

    daemon.run(until)
    s = daemon.runner.stats
    err_console.print(f"stopped: {s.posted} completed, {s.failed} failed, {s.skipped} skipped, "
                      f"{daemon.anchorer.anchored} log records anchored", markup=False)


@oracle.command("status")
@click.argument("name")
def oracle_status(name: str) -> None:
    """Journal counts of the oracle NAME for the current deployment (no password needed)."""
    from did.identity import read_public
    from chain.connection import connect
    from chain.deploy import read_deployment
    from tds.cli.identity import _root
    from tds.cli.output import emit_json
    from oracle.daemon import work_dir
    from oracle.journal import Journal

    settings = load_settings()
    public = read_public(_root(settings), name)
    w3 = connect(settings, start=False)
    deployment = read_deployment(settings.deployment_path(w3.eth.chain_id), w3.eth.chain_id)
    folder = work_dir(settings, w3.eth.chain_id, deployment["contracts"]["Jobs"]["address"])
    path = folder / "journal.sqlite"
    if not path.exists():
        raise BadOption(f"oracle {name} has no journal for this deployment yet ({path}); start it with "
                        f"'tds oracle run {name} --key-service URL'")
    j = Journal(path)
    emit_json({"did": public.get("did"), "journal": str(path), "jobs": j.counts(),
               "cursor": j.cursor("jobs")})


# --- the provider ---------------------------------------------------------------------------
@click.group("provider")
def provider() -> None:
    """The data provider's services: the key service and the content store of its datasets."""


@provider.command("serve")
@click.argument("name")
@click.option("--password-env", metavar="VAR", help="Environment variable holding the identity's password.")
@click.option("--keystore", type=click.Path(dir_okay=False, path_type=Path),
              help="The data keystore (default $TDS_HOME/keys/provider.json); passphrase from "
                   "$TDS_KEYSTORE_PASSWORD or a prompt.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option("--store-port", type=click.IntRange(0, 65535), default=None,
              help="Also serve the embedded content store (Kubo RPC) on this loopback port.")
@click.option("--anchor-every", type=click.FloatRange(1, None), default=60.0, show_default=True,
              help="Seconds between anchoring the release log on chain.")
@click.option("--trusted-consumer", "trusted", multiple=True, metavar="ADDRESS",
              help="Release rule: this consumer may have leaky layers (DET/order) of sensitive fields. Repeatable.")
@click.option("--min-price-leaky", type=click.IntRange(0, None), default=0, show_default=True, metavar="WEI",
              help="Release rule: leaky layers of sensitive fields only at this price per use or above.")
@click.option("--no-auditor", is_flag=True, help="Turn the query auditor (differencing checks) off.")
@click.option("--require-terms", is_flag=True,
              help="Refuse grants whose terms document (field scope, privacy option) is not in the store.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
              help="The key service recomputes results of big tables on this Dask scheduler (the provider's own "
                   "cluster); default: a local cluster on this machine.")
@click.option("--partition-rows", type=click.IntRange(1, None), default=PARTITION_ROWS, show_default=True,
              help=_PARTITION_HELP)
@click.option("-v", "--verbose", is_flag=True)
def provider_serve(name: str, password_env: str | None, keystore: Path | None, host: str, port: int,
                   store_port: int | None, anchor_every: float, trusted: tuple[str, ...], min_price_leaky: int,
                   no_auditor: bool, require_terms: bool, scheduler: str | None, partition_rows: int,
                   verbose: bool) -> None:
    """Serve the key service of provider NAME for its registered datasets: it releases only what
    each job's grant, its terms and these release rules allow (docs/security.md)."""
    import uvicorn

    from offchain.onion.keystore_watch import WatchedKeyring
    from offchain.store.client import embedded_root, open_store
    from chain.connection import connect
    from offchain.keyservice.service import build_key_service

    _logging(verbose)
    settings = load_settings()
    where = use_cluster(scheduler, partition_rows)
    ident = _identity(name, password_env)
    path = keystore or settings.home / "keys" / "provider.json"
    if not path.exists():
        raise BadOption(f"no data keystore at {path}: encrypt a dataset first ('tds data encrypt FILE') "
                        f"or pass --keystore")
    passphrase = keystore_password() or click.prompt("keystore password", hide_input=True, err=True)
    keyring = WatchedKeyring(path, passphrase)  # retired keys serve old versions; a rotation on disk is followed
    w3 = connect(settings)
    store = open_store(settings.home, settings.ipfs_api)
    from eth_utils import is_address, to_checksum_address

    from offchain.keyservice.service import ReleasePolicy
    from offchain.onion.policy import ReleaseRules

    bad = [a for a in trusted if not is_address(a)]
    if bad:
        raise BadOption(f"--trusted-consumer {bad[0]!r} is not an address (0x followed by 40 hex digits)")
    policy = ReleasePolicy(ReleaseRules(frozenset(to_checksum_address(a) for a in trusted), min_price_leaky),
                           auditor=not no_auditor, require_terms=require_terms)
    built = build_key_service(settings, w3, ident, keyring, store, policy=policy)
    if not built.service.datasets_by_asset:
        err_console.print("warning: no registered asset of this provider has its manifest in the store; "
                          "register one with 'tds asset register'", markup=False)
    stop = threading.Event()

    def anchoring() -> None:
        while not stop.wait(anchor_every):
            built.anchor_safely()

    def following_versions() -> None:   # versions a running source appends and records, served without a restart
        while not stop.wait(VERSION_REFRESH_S):
            built.refresh_versions()

    threading.Thread(target=anchoring, name="tds-anchor", daemon=True).start()
    threading.Thread(target=following_versions, name="tds-versions", daemon=True).start()
    server_ctx = None
    if store_port is not None:
        from offchain.store.blockstore import BlockStore
        from offchain.store.server import KuboRpcServer

        server_ctx = KuboRpcServer(BlockStore(embedded_root(settings.home)), port=store_port).start()
        err_console.print(f"content store on {server_ctx.multiaddr}", markup=False)
    err_console.print(f"key service of {ident.did} ({ident.address}) on http://{host}:{port} for assets "
                      f"{sorted(built.service.datasets_by_asset)}; {where}", markup=False)
    try:
        uvicorn.run(built.app, host=host, port=port, log_level="info" if verbose else "warning")
    finally:
        stop.set()
        built.anchor_safely()
        if server_ctx is not None:
            server_ctx.stop()
