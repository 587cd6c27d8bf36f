"""``tds data ...``: the provider's data work — ingest (clean, score, classify), encrypt into the
content store, show what a grant would expose. Plaintext never leaves this machine: only the
encrypted dataset and the quality report go into the store."""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import click

from tds.cli.output import emit_json, err_console
from tds.cli.store import _errors, _store
from chain.config import keystore_password, load_settings


def _load_table(file: Path, schema_path: Path | None, clean_path: Path | None, yes: bool) -> tuple:
    """Read, type (declared or inferred-and-confirmed schema) and clean a file."""
    from offchain.errors import SchemaError
    from offchain.ingest.cleaning import clean, rule_from_dict
    from offchain.ingest.readers import read_raw
    from offchain.ingest.schema import Schema
    raw = read_raw(file)
    schema = Schema.load(schema_path) if schema_path else None
    table = raw.typed(schema)
    if schema is None:
        err_console.print("[bold]inferred schema[/] (save it with `tds data infer` and pass --schema "
                          "to declare constraints):")
        err_console.print_json(json.dumps(table.schema.to_dict()))
        if not yes and not click.confirm("use the inferred schema?", default=True, err=True):
            raise click.Abort()
    rules = []
    if clean_path:
        try:
            rules = [rule_from_dict(r) for r in json.loads(clean_path.read_text(encoding="utf-8"))]
        except (json.JSONDecodeError, TypeError) as exc:
            raise SchemaError(f"{clean_path}: not a JSON list of cleaning rules ({exc})") from exc
    return clean(table, rules)


def _parse_onions(items: tuple[str, ...]) -> dict[str, list[str]]:
    out = {}
    for item in items:
        col, sep, onions = item.partition("=")
        if not sep or not col:
            raise click.BadParameter(f"{item!r}: expected COLUMN=onion[,onion] (eq, ord, hom, blob)")
        out[col] = [o for o in onions.split(",") if o]
    return out


@click.group("data")
def data() -> None:
    """The provider's data: ingest and score, encrypt into the store, grant exposure."""


@data.command("infer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_errors
def infer_cmd(file: Path) -> None:
    """Print the schema inferred from FILE (edit it, then pass it as --schema)."""
    from offchain.ingest.readers import read_raw
    from offchain.ingest.schema import infer_schema
    raw = read_raw(file)
    emit_json(infer_schema(raw.header, raw.rows, file.stem).to_dict())


_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_SCHEMA = click.option("--schema", "schema_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                       help="declared schema (JSON); inferred and confirmed when absent")
_CLEAN = click.option("--clean", "clean_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                      help="JSON list of cleaning rules (fill_missing, drop_outliers, deduplicate)")
_YES = click.option("--yes", is_flag=True, help="accept an inferred schema without asking")
_AS_OF = click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="timeliness reference date (default today)")


@data.command("ingest")
@_FILE
@_SCHEMA
@_CLEAN
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the canonical report here")
@_YES
@_AS_OF
@_errors
def ingest_cmd(file: Path, schema_path: Path | None, clean_path: Path | None, out: Path | None,
               yes: bool, as_of: _dt.datetime | None) -> None:
    """Read CSV / JSON / XLSX, clean, and print the quality report and its hash."""
    from offchain.ingest.quality import assess
    table, log = _load_table(file, schema_path, clean_path, yes)
    report = assess(table, log, as_of.date() if as_of else None)
    if out:
        out.write_bytes(report.canonical())
    emit_json({"report": report.to_dict(), "hash": report.hash})


@data.command("encrypt")
@_FILE
@_SCHEMA
@_CLEAN
@_YES
@_AS_OF
@click.option("--keystore", type=click.Path(dir_okay=False, path_type=Path),
              help="default: $TDS_HOME/keys/provider.json")
@click.option("--min-group-size", default=5, show_default=True, type=int)
@click.option("--onions", multiple=True, metavar="COLUMN=ONIONS",
              help="override the default policy for a column, e.g. amount=ord,hom (repeatable)")
@click.option("--processes", default=os.cpu_count() or 1, show_default=True, type=int)
@_errors
def encrypt_cmd(file: Path, schema_path: Path | None, clean_path: Path | None, yes: bool,
                as_of: _dt.datetime | None, keystore: Path | None, min_group_size: int,
                onions: tuple[str, ...], processes: int) -> None:
    """Ingest, score, classify and onion-encrypt FILE into the store; prints the manifest CID
    and the quality-report CID and hash. The keystore passphrase comes from
    $TDS_KEYSTORE_PASSWORD or a prompt."""
    from rich.progress import Progress

    from offchain.ingest.classification import classify
    from offchain.ingest.quality import assess
    from offchain.onion.dataset import encrypt_table
    from offchain.onion.keys import Keyring
    from offchain.onion.keystore import Keystore
    from offchain.onion.policy import default_policy
    table, log = _load_table(file, schema_path, clean_path, yes)
    report = assess(table, log, as_of.date() if as_of else None)
    classification = classify(table.schema)
    policy = default_policy(table.schema, classification, min_group_size, _parse_onions(onions))
    path = keystore or load_settings().home / "keys" / "provider.json"
    passphrase = keystore_password() or click.prompt(
        "keystore password", hide_input=True, confirmation_prompt=not path.exists(), err=True)
    ks = Keystore.open(path, passphrase) if path.exists() else Keystore.create(path, passphrase)
    ring = Keyring()
    hom_rows = table.num_rows if any("hom" in f.onions for f in policy.fields.values()) else 0
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("encrypting", total=len(table.schema.fields) + hom_rows)
        ds = encrypt_table(table, policy, classification, ring, quality_hash=report.hash,
                           processes=processes,
                           progress=lambda stage, k: bar.advance(task, k) if stage != "chunk" else None)
    ks.add_keyring(ring)
    store_ = _store()
    report_cid = store_.add_bytes(report.canonical())
    ds.manifest["quality_report_cid"] = report_cid   # the quality gate of 'tds asset register' reads it
    manifest_cid = ds.publish(store_.add_bytes)
    from offchain.onion.rotation_policy import DatasetIndex
    DatasetIndex.of_keystore(path).record(ds.manifest, manifest_cid, ds.manifest_hash)  # for scheduled rotation
    emit_json({"manifest_cid": manifest_cid, "manifest_hash": ds.manifest_hash,
               "dataset_id": ds.dataset_id, "rows": table.num_rows, "objects": len(ds.objects),
               "quality_report_cid": report_cid, "quality_report_hash": report.hash,
               "classification": classification.dataset, "policy": policy.to_dict(),
               "keystore": str(path)})


@data.command("exposure")
@click.argument("manifest_cid")
@click.argument("operations", nargs=-1, required=True)
@click.option("--consumer", default="", help="the consumer's DID")
@click.option("--price", default=0, type=int, help="price per use (release rules may depend on it)")
@click.option("--trusted", multiple=True, help="consumers trusted with leaky layers (repeatable)")
@click.option("--min-price-leaky", default=0, type=int, show_default=True,
              help="price from which DET / order layers of sensitive fields are released")
@_errors
def exposure_cmd(manifest_cid: str, operations: tuple[str, ...], consumer: str, price: int,
                 trusted: tuple[str, ...], min_price_leaky: int) -> None:
    """What granting OPERATIONS (e.g. sum:amount range:day group_by:region count) on the
    dataset would expose, field by field — to read before signing the grant."""
    from offchain.keyservice.release import grant_exposure
    from offchain.onion.policy import ReleaseRules
    manifest: dict[str, Any] = json.loads(_store().cat(manifest_cid))
    emit_json(grant_exposure(manifest, operations, consumer, price,
                             ReleaseRules(frozenset(trusted), min_price_leaky)))


@data.command("rotate")
@click.argument("manifest_cids", nargs=-1)
@click.option("--rotate-every", metavar="PERIOD",
              help="Policy: also rotate every tracked dataset whose keys are older than PERIOD (30d, 12h, 2w). "
                   "Applied each time the command runs: schedule it with cron.")
@click.option("--destroy-old", is_flag=True,
              help="Destroy the keys of replaced versions no live grant on chain still needs (docs/backup.md).")
@click.option("--keystore", type=click.Path(dir_okay=False, path_type=Path),
              help="default: $TDS_HOME/keys/provider.json")
@click.option("--background", is_flag=True, help="Detach; progress lines go to keys/rotation.log beside the keystore.")
@click.option("--processes", default=1, show_default=True, type=int)
@click.option("--identity", "w_identity", metavar="NAME",
              help="Record each new version on chain as this 'tds id' identity (the provider): AssetRegistry."
                   "recordVersion on its certificates of an earlier version; also records pending ones.")
@click.option("--dev-account", "w_dev", type=int, metavar="N", help="Record as funded dev account N instead.")
@_errors
def rotate_cmd(manifest_cids: tuple[str, ...], rotate_every: str | None, destroy_old: bool, keystore: Path | None,
               background: bool, processes: int, w_identity: str | None, w_dev: int | None) -> None:
    """Re-encrypt datasets under fresh keys: MANIFEST_CIDS now, and with --rotate-every every tracked
    dataset that is due. Each keeps the cryptography profile its manifest records. Old keys are
    retired (still serve grants on the old version) and, with --destroy-old, destroyed once no live
    grant needs them. With --identity (or --dev-account) each new version is recorded on the
    certificate like an appended one (AssetRegistry.recordVersion); a key service following the
    keystore serves it without a restart. The keystore passphrase comes from $TDS_KEYSTORE_PASSWORD
    or a prompt."""
    import subprocess
    import sys
    import time

    from chain.config import KEYSTORE_PASSWORD_ENV
    from offchain.onion.keystore import Keystore
    from offchain.onion.rotation_policy import (DatasetIndex, anchor_pending, destroy_unneeded, due, parse_period,
                                                rotate_version)
    if not (manifest_cids or rotate_every or destroy_old or w_identity or w_dev is not None):
        raise click.UsageError("name MANIFEST_CIDS, or give --rotate-every, --destroy-old and/or a wallet to anchor "
                               "pending versions with")
    if w_identity and w_dev is not None:
        raise click.UsageError("anchor as --identity or --dev-account, not both")
    every = parse_period(rotate_every) if rotate_every else None
    path = keystore or load_settings().home / "keys" / "provider.json"
    passphrase = keystore_password() or click.prompt("keystore password", hide_input=True, err=True)
    if background:
        log = path.parent / "rotation.log"
        argv = [sys.executable, "-c", "from tds.cli import main; main()", "data", "rotate", *manifest_cids,
                "--keystore", str(path), "--processes", str(processes)]
        argv += (["--rotate-every", rotate_every] if rotate_every else []) + (["--destroy-old"] if destroy_old else [])
        argv += (["--identity", w_identity] if w_identity else []) + (["--dev-account", str(w_dev)] if w_dev is not None else [])
        with open(log, "ab") as fh:
            proc = subprocess.Popen(argv, env={**os.environ, KEYSTORE_PASSWORD_ENV: passphrase}, stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        emit_json({"pid": proc.pid, "log": str(log)})
        return

    def say(line: str) -> None:
        err_console.print(f"{time.strftime('%H:%M:%S')} {line}", markup=False, highlight=False)

    with _RotationLock(path.parent / "rotation.lock"):
        ks = Keystore.open(path, passphrase)
        index = DatasetIndex.of_keystore(path)
        store_ = _store()
        todo = list(dict.fromkeys(manifest_cids))
        if every is not None:
            current = index.current()
            for dataset_id, age in due(index, ks, every):
                say(f"{dataset_id}: keys {age / 86400:.1f} days old, policy {rotate_every}: due")
                todo.append(current[dataset_id]["cid"])
        anchor = _version_anchor(w_identity, w_dev, say)
        anchored = anchor_pending(index, anchor, say) if anchor is not None else []
        entries = [rotate_version(index, ks, store_, cid, say, processes, anchor) for cid in dict.fromkeys(todo)]
        destroyed = destroy_unneeded(index, ks, _live_grants(say), say) if destroy_old else {}
    emit_json({"rotated": [e["cid"] for e in entries], "anchored": anchored + [e["cid"] for e in entries
                                                                               if e.get("anchors")],
               "anchors": {e["cid"]: e.get("anchors", e.get("anchor_error", "pending")) for e in entries},
               "destroyed": destroyed, "index": str(index.path)})


def _version_anchor(identity: str | None, dev: int | None, say: Any = lambda line: None) -> Any:
    """The on-chain record of rotated versions (AssetRegistry.recordVersion), signed by the wallet
    given (None without one, or when the chain cannot be reached: the versions then stay pending
    for the next run)."""
    if identity is None and dev is None:
        return None
    from chain.errors import TdsError
    from offchain.onion.rotation_policy import chain_version_anchor
    from tds.cli.deployed import Deployed
    from tds.cli.wallet import WalletChoice
    try:
        d = Deployed.open()
    except (TdsError, OSError, ValueError) as exc:
        say(f"cannot reach the chain ({type(exc).__name__}: {exc}); new versions stay pending")
        return None
    me = d.signer(WalletChoice(identity, None, dev))   # a wrong password is refused, not deferred
    return chain_version_anchor(d.c["AssetRegistry"], d.c["Evidence"], lambda fn: d.send(me, fn), me.address,
                                int(d.deployment.get("block") or 0))


def _live_grants(say: Any) -> Any:
    """The chain's live-grant check, or None (keep every key) when the chain cannot be asked."""
    from chain.errors import TdsError
    try:
        from chain.connection import connect
        from chain.deploy import bind, read_deployment
        from offchain.onion.rotation_policy import chain_live_grants
        settings = load_settings()
        w3 = connect(settings, start=False)
        doc = read_deployment(settings.deployment_path(w3.eth.chain_id), w3.eth.chain_id)
        return chain_live_grants(bind(w3, doc, "AssetRegistry"), bind(w3, doc, "Authorizations"), doc["block"],
                                 lambda: w3.eth.get_block("latest")["timestamp"])
    except (TdsError, OSError, ValueError, KeyError) as exc:  # no chain, no deployment: destroy nothing
        say(f"cannot ask the chain about grants ({type(exc).__name__}: {exc}); no key is destroyed")
        return None


class _RotationLock:
    """One rotation at a time per keystore (cron runs may overlap): a lock file holding the pid."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        from offchain.errors import DataPlaneError
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pid = self.path.read_text().strip()
            if pid.isdigit() and _alive(int(pid)):
                raise DataPlaneError(f"another rotation (pid {pid}) holds {self.path}") from None
            self.path.unlink(missing_ok=True)   # a stale lock of a process that died
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
