"""``tds earnings ...``: pull payments. Every job's price is split on completion into the
payees' balances in the Jobs contract (provider, algorithm provider, compute provider,
operator; refunds to the consumer); each payee withdraws its own balance."""
from __future__ import annotations

from typing import Any

import click

from tds.cli.deployed import ZERO_ADDRESS, Deployed
from tds.cli.output import emit_json
from tds.cli.refusals import BadInput, StateRefused, onchain
from tds.cli.terms import parse_address, parse_token
from tds.cli.wallet import WalletChoice, wallet_options

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _tokens(d: Deployed, token_text: str | None) -> list[tuple[str, str]]:
    """(label, address) of the tokens to look at: one, or the native coin and Credits."""
    credits = d.c["Credits"].address
    if token_text is None:
        return [("native", ZERO_ADDRESS), ("credits", credits)]
    address = parse_token(token_text, credits)
    label = "native" if address == ZERO_ADDRESS else "credits" if address == credits else address
    return [(label, address)]


@click.group("earnings")
def earnings() -> None:
    """Your share of every job: balance and withdraw."""


@earnings.command("balance")
@click.argument("address", required=False)
@click.option("--token", "token_text", default=None, help="native, credits or an address (default: both).")
@wallet_options
@_JSON
@onchain
def earnings_balance(address: str | None, token_text: str | None, as_json: bool, wallet: WalletChoice) -> None:
    """Withdrawable balance of ADDRESS (or of your wallet's account)."""
    if address is not None and wallet.given:
        raise BadInput("give an ADDRESS or a wallet option, not both")
    d = Deployed.open()
    if address is not None:
        who = parse_address(address, "ADDRESS")
    elif wallet.given:
        who = wallet.address() or d.signer(wallet).address
    else:
        raise BadInput("whose balance? give an ADDRESS or --identity / --keystore / --dev-account")
    jobs = d.c["Jobs"].functions
    balances = {label: jobs.balanceOf(who, token).call() for label, token in _tokens(d, token_text)}
    if as_json:
        emit_json({"account": who, "balances": {k: str(v) for k, v in balances.items()}})
        return
    click.echo(f"{who}: " + ", ".join(f"{v} {'wei' if k == 'native' else k}" for k, v in balances.items()))


@earnings.command("withdraw")
@click.option("--token", "token_text", default="native", show_default=True, help="native, credits or an address.")
@wallet_options
@_JSON
@onchain
def earnings_withdraw(token_text: str, as_json: bool, wallet: WalletChoice) -> None:
    """Send your whole balance in one token to your account."""
    d = Deployed.open()
    (label, token), = _tokens(d, token_text)
    jobs = d.c["Jobs"]
    known = wallet.address() if wallet.given else None
    if known is not None and jobs.functions.balanceOf(known, token).call() == 0:
        raise StateRefused(f"{known} has nothing to withdraw in {label} ('tds earnings balance {known}')")
    me = d.signer(wallet)
    amount = jobs.functions.balanceOf(me.address, token).call()
    if amount == 0:
        raise StateRefused(f"{me.address} has nothing to withdraw in {label} ('tds earnings balance {me.address}')")
    r: Any = d.send(me, jobs.functions.withdraw(token))
    tx = "0x" + bytes(r["transactionHash"]).hex()
    if as_json:
        emit_json({"account": me.address, "token": token, "amount": str(amount), "tx": tx})
    else:
        click.echo(f"withdrew {amount} {'wei' if label == 'native' else label} to {me.address} (tx {tx})")
