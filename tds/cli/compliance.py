"""``tds compliance scan|findings|ack|fix|verify|report``: compliance scans (docs/compliance.md).

The scan runs under the scanning authority's wallet — an account holding REGULATOR on
AssetRegistry, or the deployment's operator — which anchors each finding's ``opened`` and
``verified`` transitions; the responsible party acknowledges and reports a fix with its own wallet
(anchored under its own account). Findings and transition logs live in
``$TDS_HOME/compliance/<chain>-<AssetRegistry>/``.

``scan`` and ``verify`` read the chain's part of the facts from the shared event index when one is
configured (``TDS_INDEX_URL``) or present (``$TDS_HOME/index/events.sqlite``), brought up to the
chain's head first; ``--from-chain`` reads the node alone (both give the same facts).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from chain.errors import TdsError
from tds.cli.output import console, emit_json, err_console
from tds.cli.refusals import StateRefused, onchain
from tds.cli.wallet import WalletChoice, wallet_options

CATEGORY = click.Choice(["source", "use", "flow"])


class ComplianceOptionError(TdsError):
    """A ``tds compliance`` option that cannot be used as given."""


def _evidence_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed([
        click.option("--oplog", multiple=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
                     help="An operation-log folder (a key service's) whose anchored releases are compared with "
                          "the chain (repeatable)."),
        click.option("--credentials", multiple=True, type=click.Path(exists=True, path_type=Path),
                     help="Role credentials (JSON files or folders) to read consumers' jurisdictions from "
                          "(repeatable; matched to the chain by hash)."),
        click.option("--reader", metavar="NAME", default=None,
                     help="The regulator's 'tds id' identity: open its sealed consent/ownership copies and "
                          "re-hash them (password: $TDS_KEYSTORE_PASSWORD or --password-env)."),
        click.option("--password-env", metavar="VAR", default=None, help="Environment variable with --reader's password."),
        click.option("--from-chain", is_flag=True,
                     help="Read events and state from the node (eth_getLogs, views) instead of the event index."),
    ]):
        fn = opt(fn)
    return fn


def _did_of(d: Any, address: str) -> str:
    logs = d.c["IdentityRegistry"].events.IdentityBound().get_logs(
        from_block=int(d.deployment["block"]), argument_filters={"account": address})
    return logs[-1]["args"]["did"] if logs else f"account:{address}"


def _authority(d: Any, wallet: WalletChoice) -> Any:
    from chain.system import role_id

    me = d.signer(wallet)
    is_regulator = d.c["AssetRegistry"].functions.hasRole(role_id("REGULATOR"), me.address).call()
    if not is_regulator and me.address.lower() != str(d.deployment.get("roles", {}).get("operator", "")).lower():
        raise StateRefused(f"{me.address} is neither a REGULATOR on AssetRegistry nor the operator; scan and verify "
                           f"with the regulator's wallet (dev account 1 on the embedded chain)")
    return me


def _index(d: Any, quiet: bool = False) -> Any:
    """The event index scans read (None: none configured or present, so the node), with a note."""
    from audit.index import EventIndex, IndexMismatch
    from oversight.index_source import IndexUnavailable, configured_index

    url = configured_index(d.settings)
    if url is None:
        return None
    try:
        index = EventIndex(d.w3, d.deployment, url)
    except IndexMismatch as exc:
        raise IndexUnavailable(url, str(exc)) from None
    if not quiet:
        err_console.print(f"facts from the event index {index.engine.url.render_as_string(hide_password=True)}, "
                          "brought up to the chain's head (--from-chain reads the node)", markup=False)
    return index


def _scanner(d: Any, account: Any, oplog: tuple[Path, ...] = (), credentials: tuple[Path, ...] = (),
             reader: str | None = None, password_env: str | None = None, pushes: tuple[Any, ...] = (),
             from_chain: bool = True, quiet: bool = False) -> Any:
    from chain.config import keystore_password
    from oversight.compliance.facts import load_credentials
    from oversight.compliance.findings import FindingStore, TransitionAnchor
    from oversight.compliance.scan import Scanner, work_dir

    folder = work_dir(d.settings.home, d.chain_id, d.c["AssetRegistry"].address)
    ident = None
    if reader is not None:
        from did.identity import Identity
        from tds.cli.identity import _password, _root

        pw = keystore_password() if not password_env else None
        ident = Identity.load(_root(d.settings), reader, pw if pw is not None else _password(password_env, reader))
    store = d.store()
    block = int(d.deployment["block"])
    return Scanner(d.w3, d.c, block, store.cat, account, _did_of(d, account.address),
                   FindingStore(folder / "findings.sqlite"), TransitionAnchor(d.w3, d.c["Evidence"], folder / "log", block),
                   tuple(oplog), load_credentials(credentials), ident, pushes,
                   None if from_chain else _index(d, quiet))


def recipients(d: Any) -> dict[str, tuple[str, bytes]]:
    """The operator's and the regulator's DIDs and key-agreement keys, from the deployment's roles and
    the IdentityRegistry (both must have bound an identity)."""
    from did.sealing import ChainDirectory

    roles = d.deployment.get("roles", {})
    directory = ChainDirectory(d.c["IdentityRegistry"], int(d.deployment["block"]))
    return {role: directory.resolve(roles[role]) for role in ("operator", "regulator")}


def document_sender(wallet: WalletChoice) -> Any:
    """Who signs the sealed documents: the provider's DID key with --identity, else a one-off key
    (the hashes in the registration, minted or anchored by the provider's account, are what bind)."""
    from did.identity import create_identity

    return wallet.identity_keys() if wallet.identity else create_identity("registrant")


@click.group("compliance")
def compliance() -> None:
    """Compliance scans: source (consent, ownership), use (jobs vs grants vs anchored logs), flow
    (residency, TLS); graded findings tracked opened → acknowledged → fixed → verified."""


@compliance.command("scan")
@_evidence_options
@click.option("--category", "categories", multiple=True, type=CATEGORY, help="Only these checks (repeatable).")
@click.option("--webhook", multiple=True, metavar="[ADDRESS=]URL",
              help="Push each open finding as JSON here; with ADDRESS= only that party's findings (repeatable).")
@click.option("--schedule", metavar="CRON", default=None,
              help="Keep running: scan at each time this five-field cron expression names (UTC).")
@click.option("--json", "as_json", is_flag=True)
@wallet_options
@onchain
def scan_cmd(oplog: tuple[Path, ...], credentials: tuple[Path, ...], reader: str | None, password_env: str | None,
             from_chain: bool, categories: tuple[str, ...], webhook: tuple[str, ...], schedule: str | None,
             as_json: bool, wallet: WalletChoice) -> None:
    """Scan the data space once (or on --schedule) and open, reopen and push findings."""
    from oversight.compliance.checks import CATEGORIES
    from oversight.compliance.scan import parse_push, scan
    from oversight.compliance.schedule import parse_schedule, run_schedule
    from tds.cli.deployed import Deployed

    if schedule is not None:
        schedule = parse_schedule(schedule)
    d = Deployed.open()
    s = _scanner(d, _authority(d, wallet), oplog, credentials, reader, password_env,
                 tuple(parse_push(w) for w in webhook), from_chain, quiet=as_json)
    cats = tuple(categories) or CATEGORIES

    def once() -> None:
        r = scan(s, cats)
        if as_json:
            emit_json(r.to_json())
            return
        console.print(f"block {r.block}: {len(r.violations)} violation(s); opened {len(r.opened)}, reopened "
                      f"{len(r.reopened)}, no longer seen {len(r.gone)}; pushed {len(r.delivered)}"
                      + (f", {len(r.failed)} push(es) failed (retried next scan)" if r.failed else ""), markup=False)
        for v in r.violations:
            console.print(f"  {v.key}  {v.severity:<8} {v.check:<24} {v.subject}: {v.detail}", markup=False)

    if schedule is None:
        once()
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    err_console.print(f"scanning on schedule '{schedule}' (UTC); Ctrl-C stops", markup=False)
    try:
        run_schedule(schedule, once)
    except KeyboardInterrupt:
        err_console.print("stopped", markup=False)


@compliance.command("findings")
@click.option("--state", type=click.Choice(["opened", "acknowledged", "fixed", "verified"]), default=None)
@click.option("--json", "as_json", is_flag=True)
def findings_cmd(state: str | None, as_json: bool) -> None:
    """List findings with their transitions."""
    from oversight.compliance.findings import FindingStore
    from oversight.compliance.scan import work_dir
    from tds.cli.deployed import Deployed

    d = Deployed.open()
    store = FindingStore(work_dir(d.settings.home, d.chain_id, d.c["AssetRegistry"].address) / "findings.sqlite")
    rows = [f.to_json() | {"transitions": [t.to_json() for t in store.transitions(f.id)]} for f in store.list(state)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no findings", markup=False)
    for r in rows:
        seen = "" if r["present"] else " (no longer seen)"
        console.print(f"{r['id']}  {r['severity']:<8} {r['state']:<12}{seen} {r['check']} on {r['subject']} "
                      f"(responsible {r['responsible']})\n    {r['detail']}\n    fix: {r['fix']}", markup=False)


def _step(finding: str, to: str, note: str, wallet: WalletChoice) -> None:
    from oversight.compliance.scan import step
    from tds.cli.deployed import Deployed

    d = Deployed.open()
    me = d.signer(wallet)
    s = _scanner(d, me)
    t = step(s, finding, to, me, _did_of(d, me.address), note)
    click.echo(f"finding {t.finding} {to} by {me.address} (batch root {t.root}, anchored)")


@compliance.command("ack")
@click.argument("finding")
@click.option("--note", default="", help="What the responsible party will do.")
@wallet_options
@onchain
def ack_cmd(finding: str, note: str, wallet: WalletChoice) -> None:
    """The responsible party acknowledges FINDING (signed and anchored under its account)."""
    _step(finding, "acknowledged", note, wallet)


@compliance.command("fix")
@click.argument("finding")
@click.option("--note", default="", help="What was done (e.g. the revoking transaction).")
@wallet_options
@onchain
def fix_cmd(finding: str, note: str, wallet: WalletChoice) -> None:
    """The responsible party reports FINDING fixed (a later verify checks it against a fresh scan)."""
    _step(finding, "fixed", note, wallet)


@compliance.command("verify")
@click.argument("finding")
@_evidence_options
@click.option("--note", default="")
@wallet_options
@onchain
def verify_cmd(finding: str, oplog: tuple[Path, ...], credentials: tuple[Path, ...], reader: str | None,
               password_env: str | None, from_chain: bool, note: str, wallet: WalletChoice) -> None:
    """The scanning authority closes a fixed FINDING once a fresh scan no longer shows it."""
    from oversight.compliance.scan import verify
    from tds.cli.deployed import Deployed

    d = Deployed.open()
    s = _scanner(d, _authority(d, wallet), oplog, credentials, reader, password_env, from_chain=from_chain)
    t = verify(s, finding, note)
    click.echo(f"finding {t.finding} verified by {t.actor} (batch root {t.root}, anchored)")


@compliance.command("report")
@click.option("--format", "fmt", type=click.Choice(["json", "html"]), default="json", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here (default: stdout).")
@click.option("--no-proofs", is_flag=True, help="Skip proving each transition's anchoring against the chain.")
def report_cmd(fmt: str, out: Path | None, no_proofs: bool) -> None:
    """The regulator's report: every finding, its grade, suggested fix and anchored transitions."""
    import json

    from oversight.compliance.findings import FindingStore, check_anchored
    from oversight.compliance.report import build_report, render_html
    from oversight.compliance.scan import work_dir
    from tds.cli.deployed import Deployed

    d = Deployed.open()
    store = FindingStore(work_dir(d.settings.home, d.chain_id, d.c["AssetRegistry"].address) / "findings.sqlite")
    proofs = {}
    if not no_proofs:
        for f in store.list():
            for t in store.transitions(f.id):
                proofs[f"{t.finding}#{t.seq}"] = check_anchored(t, d.c["Evidence"], int(d.deployment["block"]))
    rep = build_report(store, d.deployment, proofs)
    text = render_html(rep) if fmt == "html" else json.dumps(rep, indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"report ({fmt}, {len(rep['findings'])} findings) -> {out}")


@compliance.command("amend")
@click.argument("asset_id", type=click.IntRange(min=1))
@click.option("--consent", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The data subjects' consent record (hashed; sealed to the operator and the regulator).")
@click.option("--ownership", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The ownership proof (hashed and sealed like --consent).")
@click.option("--purpose", "purposes", multiple=True, metavar="TEXT", help="Replace the consented purposes.")
@click.option("--domestic-only", "residency", metavar="JURISDICTION", default=None, help="Set the residency.")
@wallet_options
@onchain
def amend_cmd(asset_id: int, consent: Path | None, ownership: Path | None, purposes: tuple[str, ...],
              residency: str | None, wallet: WalletChoice) -> None:
    """Holder: amend ASSET_ID's registration (add the consent record or ownership proof), anchored
    about the asset through Evidence; scans read the latest amendment of the current holder."""
    from chain.cid import cid_from_bytes
    from oversight.compliance.facts import CLASSIFICATIONS
    from oversight.compliance.registration import (
        anchor_amendment,
        build_registration,
        find_amendment,
        load_registration,
    )
    from tds.cli.deployed import Deployed

    if consent is None and ownership is None and not purposes and residency is None:
        raise ComplianceOptionError("nothing to amend: pass --consent, --ownership, --purpose or --domestic-only")
    d = Deployed.open()
    me = d.signer(wallet)
    holder = d.c["AssetRegistry"].functions.ownerOf(asset_id).call()
    if holder != me.address:
        raise StateRefused(f"asset {asset_id} is held by {holder}; only the holder amends its registration")
    ev, store, block = d.registration(asset_id), d.store(), int(d.deployment["block"])
    manifest_hash = "0x" + bytes(ev["manifestHash"]).hex()
    found = find_amendment(d.c["Evidence"], asset_id, holder, manifest_hash, store.cat, block)
    current = found[0] if found else load_registration(bytes(ev["metadataCid"]), store.cat)
    manifest_cid = cid_from_bytes(bytes(ev["contentCid"])).encode()
    dataset = current.dataset_id if current else json.loads(store.cat(manifest_cid))["dataset_id"]
    keep = {k: v for k, v in (("consent", current.consent), ("ownership", current.ownership)) if v} if current else {}
    docs = {k: p.read_bytes() for k, p in (("consent", consent), ("ownership", ownership)) if p is not None}
    old_res = current.residency.jurisdiction if current and current.residency else None
    doc = build_registration(document_sender(wallet), lambda: recipients(d), dataset_id=dataset,
                             manifest_cid=manifest_cid, manifest_hash=manifest_hash,
                             level=CLASSIFICATIONS[int(ev["classification"])], documents=docs,
                             purposes=purposes or (current.purposes if current else ()),
                             residency=residency or old_res, endpoints=current.endpoints if current else (),
                             policy="register-non-compliant", add_bytes=store.add_bytes, keep=keep)
    tx = anchor_amendment(d.space.sender(me), d.c["Evidence"], asset_id, doc, store.add_bytes)
    click.echo(f"asset {asset_id}: registration amended ({doc.status}"
               + (f", still missing {', '.join(doc.missing)}" if doc.missing else "") + f"; anchored in {tx})")
