"""``tds grant ...``: usage agreements. The consumer applies, the provider approves; or the
provider signs an EIP-712 offer (with its keystore here, or any wallet: ``sign
--export-typed-data`` prints the payload, ``submit --signature`` takes the wallet's answer) and
the consumer submits it; until then the holder can cancel it (``cancel-offer``), and any offer
dies when the certificate changes hands. The holder revokes; the holder, monitor or a regulator
freezes.

Every command checks the terms against the chain before it signs, so a refusal names the
problem (unknown asset, not your grant, expired offer, wrong signer) instead of a revert.
"""
from __future__ import annotations

from typing import Any

import click
from eth_utils import keccak
from web3.logs import DISCARD

from tds.cli.deployed import ZERO_ADDRESS, Deployed
from tds.cli.output import emit_json
from tds.cli.refusals import (APPLICATION_STATES, BadInput, StateRefused, UnknownApplication, iso, onchain)
from tds.cli.terms import parse_address, parse_amount, parse_ops, parse_token
from tds.cli.wallet import WalletChoice, wallet_options
from chain.ops import describe
from chain.system import role_id

DAY = 86400
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _tx(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def _reason(text: str | None) -> bytes:
    return keccak(text=text) if text else b"\0" * 32


def _consumer_registered(d: Deployed, consumer: str) -> None:
    if not d.c["IdentityRegistry"].functions.hasParticipantRole(consumer, role_id("CONSUMER")).call():
        raise StateRefused(f"{consumer} holds no CONSUMER role: the operator must issue one first "
                           f"('tds id credential issue --role CONSUMER --grant')")


def _check_scope(d: Deployed, asset_id: int, ops: int) -> None:
    a = d.asset(asset_id)
    if a.state != "active":
        raise StateRefused(f"asset {asset_id} is {a.state}; no grant can be issued over it")
    if ops & ~a.allowed_ops:
        raise StateRefused(f"asset {asset_id} allows {describe(a.allowed_ops)}; {describe(ops & ~a.allowed_ops)} "
                           f"is out of its scope")


def _validity(d: Deployed, days: float, per_period: bool, max_uses: int) -> tuple[int, int]:
    if days <= 0:
        raise BadInput("--days must be positive")
    if not per_period and max_uses < 1:
        raise BadInput("a per-task grant needs --max-uses of at least 1 (or use --per-period)")
    expiry = d.now() + int(days * DAY)
    if expiry >= 2**32:
        raise BadInput(f"--days {days} puts the expiry beyond 2106")
    return expiry, int(per_period)


@click.group("grant")
def grant() -> None:
    """Grants (usage agreements): apply, approve, sign, submit, revoke, freeze, show."""


# --- consumer applies, provider approves -------------------------------------------------------
@grant.command("apply")
@click.argument("asset_id", type=click.IntRange(min=1))
@click.option("--purpose", required=True, help="What the data is used for (its hash goes on chain).")
@click.option("--ops", "ops_text", required=True, help="Operations wanted, e.g. DET_EQ,OPE_RANGE,HOM_AGG.")
@click.option("--max-uses", type=click.IntRange(0, 2**32 - 1), default=10, show_default=True)
@click.option("--days", type=float, default=30.0, show_default=True, help="Validity from now.")
@click.option("--per-period", is_flag=True, help="Unlimited uses within the period (--max-uses 0).")
@wallet_options
@_JSON
@onchain
def grant_apply(asset_id: int, purpose: str, ops_text: str, max_uses: int, days: float, per_period: bool,
                as_json: bool, wallet: WalletChoice) -> None:
    """Consumer: apply for the use of ASSET_ID; the holder approves with 'tds grant approve'."""
    ops = parse_ops(ops_text)
    d = Deployed.open()
    _check_scope(d, asset_id, ops)
    expiry, kind = _validity(d, days, per_period, max_uses)
    me = d.signer(wallet)
    _consumer_registered(d, me.address)
    auth = d.c["Authorizations"]
    r = d.send(me, auth.functions.applyFor(asset_id, keccak(text=purpose), ops, kind, 0, expiry, max_uses))
    app_id = auth.events.ApplicationSubmitted().process_receipt(r, errors=DISCARD)[0]["args"]["applicationId"]
    out = {"applicationId": app_id, "assetId": asset_id, "consumer": me.address, "operations": describe(ops),
           "expiry": iso(expiry), "maxUses": max_uses, "tx": _tx(r)}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"application {app_id} for asset {asset_id} ({describe(ops)}, until {iso(expiry)}); "
                   f"the holder approves it with 'tds grant approve {app_id} --price WEI'")


def _application(d: Deployed, application_id: int) -> tuple:
    from web3.exceptions import ContractCustomError

    from chain.revert import describe_revert

    try:
        return d.c["Authorizations"].functions.applicationOf(application_id).call()
    except ContractCustomError as exc:
        if describe_revert(exc.data).startswith("UnknownApplication("):
            raise UnknownApplication(application_id) from None
        raise


@grant.command("approve")
@click.argument("application_id", type=click.IntRange(min=1))
@click.option("--price", "price_text", required=True, help="Price per use: wei, or 0.01ether, 5gwei.")
@click.option("--token", "token_text", default="native", show_default=True, help="native, credits or an address.")
@click.option("--algorithm-provider", default=None, help="Payee of the algorithm share (default: you).")
@wallet_options
@_JSON
@onchain
def grant_approve(application_id: int, price_text: str, token_text: str, algorithm_provider: str | None,
                  as_json: bool, wallet: WalletChoice) -> None:
    """Provider: approve APPLICATION_ID with the price terms; issues the grant."""
    price = parse_amount(price_text)
    algo = parse_address(algorithm_provider, "--algorithm-provider") if algorithm_provider else ZERO_ADDRESS
    d = Deployed.open()
    token = parse_token(token_text, d.c["Credits"].address)
    app = _application(d, application_id)
    if app[3] != 1:
        raise StateRefused(f"application {application_id} is already {APPLICATION_STATES[app[3]]}")
    asset = d.asset(app[5])
    me = d.signer(wallet)
    d.held_by(asset, me.address)
    auth = d.c["Authorizations"]
    r = d.send(me, auth.functions.approve(application_id, token, price, algo))
    grant_id = auth.events.GrantIssued().process_receipt(r, errors=DISCARD)[0]["args"]["grantId"]
    if as_json:
        emit_json({"grantId": grant_id, "applicationId": application_id, "assetId": asset.asset_id,
                   "consumer": app[0], "pricePerUse": str(price), "paymentToken": token, "tx": _tx(r)})
    else:
        click.echo(f"grant {grant_id} issued to {app[0]} for asset {asset.asset_id} at {price} wei per use "
                   f"(application {application_id})")


@grant.command("reject")
@click.argument("application_id", type=click.IntRange(min=1))
@click.option("--reason", default=None, help="Why (its hash goes on chain).")
@wallet_options
@onchain
def grant_reject(application_id: int, reason: str | None, wallet: WalletChoice) -> None:
    """Provider: reject APPLICATION_ID."""
    d = Deployed.open()
    app = _application(d, application_id)
    if app[3] != 1:
        raise StateRefused(f"application {application_id} is already {APPLICATION_STATES[app[3]]}")
    me = d.signer(wallet)
    d.held_by(d.asset(app[5]), me.address)
    r = d.send(me, d.c["Authorizations"].functions.reject(application_id, _reason(reason)))
    click.echo(f"application {application_id} rejected (tx {_tx(r)})")


# --- provider signs an offer, consumer submits it ----------------------------------------------
@grant.command("revoke")
@click.argument("grant_id", type=click.IntRange(min=1))
@click.option("--reason", default=None, help="Why (its hash goes on chain).")
@wallet_options
@onchain
def grant_revoke(grant_id: int, reason: str | None, wallet: WalletChoice) -> None:
    """Provider: revoke GRANT_ID for good."""
    d = Deployed.open()
    g = d.grant(grant_id)
    if g.status != "active":
        raise StateRefused(f"grant {grant_id} is already {g.status}")
    me = d.signer(wallet)
    d.held_by(d.asset(g.asset_id), me.address)
    r = d.send(me, d.c["Authorizations"].functions.revoke(grant_id, _reason(reason)))
    click.echo(f"grant {grant_id} revoked (tx {_tx(r)})")


@grant.command("freeze")
@click.argument("grant_id", type=click.IntRange(min=1))
@click.option("--reason-code", type=click.IntRange(0, 65535), default=0, show_default=True)
@wallet_options
@onchain
def grant_freeze(grant_id: int, reason_code: int, wallet: WalletChoice) -> None:
    """Holder, monitor or regulator: freeze GRANT_ID (no job can use it until lifted)."""
    d = Deployed.open()
    g = d.grant(grant_id)
    if g.status != "active":
        raise StateRefused(f"grant {grant_id} is {g.status}; only an active grant can be frozen")
    me = d.signer(wallet)
    r = d.send(me, d.c["Authorizations"].functions.freeze(grant_id, reason_code))
    click.echo(f"grant {grant_id} frozen by {me.address} ({d.grant(grant_id).frozen_by}; tx {_tx(r)})")


@grant.command("unfreeze")
@click.argument("grant_id", type=click.IntRange(min=1))
@wallet_options
@onchain
def grant_unfreeze(grant_id: int, wallet: WalletChoice) -> None:
    """Lift the freeze on GRANT_ID (the holder its own, a regulator any)."""
    d = Deployed.open()
    g = d.grant(grant_id)
    if g.frozen_by == "nobody":
        raise StateRefused(f"grant {grant_id} is not frozen")
    me = d.signer(wallet)
    r = d.send(me, d.c["Authorizations"].functions.unfreeze(grant_id))
    click.echo(f"grant {grant_id} unfrozen (tx {_tx(r)})")


@grant.command("show")
@click.argument("grant_id", type=click.IntRange(min=1))
@_JSON
@onchain
def grant_show(grant_id: int, as_json: bool) -> None:
    """The terms and state of GRANT_ID."""
    d = Deployed.open()
    g = d.grant(grant_id)
    info = g.to_dict() | {"provider": d.grant_provider(grant_id), "usableNow": g.status == "active"
                          and g.frozen_by == "nobody" and (not g.expiry or d.now() <= g.expiry)
                          and g.uses < g.max_uses}
    if as_json:
        emit_json(info)
        return
    for k, v in info.items():
        click.echo(f"{k:<18} {v}")

