"""Documents the console fetches from the content store for the page, each checked against the hash
the chain recorded before it is served: an asset's quality report (public; found through the
asset's manifest, whose ``quality_report_cid`` names it, and checked against ``qualityReportHash``)
and a collaboration's sealed output (its initiator only; the bytes ``StepCompleted`` named, checked
against its ``resultHash`` as :func:`tds.gateway.results.consumers_result` does for a job)."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from eth_utils import keccak

from tds.gateway.errors import BadUpstream, Conflict, Forbidden, NotFound, Unavailable

Fetcher = Callable[[str], bytes | None] | None


def _fetch(fetcher: Fetcher, cid: str, what: str) -> bytes:
    if fetcher is None:
        raise Unavailable("store-unavailable", f"this gateway has no content store to read {what} from")
    try:
        data = fetcher(cid)
    except Exception as exc:
        raise Unavailable("store-unavailable", f"the content store cannot return {what} {cid}: {exc}") from None
    if data is None:
        raise Unavailable("store-unavailable", f"the content store does not hold {what} {cid}")
    return data


def quality_report(reader: Any, fetcher: Fetcher, asset_id: int) -> tuple[str, bytes, bytes]:
    """``(report cid, on-chain hash, report bytes)`` of ``asset_id``: 404 ``unknown-asset``; 503
    ``quality-report-unavailable`` when the manifest or the report cannot be read or the manifest
    names none; 502 ``quality-report-mismatch`` when the report does not hash to the chain's value."""
    from audit.verify import cid_text
    from offchain.canonical import canonical_hash

    reg = reader.select("AssetRegistry", "AssetRegistered", assetId=asset_id)
    if not reg:
        raise NotFound("unknown-asset", f"unknown asset {asset_id}: no AssetRegistered event for it")
    want = bytes(reader.contracts["AssetRegistry"].functions.assetOf(asset_id).call()[10])  # qualityReportHash
    manifest_cid = cid_text(bytes(reg[0].args["contentCid"]))
    try:
        manifest = json.loads(_fetch(fetcher, manifest_cid, "the manifest"))
        report_cid = manifest.get("quality_report_cid") if isinstance(manifest, dict) else None
        if not report_cid:
            raise Unavailable("quality-report-unavailable", f"the manifest {manifest_cid} of asset {asset_id} names "
                                                            "no quality report (quality_report_cid)")
        data = _fetch(fetcher, str(report_cid), "the quality report")
    except Unavailable as exc:
        raise Unavailable("quality-report-unavailable", exc.detail) from None
    except ValueError:
        raise Unavailable("quality-report-unavailable", f"the manifest {manifest_cid} of asset {asset_id} is not "
                                                        "JSON") from None
    got = hashlib.sha256(data).digest()
    if got != want:
        try:  # a report stored in another JSON spelling still hashes canonically (offchain.sources.gate)
            got = bytes.fromhex(canonical_hash(json.loads(data))[2:])
        except (ValueError, TypeError):
            pass
    if got != want:
        raise BadUpstream("quality-report-mismatch", f"the quality report {report_cid} hashes to 0x{got.hex()}, "
                                                     f"the chain records 0x{want.hex()} for asset {asset_id}: "
                                                     "it is not the report the provider registered")
    return str(report_cid), want, data


def collaboration_output(reader: Any, fetcher: Fetcher, collab_id: int, step: int,
                         account: str) -> tuple[str, bytes, bytes]:
    """``(cid, result hash, bytes)`` of output step ``step`` of ``collab_id`` for ``account``, its
    initiator: 404 ``unknown-collaboration`` / ``no-result``, 403 ``not-initiator``, 409
    ``intermediate-step`` (its result is never published), 503 store, 502 ``result-hash-mismatch``."""
    from audit.verify import cid_text

    req = reader.select("Collaborations", "CollaborationRequested", id=collab_id)
    if not req:
        raise NotFound("unknown-collaboration", f"unknown collaboration {collab_id}: no CollaborationRequested "
                                                "event for it")
    initiator = req[0].args["initiator"]
    if initiator != account:
        raise Forbidden("not-initiator", f"the outputs of collaboration {collab_id} are sealed for its initiator "
                                         f"{initiator}, not for {account}")
    done = [e for e in reader.select("Collaborations", "StepCompleted", id=collab_id) if e.args["step"] == step]
    if not done:
        raise NotFound("no-result", f"step {step} of collaboration {collab_id} has not completed")
    raw = bytes(done[0].args["resultCid"])
    if not raw:
        raise Conflict("intermediate-step", f"step {step} of collaboration {collab_id} is intermediate: its "
                                            "result is never published")
    cid, want = cid_text(raw), bytes(done[0].args["resultHash"])
    data = _fetch(fetcher, cid, "the step's output")
    if keccak(data) != want:
        raise BadUpstream("result-hash-mismatch", f"the stored output {cid} does not hash to the resultHash on "
                                                  "chain; refusing to serve it")
    return cid, want, data
