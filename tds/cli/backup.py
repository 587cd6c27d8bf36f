"""``tds backup create|verify|restore``: one encrypted, integrity-checked archive of a TDS_HOME
(keystores still encrypted, journals, release logs, pins and their blocks, the deployment file);
docs/backup.md says what is in it, what is not, and who can read it."""
from __future__ import annotations

import os
import re
from pathlib import Path

import click

from chain.config import load_settings
from tds.cli.output import emit_json, err_console
from tds.cli.store import _errors

_PASS_ENV = click.option("--passphrase-env", metavar="VAR",
                         help="Environment variable holding the backup passphrase (default: a prompt).")
_SHARE = click.option("--share", "shares", multiple=True, metavar="SHARE",
                      help="A Shamir share of the backup key (repeat it k times instead of a passphrase).")


def _passphrase(env: str | None, confirm: bool) -> str:
    if env:
        value = os.environ.get(env)
        if value is None:
            raise click.BadParameter(f"environment variable {env} is not set", param_hint="--passphrase-env")
        return value
    return click.prompt("backup passphrase", hide_input=True, confirmation_prompt=confirm, err=True)


def _split(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"(\d+)(?:/|of|-of-)(\d+)", text.strip())
    if m is None:
        raise click.BadParameter(f"{text!r}: expected K/N, e.g. 3/5", param_hint="--shares")
    return int(m[1]), int(m[2])


def _default_deployments() -> list[Path]:
    s = load_settings()
    candidates = [s.deployment_file] if s.deployment_file else [
        s.deployment_path(s.chain_id if s.chain_id is not None else 31337)]
    return [p for p in candidates if p is not None and p.is_file()]


def _progress(line: str) -> None:
    if "/store/blocks/" not in line:   # one line per file, not per content block
        err_console.print(f"  + {line}", markup=False, highlight=False)


@click.group("backup")
def backup() -> None:
    """Back up, verify and restore this TDS_HOME (docs/backup.md)."""


@backup.command("create")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@_PASS_ENV
@click.option("--shares", "split", metavar="K/N",
              help="Split a random backup key into N Shamir shares, any K of which restore (printed once). "
                   "Without --passphrase-env the archive then opens with shares only.")
@click.option("--include-chain", is_flag=True, help="Also back up the embedded chain's state ($TDS_HOME/chain).")
@click.option("--deployment", "deployments", multiple=True, type=click.Path(exists=True, dir_okay=False,
                                                                             path_type=Path),
              help="Deployment file(s) to include (default: the one TDS_DEPLOYMENT / TDS_CHAIN_ID selects).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@_errors
def create_cmd(out: Path, passphrase_env: str | None, split: str | None, include_chain: bool,
               deployments: tuple[Path, ...], force: bool) -> None:
    """Write an encrypted backup of $TDS_HOME to OUT."""
    from offchain.backup.ops import create_backup

    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to overwrite it")
    shares = _split(split)
    passphrase = _passphrase(passphrase_env, True) if passphrase_env or shares is None else None
    home = load_settings().home
    result = create_backup(home, out, passphrase=passphrase, shares=shares, include_chain=include_chain,
                           deployments=list(deployments) or _default_deployments(),
                           progress=_progress)
    err_console.print(f"{result.files} files ({result.bytes} bytes) in {result.path}", markup=False)
    if result.shares:
        err_console.print(f"backup key {result.key_id}: {len(result.shares)} shares, any {shares[0]} restore it; "
                          "give each to a different holder — they are not stored anywhere else", markup=False)
    emit_json({"archive": str(result.path), "key_id": result.key_id, "files": result.files, "bytes": result.bytes,
               "home": str(home), "shares": result.shares})


@backup.command("verify")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_PASS_ENV
@_SHARE
@_errors
def verify_cmd(archive: Path, passphrase_env: str | None, shares: tuple[str, ...]) -> None:
    """Decrypt ARCHIVE and check every file against its manifest; writes nothing."""
    from offchain.backup.ops import verify_backup

    passphrase = None if shares else _passphrase(passphrase_env, False)
    r = verify_backup(archive, passphrase, list(shares))
    emit_json({"archive": str(archive), "ok": True, "key_id": r.key_id, "created": r.created, "files": r.files,
               "bytes": r.bytes})


@backup.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--home", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Where to restore (default: $TDS_HOME); must be empty or absent unless --force.")
@click.option("--force", is_flag=True, help="Restore over a non-empty home: its contents are moved aside first.")
@_PASS_ENV
@_SHARE
@_errors
def restore_cmd(archive: Path, target: Path | None, force: bool, passphrase_env: str | None,
                shares: tuple[str, ...]) -> None:
    """Restore ARCHIVE into an empty TDS_HOME (checked completely before anything is renamed into place)."""
    from offchain.backup.ops import restore_backup

    passphrase = None if shares else _passphrase(passphrase_env, False)
    r = restore_backup(archive, target or load_settings().home, passphrase, list(shares), force=force)
    if r.deployments:
        err_console.print(f"deployment file restored to {r.deployments[0]}; point TDS_DEPLOYMENT at it unless "
                          "the project's deployments/ folder already has it", markup=False)
    emit_json({"archive": str(archive), "home": str(r.target), "files": r.files, "bytes": r.bytes,
               "moved_aside": str(r.moved_aside) if r.moved_aside else None,
               "deployments": [str(p) for p in r.deployments]})
