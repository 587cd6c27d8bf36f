"""``tds rate``: the consumer rates the asset of a grant it used, once per grant, 1 to 5."""
from __future__ import annotations

import click

from tds.cli.deployed import Deployed
from tds.cli.refusals import NotYours, StateRefused, onchain
from tds.cli.wallet import WalletChoice, wallet_options


@click.command("rate")
@click.argument("grant_id", type=click.IntRange(min=1))
@click.argument("score", type=click.IntRange(1, 5))
@wallet_options
@onchain
def rate(grant_id: int, score: int, wallet: WalletChoice) -> None:
    """Consumer: rate the asset used under GRANT_ID with SCORE (1 to 5)."""
    d = Deployed.open()
    g = d.grant(grant_id)
    if d.c["QualityRatings"].functions.isRated(grant_id).call():
        raise StateRefused(f"grant {grant_id} was already rated (one rating per grant)")
    if g.uses == 0:
        raise StateRefused(f"grant {grant_id} has not been used yet; rate it after a job ('tds job request')")
    known = wallet.address() if wallet.given else None
    if known is not None and known != g.consumer:
        raise NotYours(f"grant {grant_id} is not yours: it was issued to {g.consumer}, you sign as {known}")
    me = d.signer(wallet)
    if me.address != g.consumer:
        raise NotYours(f"grant {grant_id} is not yours: it was issued to {g.consumer}, you sign as {me.address}")
    r = d.send(me, d.c["QualityRatings"].functions.rate(grant_id, score))
    count, _sum, mean100 = d.c["QualityRatings"].functions.ratingOf(g.asset_id).call()
    click.echo(f"asset {g.asset_id} rated {score}/5 under grant {grant_id}; now {mean100 / 100:.2f} over "
               f"{count} rating(s) (tx 0x{bytes(r['transactionHash']).hex()})")
