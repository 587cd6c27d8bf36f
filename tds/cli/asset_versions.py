"""``tds asset versions ASSET``: the dataset versions a certificate records (AssetRegistry.recordVersion,
docs/sources.md), each manifest hash checked against the manifest in the content store.

The chain holds hashes only; the manifests are found by their CIDs: version 0 is the registration's
content CID, later ones come from this home's records (the live sources' version histories, the
dataset index beside the data keystore) or from ``--manifest CID``. A manifest found must hash to
the recorded hash, and a later version's ``previous_version_hash`` must name the version before it."""
from __future__ import annotations

import json
from typing import Any

import click

from offchain.sources.versions import known_manifests
from tds.cli.assets import _cid_text, asset
from tds.cli.deployed import Deployed
from tds.cli.output import console, emit_json
from tds.cli.refusals import onchain


def check_version(fetch: Any, cid: str | None, recorded: str, previous: str | None) -> tuple[str, str | None]:
    """(verdict, detail) of one version: ``ok``, ``mismatch`` (the manifest hashes otherwise),
    ``chain-break`` (its previous_version_hash is not the version before), ``missing`` (not in the
    store) or ``unknown`` (no CID known for it)."""
    from offchain.onion.dataset import manifest_hash

    if cid is None:
        return "unknown", "no manifest CID known for this hash here: pass --manifest CID"
    try:
        manifest = json.loads(fetch(cid))
    except Exception as exc:  # noqa: BLE001 - the store is an edge: report, do not stop the listing
        return "missing", f"{cid}: {type(exc).__name__}: {exc}"
    got = manifest_hash(manifest) if isinstance(manifest, dict) else None
    if got is None or got.lower() != recorded.lower():
        return "mismatch", f"{cid} hashes to {got}, the certificate records {recorded}"
    if previous is not None and str(manifest.get("previous_version_hash") or "").lower() != previous.lower():
        return "chain-break", f"{cid} names {manifest.get('previous_version_hash')} as its previous version"
    return "ok", None


@asset.command("versions")
@click.argument("asset_id", type=click.IntRange(min=1))
@click.option("--manifest", "manifests", multiple=True, metavar="CID",
              help="a manifest CID to check the recorded hashes against (besides this home's records)")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@onchain
def asset_versions(asset_id: int, manifests: tuple[str, ...], as_json: bool) -> None:
    """The certificate's dataset versions (0 = the registered manifest), oldest first, each hash
    checked against its manifest; exits 1 when a manifest found does not match."""
    from chain.config import load_settings
    from chain.versions import history
    from offchain.onion.dataset import manifest_hash

    d = Deployed.open()
    settings = load_settings()
    store = d.store()
    by_hash = known_manifests(settings.home, settings.sources_dir)
    for cid in manifests:
        try:
            by_hash[manifest_hash(json.loads(store.cat(cid))).lower()] = cid
        except Exception as exc:  # noqa: BLE001 - named in the output, not fatal
            console.print(f"[yellow]--manifest {cid}: not a readable manifest ({exc})[/]")
    d.asset(asset_id)                                   # UnknownAsset, by name
    registered = _cid_text(d.registration(asset_id)["contentCid"])
    rows = []
    for v in history(d.c["AssetRegistry"], asset_id, evidence=d.c["Evidence"],
                     from_block=int(d.deployment.get("block") or 0)):
        cid = registered if v.version == 0 else by_hash.get(v.manifest_hash.lower())
        verdict, detail = check_version(store.cat, cid, v.manifest_hash, v.previous_hash)
        rows.append(v.to_dict() | {"manifest_cid": cid, "check": verdict, "detail": detail})
    bad = [r for r in rows if r["check"] in ("mismatch", "chain-break")]
    if as_json:
        emit_json({"asset": asset_id, "latest": rows[-1]["version"], "versions": rows})
    else:
        for r in rows:
            click.echo(f"v{r['version']:<4} {r['manifest_hash']}  {r['check']:<11} {r['manifest_cid'] or '—'}"
                       f"  {r['source']} {r['tx'] or ''}")
    if bad:
        raise SystemExit(1)
