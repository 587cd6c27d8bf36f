"""``tds asset ...`` and ``tds catalog``: data-asset certificates. The provider registers an
encrypted dataset (its manifest, from ``tds data encrypt``, is read from the content store for
its hash, classification and quality-report hash), takes it offline with a final record, or
freezes it; the consumer records the destruction of its copies when it is done with a grant."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from eth_utils import keccak
from web3.logs import DISCARD

from chain.ops import describe
from chain.system import role_id
from tds.cli.deployed import CLASSIFICATIONS, Deployed
from tds.cli.output import console, emit_json
from tds.cli.refusals import BadInput, NotYours, StateRefused, iso, onchain
from tds.cli.wallet import WalletChoice, wallet_options

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
DESTRUCTION = keccak(text="DESTRUCTION")


def _tx(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def _cid_text(raw: bytes) -> str:
    from chain.cid import cid_from_bytes

    try:
        return cid_from_bytes(bytes(raw)).encode()
    except Exception:
        return "0x" + bytes(raw).hex()


def read_manifest(d: Deployed, cid: str) -> tuple[dict[str, Any], bytes]:
    """The encrypted dataset's manifest from the content store, and its binary CID."""
    from chain.cid import parse_cid
    from chain.errors import InvalidCid
    from offchain.errors import DataPlaneError

    try:
        binary = parse_cid(cid).to_bytes()
    except (DataPlaneError, InvalidCid) as exc:
        raise BadInput(f"{cid!r} is not a CID: {exc}") from None
    try:
        raw = d.store().cat(cid)
    except (DataPlaneError, InvalidCid):
        raise BadInput(f"manifest {cid} is not in the content store; encrypt the data first "
                       f"('tds data encrypt FILE' prints the manifest CID)") from None
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        manifest = None
    if not isinstance(manifest, dict) or "dataset_id" not in manifest or "classification" not in manifest:
        raise BadInput(f"{cid} is not an encrypted-dataset manifest (register the manifest CID that "
                       f"'tds data encrypt' printed)")
    return manifest, binary


@click.group("asset")
def asset() -> None:
    """Data-asset certificates: register, show, freeze, take offline; destruction proofs."""


@asset.command("register")
@click.argument("manifest_cid")
@click.option("--template", "template_id", type=click.IntRange(min=1), default=1, show_default=True,
              help="Certificate template (rights, operations, split) published by the operator.")
@click.option("--metadata", "metadata_cid", default=None,
              help="CID of the public metadata document (default: the manifest's).")
@click.option("--quality-hash", "quality_text", default=None, metavar="0x…",
              help="Quality-report hash (default: the one the manifest carries).")
@click.option("--quality-report", "report_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The quality report (canonical JSON) behind the hash (default: from the content store).")
@click.option("--min-quality", default=None, metavar="SCORE",
              help="Refuse below this overall quality score (default: TDS_MIN_QUALITY, 0.8; 0 disables the gate).")
@click.option("--consent", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The data subjects' consent record: its hash is registered, the file sealed to the operator "
                   "and the regulator (docs/compliance.md).")
@click.option("--ownership", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The ownership proof (hashed and sealed like --consent).")
@click.option("--purpose", "purposes", multiple=True, metavar="TEXT",
              help="A purpose the consent covers (repeatable); grants for other purposes are findings.")
@click.option("--domestic-only", "residency", metavar="JURISDICTION", default=None,
              help="The data may not leave JURISDICTION (e.g. CN): no grant to a consumer credentialed elsewhere.")
@click.option("--endpoint", "endpoints", multiple=True, metavar="URL",
              help="A service URL the provider runs for this dataset (checked for TLS; repeatable).")
@wallet_options
@_JSON
@onchain
def asset_register(manifest_cid: str, template_id: int, metadata_cid: str | None, quality_text: str | None,
                   report_path: Path | None, min_quality: str | None, consent: Path | None, ownership: Path | None,
                   purposes: tuple[str, ...], residency: str | None, endpoints: tuple[str, ...], as_json: bool,
                   wallet: WalletChoice) -> None:
    """Provider: mint a certificate for the encrypted dataset whose manifest is MANIFEST_CID. A dataset
    whose quality report scores below the threshold is refused (QualityBelowThreshold). A personal
    (sensitive or confidential) dataset without --consent and --ownership is refused, or registered
    as non-compliant, as the template's terms document says (docs/compliance.md)."""
    from chain.cid import parse_cid
    from chain.errors import InvalidCid
    from offchain.errors import DataPlaneError
    from offchain.onion.dataset import manifest_hash as hash_of_manifest

    d = Deployed.open()
    manifest, content = read_manifest(d, manifest_cid)
    level = (manifest.get("classification") or {}).get("dataset")
    if level not in CLASSIFICATIONS:
        raise BadInput(f"manifest {manifest_cid} has no valid dataset classification ({level!r})")
    quality = quality_text or manifest.get("quality_report_hash")
    try:
        quality_hash = bytes.fromhex(quality[2:]) if isinstance(quality, str) and quality.startswith("0x") else b""
    except ValueError:
        quality_hash = b""
    if quality_text and len(quality_hash) != 32:
        raise BadInput(f"--quality-hash {quality_text!r} is not 32 bytes as 0x-hex")
    if len(quality_hash) != 32:
        raise BadInput(f"manifest {manifest_cid} carries no quality-report hash: encrypt with 'tds data encrypt' "
                       f"(which scores the data first) or pass --quality-hash")
    from chain.config import load_settings
    from offchain.sources.gate import find_report, require_quality
    report = (json.loads(report_path.read_text(encoding="utf-8")) if report_path
              else find_report(manifest, d.store().cat))
    require_quality(manifest["dataset_id"], report, "0x" + quality_hash.hex(),
                    min_quality if min_quality is not None else load_settings().min_quality)
    try:
        metadata = parse_cid(metadata_cid).to_bytes() if metadata_cid else content
    except (DataPlaneError, InvalidCid) as exc:
        raise BadInput(f"--metadata {metadata_cid!r} is not a CID: {exc}") from None
    active, _rights, ops, _split = d.c["CertificateTemplates"].functions.mintTerms(template_id).call()
    if not active:
        raise StateRefused(f"certificate template {template_id} does not exist or was retired; ask the operator "
                           f"which --template to use")
    me = d.signer(wallet)
    if not d.c["IdentityRegistry"].functions.hasParticipantRole(me.address, role_id("PROVIDER")).call():
        raise StateRefused(f"{me.address} holds no PROVIDER role: the operator must issue one "
                           f"('tds id credential issue --role PROVIDER --grant')")
    manifest_hash = bytes.fromhex(hash_of_manifest(manifest)[2:])   # SM3 for an sm-profile manifest
    status = None
    from oversight.compliance.registration import is_personal

    if consent or ownership or purposes or residency or endpoints or is_personal(level):
        if metadata_cid:
            raise BadInput("--metadata cannot be combined with compliance documents: the registration document "
                           "is the certificate's metadata")
        metadata, status = _registration(d, wallet, manifest, manifest_cid, "0x" + manifest_hash.hex(), level,
                                         template_id, consent, ownership, purposes, residency, endpoints)
    reg = d.c["AssetRegistry"]
    r = d.send(me, reg.functions.mint((content, metadata, manifest_hash, CLASSIFICATIONS.index(level),
                                       quality_hash, template_id)))
    asset_id = reg.events.AssetRegistered().process_receipt(r, errors=DISCARD)[0]["args"]["assetId"]
    out = {"assetId": asset_id, "provider": me.address, "dataset": manifest["dataset_id"], "manifestCid": manifest_cid,
           "manifestHash": "0x" + manifest_hash.hex(), "classification": level, "templateId": template_id,
           "allowedOps": describe(ops), "tx": _tx(r), "metadataCid": _cid_text(metadata), "compliance": status}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"asset {asset_id}: dataset {manifest['dataset_id']} ({level}), template {template_id}, "
                   f"certificate held by {me.address}" + (f"; registered {status}" if status else ""))


def _registration(d: Deployed, wallet: WalletChoice, manifest: dict[str, Any], manifest_cid: str, manifest_hash: str,
                  level: str, template_id: int, consent: Path | None, ownership: Path | None,
                  purposes: tuple[str, ...], residency: str | None, endpoints: tuple[str, ...]) -> tuple[bytes, str]:
    """Seal the documents to the operator and the regulator, apply the template's policy and store
    the registration document; returns its binary CID (the certificate's metadata CID) and status."""
    from oversight.compliance.registration import (
        build_registration,
        publish_registration,
        template_policy,
    )
    from tds.cli.compliance import document_sender, recipients

    store = d.store()
    docs = {k: p.read_bytes() for k, p in (("consent", consent), ("ownership", ownership)) if p is not None}
    policy = template_policy(d.c["CertificateTemplates"], template_id, store.cat, int(d.deployment["block"]))
    doc = build_registration(document_sender(wallet), lambda: recipients(d), dataset_id=manifest["dataset_id"],
                             manifest_cid=manifest_cid, manifest_hash=manifest_hash, level=level, documents=docs,
                             purposes=purposes, residency=residency, endpoints=endpoints, policy=policy,
                             template=template_id, add_bytes=store.add_bytes)
    return publish_registration(doc, store.add_bytes).to_bytes(), doc.status


def _asset_info(d: Deployed, asset_id: int) -> dict[str, Any]:
    a = d.asset(asset_id)
    ev = d.registration(asset_id)
    count, _sum, mean100 = d.c["QualityRatings"].functions.ratingOf(asset_id).call()
    return a.to_dict() | {"provider": ev["provider"], "contentCid": _cid_text(ev["contentCid"]),
                          "metadataCid": _cid_text(ev["metadataCid"]),
                          "rating": {"count": count, "mean": mean100 / 100 if count else None}}


@asset.command("show")
@click.argument("asset_id", type=click.IntRange(min=1))
@_JSON
@onchain
def asset_show(asset_id: int, as_json: bool) -> None:
    """A certificate: holder, state, classification, CIDs, hashes, rating."""
    info = _asset_info(Deployed.open(), asset_id)
    if as_json:
        emit_json(info)
        return
    for k, v in info.items():
        click.echo(f"{k:<18} {v}")


def _holder_action(d: Deployed, asset_id: int, wallet: WalletChoice) -> Any:
    a = d.asset(asset_id)
    known = wallet.address() if wallet.given else None
    if known is not None:
        d.held_by(a, known)
    me = d.signer(wallet)
    d.held_by(a, me.address)
    return a, me


def _write_record(d: Deployed, folder: str, name: str, record: dict[str, Any]) -> tuple[Path, bytes]:
    body = json.dumps(record, sort_keys=True, indent=1).encode() + b"\n"
    path = d.settings.home / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path, body


@asset.command("offline")
@click.argument("asset_id", type=click.IntRange(min=1))
@click.option("--final-record", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The final record document (its keccak-256 goes on chain); default: one is written.")
@click.option("--note", default="taken offline by the holder; all copies of the ciphertext deleted")
@wallet_options
@onchain
def asset_offline(asset_id: int, final_record: Path | None, note: str, wallet: WalletChoice) -> None:
    """Provider: take ASSET_ID offline for good, anchoring the hash of its final record."""
    d = Deployed.open()
    a, me = _holder_action(d, asset_id, wallet)
    if a.state == "offline":
        raise StateRefused(f"asset {asset_id} is already offline")
    if a.state == "frozen" and a.frozen_by != "the holder":
        raise StateRefused(f"asset {asset_id} is frozen by {a.frozen_by}; that freeze must be lifted first")
    if final_record is not None:
        body, path = final_record.read_bytes(), final_record
    else:
        path, body = _write_record(d, "records", f"asset-{asset_id}-final.json", {
            "asset": asset_id, "by": me.address, "at": iso(d.now()), "note": note, "chainId": d.chain_id})
    h = keccak(body)
    r = d.send(me, d.c["AssetRegistry"].functions.takeOffline(asset_id, h))
    click.echo(f"asset {asset_id} is offline; final record {path} (keccak 0x{h.hex()}), tx {_tx(r)}")


@asset.command("freeze")
@click.argument("asset_id", type=click.IntRange(min=1))
@click.option("--reason-code", type=click.IntRange(0, 65535), default=0, show_default=True)
@wallet_options
@onchain
def asset_freeze(asset_id: int, reason_code: int, wallet: WalletChoice) -> None:
    """Holder or regulator: freeze ASSET_ID (no new grants, no jobs, no transfer)."""
    d = Deployed.open()
    a = d.asset(asset_id)
    if a.state == "offline":
        raise StateRefused(f"asset {asset_id} is offline")
    me = d.signer(wallet)
    r = d.send(me, d.c["AssetRegistry"].functions.freeze(asset_id, reason_code))
    click.echo(f"asset {asset_id} frozen (tx {_tx(r)})")


@asset.command("unfreeze")
@click.argument("asset_id", type=click.IntRange(min=1))
@wallet_options
@onchain
def asset_unfreeze(asset_id: int, wallet: WalletChoice) -> None:
    """Lift the freeze on ASSET_ID (the holder its own, a regulator any)."""
    d = Deployed.open()
    if d.asset(asset_id).state != "frozen":
        raise StateRefused(f"asset {asset_id} is not frozen")
    me = d.signer(wallet)
    r = d.send(me, d.c["AssetRegistry"].functions.unfreeze(asset_id))
    click.echo(f"asset {asset_id} unfrozen (tx {_tx(r)})")


@asset.command("review")
@click.argument("asset_id", type=click.IntRange(min=1))
@click.option("--approve/--reject", "approve", required=True, help="The decision.")
@click.option("--reason", required=True, help="Your reasons (their hash goes on chain, the text to the store).")
@wallet_options
@onchain
def asset_review(asset_id: int, approve: bool, reason: str, wallet: WalletChoice) -> None:
    """Reviewer (operator): approve or reject a certificate pending review under its template."""
    d = Deployed.open()
    a = d.asset(asset_id)
    if a.state != "pending":
        raise StateRefused(f"asset {asset_id} is {a.state}, not pending review")
    record = json.dumps({"asset": asset_id, "approved": approve, "reason": reason}, sort_keys=True).encode()
    cid = d.store().add_bytes(record)
    fn = d.c["AssetRegistry"].functions
    call = fn.approveRegistration if approve else fn.rejectRegistration
    r = d.send(d.signer(wallet), call(asset_id, keccak(record)))
    console.print(f"asset {asset_id} {'approved' if approve else 'rejected'} (reasons {cid}, tx {_tx(r)})")


@asset.command("destroy")
@click.argument("grant_id", type=click.IntRange(min=1))
@click.option("--proof", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Your destruction proof document (its keccak-256 goes on chain); default: one is written.")
@click.option("--note", default="all copies of the results and of any downloaded data destroyed")
@wallet_options
@_JSON
@onchain
def asset_destroy(grant_id: int, proof: Path | None, note: str, as_json: bool, wallet: WalletChoice) -> None:
    """Consumer: record that your copies of the data used under GRANT_ID are destroyed; closes the
    grant with the proof's hash and anchors that hash as evidence."""
    d = Deployed.open()
    g = d.grant(grant_id)
    if g.status != "active":
        raise StateRefused(f"grant {grant_id} is already {g.status}")
    known = wallet.address() if wallet.given else None
    if known is not None and known != g.consumer:  # before asking for a password
        raise NotYours(f"grant {grant_id} is not yours: it was issued to {g.consumer}, you sign as {known}")
    me = d.signer(wallet)
    if me.address != g.consumer:
        raise NotYours(f"grant {grant_id} is not yours: it was issued to {g.consumer}, you sign as {me.address}")
    if proof is not None:
        body, path = proof.read_bytes(), proof
    else:
        path, body = _write_record(d, "proofs", f"grant-{grant_id}-destruction.json", {
            "grant": grant_id, "asset": g.asset_id, "destroyed": note, "by": me.address, "at": iso(d.now()),
            "chainId": d.chain_id})
    h = keccak(body)
    r = d.send(me, d.c["Authorizations"].functions.close(grant_id, h))
    d.send(me, d.c["Evidence"].functions.anchorHash(h, DESTRUCTION))
    if as_json:
        emit_json({"grantId": grant_id, "assetId": g.asset_id, "proof": str(path), "proofHash": "0x" + h.hex(),
                   "tx": _tx(r)})
    else:
        click.echo(f"grant {grant_id} closed with destruction proof {path} (keccak 0x{h.hex()}, anchored)")


@click.command("catalog")
@click.option("--state", type=click.Choice(["active", "frozen", "offline", "all"]), default="all", show_default=True)
@_JSON
@onchain
def catalog(state: str, as_json: bool) -> None:
    """The on-chain catalog: every registered certificate."""
    from rich.table import Table

    d = Deployed.open()
    count = d.c["AssetRegistry"].functions.assetCount().call()
    events = {e["args"]["assetId"]: e["args"] for e in d.c["AssetRegistry"].events.AssetRegistered().get_logs(
        from_block=d.deployment["block"])}
    rows = []
    for i in range(1, count + 1):
        a = d.asset(i)
        if state != "all" and a.state != state:
            continue
        ev = events.get(i, {})
        rows.append(a.to_dict() | {"provider": ev.get("provider"),
                                   "contentCid": _cid_text(ev["contentCid"]) if ev else None})
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no assets registered yet ('tds asset register MANIFEST_CID')" if not count
                   else f"no {state} assets")
        return
    table = Table()
    for name in ("asset", "holder", "class", "state", "operations", "template", "content CID"):
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(str(r["assetId"]), r["holder"], r["classification"], r["state"], r["allowedOps"],
                      str(r["templateId"]), r["contentCid"] or "")
    console.print(table)


from tds.cli import asset_versions as _asset_versions  # noqa: E402,F401 - registers 'tds asset versions'
