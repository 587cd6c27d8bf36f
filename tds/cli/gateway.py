"""``tds gateway``: serve the FastAPI gateway (catalog, applications, grants, jobs, audit, auditor page).

DID challenge–response guards the write endpoints, the audit-log query and sealed results by
default; ``--no-auth`` serves reads only (for local use). The chain-derived reads stay open
unless ``--guard-reads`` (the auditor page in a browser needs them open).
"""
from __future__ import annotations

from pathlib import Path

import click

from chain.config import KEYSTORE_PASSWORD_ENV, keystore_password
from tds.cli.output import console

PASSWORD_ENV = KEYSTORE_PASSWORD_ENV


def _relayer(keystore: Path | None, dev_index: int | None, embedded: bool):
    """The account that pays gas for relayed grant offers, or None."""
    if keystore is not None and dev_index is not None:
        raise click.UsageError("choose one relayer: --relayer-keystore or --relayer-dev-account")
    if dev_index is not None:
        if not embedded:
            raise click.UsageError("--relayer-dev-account is for the embedded chain only (TDS_RPC_URL is set)")
        from chain.accounts import dev_account

        return dev_account(dev_index)
    if keystore is not None:
        import json

        from eth_account import Account

        password = keystore_password()
        if password is None:
            password = click.prompt(f"password of {keystore}", hide_input=True)
        try:
            return Account.from_key(Account.decrypt(json.loads(keystore.read_text()), password))
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"cannot open relayer keystore {keystore}: {exc}") from None
    return None


def _start_index(settings, confirmations: int):
    """Open the event index and follow the chain into it from a daemon thread."""
    import threading

    from rich.markup import escape

    from audit.index import EventIndex
    from tds.cli.output import err_console

    index = EventIndex.open(settings, confirmations=confirmations, start=True)
    threading.Thread(target=index.run, name="tds-index", daemon=True,
                     kwargs={"on_error": lambda e: err_console.print(f"[yellow]index retrying:[/] {escape(str(e))}")}
                     ).start()
    return index


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8600, show_default=True)
@click.option("--logs", "logs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of published operation-log batches the audit endpoints verify.")
@click.option("--no-auth", is_flag=True,
              help="No DID authentication: read-only (writes, audit queries and results answer 503). Local use.")
@click.option("--guard-reads", is_flag=True, help="Require DID authentication for the chain-derived reads too.")
@click.option("--domain", default=None, metavar="NAME",
              help="Challenge domain callers sign for (default gateway:<host>:<port>).")
@click.option("--relayer-keystore", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help=f"Keystore of the account that pays gas for relayed grant offers (password: ${PASSWORD_ENV}).")
@click.option("--relayer-dev-account", type=click.IntRange(0, 9), default=None, metavar="N",
              help="Funded dev account N pays for relayed grant offers (embedded chain only).")
@click.option("--rate", type=click.FloatRange(0.01, None), default=5.0, show_default=True,
              help="Requests per second per caller (DID, else IP), after the burst.")
@click.option("--burst", type=click.IntRange(1, None), default=30, show_default=True,
              help="Requests a caller may make at once.")
@click.option("--index/--no-index", "use_index", default=True, show_default=True,
              help="Follow the chain into the event index (TDS_INDEX_URL) and serve the catalog from it.")
@click.option("--confirmations", type=click.IntRange(0, None), default=2, show_default=True,
              help="Confirmation depth of the event index.")
@click.option("--read-processes", type=click.IntRange(0, 64), default=2, show_default=True,
              help="Processes building trails, jobs, grants and collaborations from the index in parallel "
                   "(0: one reader thread in the gateway's process).")
def gateway(host: str, port: int, logs_dir: Path | None, no_auth: bool, guard_reads: bool, domain: str | None,
            relayer_keystore: Path | None, relayer_dev_account: int | None, rate: float, burst: int,
            use_index: bool, confirmations: int, read_processes: int) -> None:
    """Serve the REST gateway; OpenAPI at /openapi.json, the explorer at /explorer, auditor page at /auditor."""
    import uvicorn

    from chain.config import load_settings
    from tds.gateway import create_app
    from tds.gateway.limits import RateLimit

    if no_auth and guard_reads:
        raise click.UsageError("--guard-reads needs authentication; drop --no-auth")
    settings = load_settings()
    guard = None
    if not no_auth:
        from did.challenge import ChallengeVerifier
        from did.guard import ChallengeGuard

        guard = ChallengeGuard(ChallengeVerifier(domain or f"gateway:{host}:{port}"))
    relayer = _relayer(relayer_keystore, relayer_dev_account, settings.rpc_url is None)
    index = _start_index(settings, confirmations) if use_index else None
    app = create_app(settings, logs_dir=logs_dir, guard=guard, guard_reads=guard_reads, relayer=relayer,
                     rate_limit=RateLimit(per_second=rate, burst=burst), index=index,
                     read_processes=read_processes if index is not None else 0)
    from tds.gateway.access_log import gateway_access_log, install_access_log

    access = install_access_log(app, gateway_access_log(settings))
    if app.state.read_processes is not None:  # start the readers now, not on the first requests
        import threading

        threading.Thread(target=app.state.read_processes.warm, name="tds-readers-warm", daemon=True).start()
    mode = "read-only, no authentication" if guard is None else (
        f"DID challenge-response for writes{' and reads' if guard_reads else ''}, domain {guard.verifier.domain}")
    console.print(f"gateway on http://{host}:{port}  ({mode}; relayer {relayer.address if relayer else 'none'})")
    console.print("  explorer /explorer, auditor page /auditor, API docs /docs, OpenAPI /openapi.json")
    console.print(f"  access log {access.path} (`tds monitor run --discover` tails it)")
    if index is not None:
        console.print(f"  catalog from the event index {index.engine.url.render_as_string(hide_password=True)} "
                      f"({confirmations} confirmations; {read_processes or 'no'} reader processes; "
                      "--no-index reads the chain per request)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
