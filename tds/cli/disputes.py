"""``tds job dispute|release-held`` and ``tds regulator disputes|decide``: disputes of completed
jobs (docs/disputes.md). Under a template with a dispute window the provider's, algorithm
provider's and oracle's shares stay in escrow after completion; the consumer disputes within the
window with a reason document (to the content store, its sha-256 on chain); the regulator decides —
refund, release or a split in basis points — with a decision document the same way. Registered
on the existing ``job`` and ``regulator`` groups (imported by ``tds.cli`` for that side effect)."""
from __future__ import annotations

from typing import Any

import click

from chain.disputes import (FULL_REFUND_BPS, HoldStatus, document_bytes, document_cid, document_hash, hold_of,
                            open_disputes, releasable, resolve_dispute)
from tds.cli.deployed import Deployed
from tds.cli.jobs import job
from tds.cli.output import console, emit_json
from tds.cli.oversight import _reviewer, regulator
from tds.cli.refusals import BadInput, NotYours, StateRefused, iso, onchain
from tds.cli.wallet import WalletChoice, wallet_options

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _tx(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def _store_document(d: Deployed, doc: dict[str, Any]) -> tuple[bytes, str]:
    """Put ``doc`` in the content store; return its on-chain hash and its CID (checked to agree)."""
    data = document_bytes(doc)
    digest = document_hash(data)
    cid = d.store().add_bytes(data, cid_version=1)
    if cid != document_cid(digest):
        raise StateRefused(f"the content store answered CID {cid} for the document, expected {document_cid(digest)}")
    return digest, cid


def _reason_text(d: Deployed, digest: bytes) -> str | None:
    """The text of a reason or decision document, if this content store holds it."""
    import json

    try:
        data = d.store().cat(document_cid(digest))
    except Exception:  # noqa: BLE001 - any store (embedded, Kubo) without the block: shown as missing
        return None
    if document_hash(data) != digest:
        return None
    try:
        return str(json.loads(data).get("reason", ""))
    except (ValueError, AttributeError):
        return None


# --- the consumer ------------------------------------------------------------------------------
@job.command("dispute")
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="What is wrong or missing in the result (stored, its hash on chain).")
@_JSON
@wallet_options
@onchain
def job_dispute(job_id: int, reason: str, as_json: bool, wallet: WalletChoice) -> None:
    """Consumer: dispute completed job JOB_ID within its template's dispute window; the provider's,
    algorithm provider's and oracle's shares stay in escrow until the regulator decides."""
    if not reason.strip():
        raise BadInput("--reason must say what is wrong with the result")
    d = Deployed.open()
    j = d.job(job_id)
    if j.status != "completed":
        raise StateRefused(f"job {job_id} is {j.status}; only a completed job can be disputed")
    h = hold_of(d.space, job_id)
    if h.status == HoldStatus.NONE:
        raise StateRefused(f"job {job_id} completed without a dispute window: its shares were paid at completion")
    if h.status in (HoldStatus.DISPUTED, HoldStatus.RESOLVED):
        raise StateRefused(f"job {job_id} is already {h.status.name.lower()}")
    if d.now() > h.until:
        raise StateRefused(f"the dispute window of job {job_id} closed at {iso(h.until)}")
    me = d.signer(wallet)
    g = d.grant(j.grant_id)
    if me.address != g.consumer:
        raise NotYours(f"job {job_id} is not yours: grant {j.grant_id} belongs to {g.consumer}")
    doc = {"type": "tds.dispute.reason", "chainId": d.chain_id, "jobId": job_id, "consumer": me.address,
           "reason": reason}
    digest, cid = _store_document(d, doc)
    r = d.send(me, d.c["Jobs"].functions.disputeJob(job_id, digest))
    out = {"jobId": job_id, "reasonCid": cid, "reasonHash": "0x" + digest.hex(), "held": h.amount, "tx": _tx(r)}
    if as_json:
        emit_json(out)
        return
    console.print(f"job {job_id} disputed: {h.amount} held until the regulator decides (reason {cid}; tx {out['tx']})",
                  markup=False)


@job.command("release-held")
@click.argument("job_ids", nargs=-1, type=click.IntRange(min=1))
@wallet_options
@onchain
def job_release_held(job_ids: tuple[int, ...], wallet: WalletChoice) -> None:
    """Anyone (a payee, usually): release the held shares of undisputed jobs whose dispute window
    has passed. Without JOB_IDS: every such job that pays this wallet."""
    d = Deployed.open()
    me = d.signer(wallet)
    ids = list(job_ids) or releasable(d.space, me.address)
    if not ids:
        console.print(f"nothing to release for {me.address}", markup=False)
        return
    now = d.now()
    for job_id in ids:
        h = hold_of(d.space, job_id)
        if h.status == HoldStatus.DISPUTED:
            raise StateRefused(f"job {job_id} is under dispute; the regulator decides where its shares go")
        if h.status != HoldStatus.HELD:
            raise StateRefused(f"job {job_id} has nothing held ({h.status.name.lower()})")
        if now <= h.until:
            raise StateRefused(f"job {job_id} may be disputed until {iso(h.until)}; release it after that")
    r = d.send(me, d.c["Jobs"].functions.releaseHeld(ids))
    console.print(f"released the held shares of job(s) {', '.join(map(str, ids))} to their payees "
                  f"('tds earnings withdraw'); tx {_tx(r)}", markup=False)


# --- the regulator (arbitrator) ----------------------------------------------------------------
@regulator.command("disputes")
@_JSON
@onchain
def regulator_disputes(as_json: bool) -> None:
    """List the disputes waiting for a decision, with the consumer's reason."""
    d = Deployed.open()
    rows = [x.to_dict() | {"reason": _reason_text(d, x.reason_hash), "reasonCid": document_cid(x.reason_hash)}
            for x in open_disputes(d.space)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no open disputes", markup=False)
        return
    for r in rows:
        reason = r["reason"] or f"(document {r['reasonCid']} not in this store)"
        console.print(f"job {r['jobId']}  consumer {r['consumer']}  held {r['hold']['amount']}  "
                      f"disputed in block {r['block']}\n    reason: {reason}", markup=False)


@regulator.command("decide")
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--refund", "outcome", flag_value="refund", help="Everything held goes back to the consumer.")
@click.option("--release", "outcome", flag_value="release", help="Everything held goes to the payees.")
@click.option("--split", "split_bps", type=click.IntRange(0, FULL_REFUND_BPS), default=None,
              help="Basis points of the held amount refunded to the consumer; the rest to the payees.")
@click.option("--reason", required=True, help="The grounds of the decision (stored, its hash on chain).")
@_JSON
@wallet_options
@onchain
def regulator_decide(job_id: int, outcome: str | None, split_bps: int | None, reason: str, as_json: bool,
                     wallet: WalletChoice) -> None:
    """Decide the dispute of JOB_ID: --refund, --release or --split BPS (refunded share)."""
    if (outcome is None) == (split_bps is None):
        raise BadInput("choose exactly one of --refund, --release or --split BPS")
    refund_bps = split_bps if split_bps is not None else (FULL_REFUND_BPS if outcome == "refund" else 0)
    d = Deployed.open()
    h = hold_of(d.space, job_id)
    if h.status != HoldStatus.DISPUTED:
        raise StateRefused(f"job {job_id} has no open dispute ({h.status.name.lower()}); see 'tds regulator disputes'")
    me, did = _reviewer(d, wallet)
    doc = {"type": "tds.dispute.decision", "chainId": d.chain_id, "jobId": job_id, "arbitrator": did,
           "refundBps": refund_bps, "reason": reason}
    digest, cid = _store_document(d, doc)
    ev = resolve_dispute(d.space, me, job_id, refund_bps, digest)
    out = {"jobId": job_id, "refundBps": refund_bps, "refunded": ev["refunded"], "released": ev["released"],
           "decisionCid": cid, "decisionHash": "0x" + digest.hex(), "tx": ev["tx"]}
    if as_json:
        emit_json(out)
        return
    console.print(f"job {job_id} decided by {did}: {ev['refunded']} refunded to the consumer, {ev['released']} "
                  f"released to the payees (decision {cid}; tx {ev['tx']})", markup=False)
