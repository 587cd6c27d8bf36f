"""``tds grant sign|submit|cancel-offer``: grant offers the holder signs (EIP-712, in this
wallet or any other), the consumer submits, and the holder may withdraw before then."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from eth_utils import keccak
from web3.logs import DISCARD

from tds.cli.deployed import ZERO_ADDRESS, Deployed
from tds.cli.output import emit_json
from tds.cli.refusals import (BadInput, BadSignature, NotYours, SignedGrantExpired,
                              StateRefused, iso, onchain)
from tds.cli.terms import parse_address, parse_amount, parse_ops, parse_token
from tds.cli.typed_data import GrantOffer, parse_offer, parse_signature, to_wallet_json
from tds.cli.wallet import WalletChoice, wallet_options
from chain.eip712 import GrantTerms, offer_nonce, sign_typed
from chain.ops import describe

from tds.cli.grants import _JSON, _check_scope, _consumer_registered, _tx, _validity, grant


@grant.command("sign")
@click.argument("asset_id", type=click.IntRange(min=1))
@click.option("--consumer", required=True, help="The consumer's address.")
@click.option("--purpose", required=True)
@click.option("--ops", "ops_text", required=True, help="Operations granted, e.g. DET_EQ,OPE_RANGE,HOM_AGG.")
@click.option("--max-uses", type=click.IntRange(0, 2**32 - 1), default=10, show_default=True)
@click.option("--price", "price_text", default="0", show_default=True, help="Per use: wei, or 0.01ether, 5gwei.")
@click.option("--token", "token_text", default="native", show_default=True, help="native, credits or an address.")
@click.option("--days", type=float, default=30.0, show_default=True, help="Validity of the grant from now.")
@click.option("--per-period", is_flag=True, help="Unlimited uses within the period (--max-uses 0).")
@click.option("--algorithm-provider", default=None, help="Payee of the algorithm share (default: the holder).")
@click.option("--offer-hours", type=click.FloatRange(min=0, min_open=True), default=168.0, show_default=True,
              help="How long the consumer has to submit the signed offer.")
@click.option("--export-typed-data", is_flag=True,
              help="Print the EIP-712 payload (eth_signTypedData_v4 JSON) for an external wallet; sign nothing.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the offer here instead of stdout.")
@wallet_options
@onchain
def grant_sign(asset_id: int, consumer: str, purpose: str, ops_text: str, max_uses: int, price_text: str,
               token_text: str, days: float, per_period: bool, algorithm_provider: str | None, offer_hours: float,
               export_typed_data: bool, out: Path | None, wallet: WalletChoice) -> None:
    """Provider: sign a grant offer over ASSET_ID for CONSUMER (EIP-712). The consumer submits it
    with 'tds grant submit FILE'."""
    consumer_addr = parse_address(consumer, "--consumer")
    ops = parse_ops(ops_text)
    price = parse_amount(price_text)
    algo = parse_address(algorithm_provider, "--algorithm-provider") if algorithm_provider else ZERO_ADDRESS
    d = Deployed.open()
    token = parse_token(token_text, d.c["Credits"].address)
    _check_scope(d, asset_id, ops)
    _consumer_registered(d, consumer_addr)
    expiry, kind = _validity(d, days, per_period, max_uses)
    deadline = d.now() + int(offer_hours * 3600)
    asset = d.asset(asset_id)
    terms = GrantTerms(asset_id, consumer_addr, keccak(text=purpose), ops, kind, 0, expiry, max_uses, token, price,
                       algo)
    transfers = d.c["AssetRegistry"].functions.transfersOf(asset_id).call()
    nonce = offer_nonce(transfers, int.from_bytes(os.urandom(20), "big"))  # dies if the certificate moves
    offer = GrantOffer(terms, nonce, deadline, d.chain_id, d.c["Authorizations"].address)
    data = offer.typed_data()
    if export_typed_data:
        if wallet.given:
            raise BadInput("--export-typed-data signs nothing here; drop the wallet option and sign the printed "
                           "payload in the holder's wallet")
        doc: dict[str, Any] = to_wallet_json(data)
        note = (f"sign this with the wallet of {asset.holder} (eth_signTypedData_v4), then the consumer runs "
                f"'tds grant submit FILE --signature 0x...'")
    else:
        known = wallet.address() if wallet.given else None
        if known is not None:
            d.held_by(asset, known)  # before asking for a password
        me = d.signer(wallet)
        d.held_by(asset, me.address)
        sig = sign_typed(data, me.key)
        doc = {"typedData": to_wallet_json(data), "signature": "0x" + sig.hex(), "signer": me.address}
        note = f"signed by {me.address}; the consumer submits it with 'tds grant submit FILE'"
    text = json.dumps(doc, indent=1) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"grant offer for asset {asset_id} → {out}", err=True)
    click.echo(note, err=True)


def _read_offer(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except FileNotFoundError:
        raise BadInput(f"no grant offer file at {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read the grant offer {file}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{file} is not JSON: {exc}") from None


def verify_offer(d: Deployed, offer: GrantOffer, signature: bytes) -> str:
    """Check the offer against this deployment and its signer against the asset's holder; return the holder."""
    auth = d.c["Authorizations"]
    if offer.chain_id != d.chain_id or offer.verifying_contract != auth.address:
        raise BadInput(f"the offer was made for Authorizations {offer.verifying_contract} on chain {offer.chain_id}, "
                       f"but this deployment's is {auth.address} on chain {d.chain_id}")
    asset = d.asset(offer.terms.assetId)
    from eth_account.messages import encode_typed_data

    signable = encode_typed_data(full_message=offer.typed_data())
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    on_chain = bytes(auth.functions.grantDigest(offer.terms.as_tuple(), offer.nonce, offer.deadline).call())
    if digest != on_chain:  # the Python and Solidity EIP-712 encodings disagree: never send then
        raise BadInput("the offer's EIP-712 digest differs from the contract's grantDigest; refusing to submit")
    signer = offer.recover(signature)
    if signer != asset.holder:
        raise BadSignature(f"the signature recovers to {signer}, but asset {asset.asset_id} is held by "
                           f"{asset.holder}: only the holder can sign a grant over it")
    now = d.now()
    if now > offer.deadline:
        raise SignedGrantExpired(offer.deadline)
    if offer.terms.expiry and now >= offer.terms.expiry:
        raise StateRefused(f"the offered grant expired at {iso(offer.terms.expiry)}; ask the provider for new terms")
    transfers = d.c["AssetRegistry"].functions.transfersOf(asset.asset_id).call()
    if offer.nonce >> 224 != transfers:
        raise StateRefused(f"the offer was signed before the certificate of asset {asset.asset_id} changed hands "
                           f"({offer.nonce >> 224} transfers then, {transfers} now), which voids it; ask the holder "
                           f"{asset.holder} to sign a new one")
    if auth.functions.nonces(asset.holder, offer.nonce >> 64).call() != offer.nonce:  # NoncesKeyed: key<<64|seq
        if offer_cancelled(d, asset.holder, offer.nonce):
            raise StateRefused(f"the holder {asset.holder} cancelled this signed grant offer on chain; it can no "
                               f"longer be submitted (ask for a new one)")
        raise StateRefused("this signed grant offer was already submitted (its nonce is spent); "
                           "ask the provider to sign a new one")
    if asset.state != "active":
        raise StateRefused(f"asset {asset.asset_id} is {asset.state}; no grant can be issued over it")
    _consumer_registered(d, offer.terms.consumer)
    return asset.holder


@grant.command("submit")
@click.argument("file", default="-")
@click.option("--signature", "signature_text", default=None,
              help="The wallet's signature of exported typed data (0x + 130 hex digits).")
@wallet_options
@_JSON
@onchain
def grant_submit(file: str, signature_text: str | None, as_json: bool, wallet: WalletChoice) -> None:
    """Consumer: submit a signed grant offer (FILE, or - for stdin) and receive the grant.

    FILE is what 'tds grant sign' wrote, or the typed data of '--export-typed-data' together
    with --signature from the holder's wallet. The signature must recover to the asset holder."""
    offer, embedded = parse_offer(_read_offer(file))
    text = signature_text or embedded
    if not text:
        raise BadSignature("the offer carries no signature: pass --signature 0x... (what the holder's wallet "
                           "returned for the exported typed data)")
    sig = parse_signature(text)
    d = Deployed.open()
    holder = verify_offer(d, offer, sig)
    me = d.signer(wallet)
    auth = d.c["Authorizations"]
    r = d.send(me, auth.functions.grantBySignature(offer.terms.as_tuple(), offer.nonce, offer.deadline, sig))
    grant_id = auth.events.GrantIssued().process_receipt(r, errors=DISCARD)[0]["args"]["grantId"]
    t = offer.terms
    if as_json:
        emit_json({"grantId": grant_id, "assetId": t.assetId, "consumer": t.consumer, "provider": holder,
                   "operations": describe(t.operations), "maxUses": t.maxUses, "pricePerUse": str(t.pricePerUse),
                   "expiry": iso(t.expiry) if t.expiry else None, "tx": _tx(r)})
    else:
        click.echo(f"grant {grant_id}: asset {t.assetId} for {t.consumer}, {describe(t.operations)}, "
                   f"{t.maxUses} uses at {t.pricePerUse} wei, signed by {holder}")


def offer_cancelled(d: Deployed, holder: str, nonce: int) -> bool:
    """True if ``holder`` cancelled the offer with keyed nonce ``nonce`` (an OfferCancelled event)."""
    logs = d.c["Authorizations"].events.OfferCancelled().get_logs(from_block=d.deployment["block"],
                                                                  argument_filters={"holder": holder})
    return any(int(log["args"]["nonce"]) == nonce for log in logs)


def _offer_nonce(d: Deployed, offer_ref: str, me: str) -> tuple[int, str]:
    """The keyed nonce to cancel, from an offer file (checked: this deployment, and yours) or a
    number (decimal or 0x-hex); and what it is, for the messages."""
    path = Path(offer_ref)
    if offer_ref == "-" or path.exists():
        offer, embedded = parse_offer(_read_offer(offer_ref))
        auth = d.c["Authorizations"]
        if offer.chain_id != d.chain_id or offer.verifying_contract != auth.address:
            raise BadInput(f"the offer was made for Authorizations {offer.verifying_contract} on chain "
                           f"{offer.chain_id}, but this deployment's is {auth.address} on chain {d.chain_id}")
        if embedded:
            signer = offer.recover(parse_signature(embedded))
            if signer != me:
                raise NotYours(f"the offer in {offer_ref} was signed by {signer}, you sign as {me}: only its signer "
                               f"can cancel it; use that wallet")
        else:  # exported typed data: the one to sign it is the asset's holder
            d.held_by(d.asset(offer.terms.assetId), me)
        return offer.nonce, f"the offer in {offer_ref} (asset {offer.terms.assetId}, consumer {offer.terms.consumer})"
    try:
        nonce = int(offer_ref, 0)
    except ValueError:
        raise BadInput(f"{offer_ref!r} is neither an offer file nor a nonce (decimal or 0x-hex)") from None
    if not 0 <= nonce < 2**256:
        raise BadInput(f"nonce {offer_ref} does not fit 256 bits")
    return nonce, f"the offer with nonce {nonce:#x}"


@grant.command("cancel-offer")
@click.argument("offer_ref", metavar="FILE|NONCE")
@wallet_options
@_JSON
@onchain
def grant_cancel_offer(offer_ref: str, as_json: bool, wallet: WalletChoice) -> None:
    """Holder: cancel a signed grant offer before anyone submits it (Authorizations.cancelOffer).

    FILE|NONCE is what 'tds grant sign' wrote (or its exported typed data; - for stdin), or the
    offer's nonce (decimal or 0x-hex). Sign with the wallet that signed the offer."""
    d = Deployed.open()
    known = wallet.address() if wallet.given else None
    nonce, what = _offer_nonce(d, offer_ref, known) if known else (None, "")
    me = d.signer(wallet)
    if nonce is None:
        nonce, what = _offer_nonce(d, offer_ref, me.address)
    auth = d.c["Authorizations"]
    current = auth.functions.nonces(me.address, nonce >> 64).call()  # NoncesKeyed: key << 64 | next sequence
    if current != nonce:
        if offer_cancelled(d, me.address, nonce):
            raise StateRefused(f"{what} is already cancelled")
        if current > nonce:
            raise StateRefused(f"{what} was already submitted or cancelled (nonce spent by {me.address}); "
                               f"there is nothing left to cancel")
        raise StateRefused(f"{what} is not the next offer of its nonce key for {me.address} (next: {current:#x}); "
                           f"cancel that one first")
    r = d.send(me, auth.functions.cancelOffer(nonce))
    if as_json:
        emit_json({"nonce": str(nonce), "holder": me.address, "tx": _tx(r)})
    else:
        click.echo(f"{what} is cancelled: it can no longer be submitted (tx {_tx(r)})")


# --- holder, monitor, regulator -----------------------------------------------------------------
