"""``tds source ...``: the provider's live sources — databases, MQTT streams, REST feeds —
synced into versions of encrypted datasets (offchain/sources, docs/sources.md)."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import click

from chain.config import keystore_password, load_settings
from tds.cli.data import _parse_onions
from tds.cli.output import emit_json, err_console
from tds.cli.store import _errors, _store
from tds.cli.wallet import WalletChoice, wallet_options


def _home() -> Any:
    from offchain.sources.runner import SourceHome
    return SourceHome(load_settings().sources_dir)


def _state() -> Any:
    from offchain.sources.state import SourceState
    return SourceState(_home().state_file)


def _keys(keystore: Path | None) -> Any:
    from offchain.onion.keystore import Keystore
    path = keystore or load_settings().home / "keys" / "provider.json"
    passphrase = keystore_password() or click.prompt(
        "keystore password", hide_input=True, confirmation_prompt=not path.exists(), err=True)
    return Keystore.open(path, passphrase) if path.exists() else Keystore.create(path, passphrase)


@click.group("source")
def source() -> None:
    """Live sources: databases, MQTT streams, REST feeds, synced into dataset versions."""


@source.command("add")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(["postgres", "sqlite", "mqtt", "rest"]))
@click.option("--url", required=True, help="database URL or file, mqtt://HOST:PORT, or the feed's https:// URL")
@click.option("--table", help="database table (schema.table allowed)")
@click.option("--query", help="database query (SELECT ...) used as the source")
@click.option("--watermark", help="column that only grows: sync incrementally past its committed value")
@click.option("--topic", help="MQTT topic filter (QoS 1)")
@click.option("--key", help="field identifying a message/record (de-duplication; default: content hash)")
@click.option("--every", type=float, help="sync every SECONDS")
@click.option("--cron", help="sync on a 5-field cron schedule, e.g. '*/15 * * * *'")
@click.option("--standby", help="a standby URL to fail over to")
@click.option("--schema", "schema_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="declared schema (JSON); inferred from the first batch when absent")
@click.option("--clean", "clean_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON list of cleaning rules applied to each batch")
@click.option("--onions", multiple=True, metavar="COLUMN=ONIONS", help="policy override, e.g. value=eq,ord")
@click.option("--auth", type=click.Choice(["bearer", "basic"]), help="REST authentication (secret from the environment)")
@click.option("--user", help="REST basic-auth user")
@click.option("--items", help="REST: dot path of the record list (JSON) or the record element (XML)")
@click.option("--since-param", default="since", show_default=True, help="REST: query parameter carrying the watermark")
@click.option("--batch-rows", default=50_000, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-seconds", default=1.0, show_default=True, type=float, help="MQTT micro-batch length")
@click.option("--min-group-size", default=5, show_default=True, type=int)
@_errors
def add_cmd(name: str, kind: str, url: str, table: str | None, query: str | None, watermark: str | None,
            topic: str | None, key: str | None, every: float | None, cron: str | None, standby: str | None,
            schema_path: Path | None, clean_path: Path | None, onions: tuple[str, ...], auth: str | None,
            user: str | None, items: str | None, since_param: str, batch_rows: int, batch_seconds: float,
            min_group_size: int) -> None:
    """Define source NAME (nothing is read yet; MQTT sources get their broker session now, so
    messages published from here on are queued for them)."""
    from offchain.sources.spec import SourceSpec
    spec = SourceSpec(name, kind, url, table=table, query=query, watermark=watermark, topic=topic, key=key,
                      every=every, cron=cron, standby=standby,
                      schema=json.loads(schema_path.read_text(encoding="utf-8")) if schema_path else None,
                      clean=json.loads(clean_path.read_text(encoding="utf-8")) if clean_path else [],
                      onions=_parse_onions(onions), auth=auth, user=user, items=items, since_param=since_param,
                      batch_rows=batch_rows, batch_seconds=batch_seconds, min_group_size=min_group_size)
    if kind == "mqtt":
        from offchain.sources.mqtt import register_session
        try:
            register_session(spec)
        except OSError as exc:
            err_console.print(f"[yellow]broker not reachable ({exc}); the session is created at the first sync[/]")
    state = _state()
    state.add(spec)
    emit_json({"added": spec.public(), "state": str(state.path)})


@source.command("list")
@_errors
def list_cmd() -> None:
    """Every source with its head version and connection state."""
    state = _state()
    out = []
    for n in state.names():
        head, status = state.head(n), state.status(n)
        out.append({**state.spec(n).public(), "version": head.version, "rows": head.rows,
                    "connection": status.get("connection", "never synced")})
    emit_json(out)


def _anchor(wallet: WalletChoice, asset_id: int) -> Any:
    """Record each committed version on certificate ``asset_id`` (chain.versions, signed by ``wallet``)."""
    from chain.versions import record_version
    from tds.cli.deployed import Deployed
    d = Deployed.open()
    me = d.signer(wallet)

    def anchor(manifest_hash: str, previous_hash: str | None) -> str:
        return record_version(d.c["AssetRegistry"], lambda fn: d.send(me, fn), asset_id, manifest_hash,
                              previous_hash)
    return anchor


@source.command("sync")
@click.argument("name")
@click.option("--once", is_flag=True, help="one pass (MQTT: until the queue stays empty), then exit")
@click.option("--data-keystore", "data_keystore", type=click.Path(dir_okay=False, path_type=Path),
              help="data keystore (default: $TDS_HOME/keys/provider.json)")
@click.option("--asset", "asset_id", type=click.IntRange(min=1),
              help="record each version on this certificate (AssetRegistry.recordVersion, by its holder)")
@click.option("--processes", default=1, show_default=True, type=int)
@wallet_options
@_errors
def sync_cmd(name: str, once: bool, data_keystore: Path | None, asset_id: int | None, processes: int,
             wallet: WalletChoice) -> None:
    """Sync source NAME: once, or on its schedule until interrupted (progress on stderr)."""
    from offchain.sources.runner import SourceRunner
    state = _state()
    spec = state.spec(name)  # unknown names fail before any password is asked
    state.close()
    store = _store()
    anchor = _anchor(wallet, asset_id) if asset_id else None
    last = [0]

    def progress(src: str, rows: int) -> None:
        if rows - last[0] >= 10_000 or rows < last[0]:
            last[0] = rows
            print(f"{src}: {rows:,} rows", file=sys.stderr, flush=True)

    runner = SourceRunner(_home(), _keys(data_keystore), store.add_bytes, store.cat, processes=processes,
                          anchor=anchor, progress=progress)
    try:
        if once or (spec.every is None and spec.cron is None and spec.kind != "mqtt"):
            emit_json(runner.sync_once(name).to_dict())
            return
        stop = threading.Event()
        try:
            runner.run(name, stop=stop, on_pass=lambda r: print(json.dumps(r.to_dict()), flush=True))
        except KeyboardInterrupt:
            stop.set()
    finally:
        runner.close()


@source.command("status")
@click.argument("name")
@click.option("--quarantine", "show", default=5, show_default=True, help="quarantined rows to show")
@_errors
def status_cmd(name: str, show: int) -> None:
    """Connection state, lag, quality and drift, head version, history and quarantine of NAME."""
    import time
    state = _state()
    spec, head, status = state.spec(name), state.head(name), state.status(name)
    versions = state.versions(name)
    emit_json({"source": spec.public(), "watermark": None if head.watermark is None else str(head.watermark),
               "version": head.version, "dataset_id": head.dataset_id, "rows": head.rows,
               "manifest_cid": head.manifest_cid, "manifest_hash": head.manifest_hash,
               "status": status, "since_last_commit_s": (time.time() - status["last_commit"])
               if status.get("last_commit") else None,
               "versions": [{"version": v.version, "manifest_cid": v.manifest_cid, "manifest_hash": v.manifest_hash,
                             "rows": v.rows_total, "quality": v.quality_overall, "recorded_tx": v.anchored_tx}
                            for v in versions[-10:]],
               "history_file": str(_home().history_file(name)),
               "quarantined": state.quarantine_count(name), "quarantine": state.quarantine(name, show),
               "alerts_file": str(_home().alerts_file)})
