"""Grant step: two ways a consumer gets a usage authorization.

    brownie run scripts/grant.py --network tds-anvil                (after scripts/register.py)

1. *By signature* — provider-a is shown what granting range / SUM / COUNT on ``sales`` exposes,
   then signs the grant terms (EIP-712; any wallet could sign) and hands the signature to the
   consumer, who submits it (``grantBySignature``): 10 uses at 0.01 ETH each, 30 days.
2. *By application* — the consumer applies for ``branches`` under its DID with a purpose
   (``applyFor``) and provider-b approves it on chain (``approve``), fixing the price.
"""
from __future__ import annotations

import json

from eth_utils import keccak
from web3.logs import DISCARD

from offchain.keyservice.release import grant_exposure
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE

from ._common import PRICE, Step, fail, tx_hash

ZERO = "0x" + "00" * 20
SALES_PURPOSE = "regional revenue study"
BRANCHES_PURPOSE = "staffing benchmark"


def main() -> dict:
    step = Step("grant")
    sales = step.need("register", "assets", "sales")
    branches = step.need("register", "assets", "branches")
    grants = step.state.setdefault("grants", {})
    consumer = step.member("consumer")
    auth = step.space.c["Authorizations"]

    if "sales" not in grants:
        manifest = json.loads(step.store.cat(sales["manifestCid"]))
        shown = grant_exposure(manifest, ["range:amount", "sum:amount", "count"], consumer.did, PRICE)
        peeled = ", ".join(f"{p['column']}:{p['onion']}" for p in shown["peeled_layers"]) or "none"
        step.say(f"provider-a reviews the exposure before signing: worst severity {shown['worst_severity']}, "
                 f"layers peeled {peeled}")
        grant_id = step.space.grant_by_signature(step.member("provider-a"), consumer, sales["asset"],
                                                 DET_EQ | OPE_RANGE | HOM_AGG, max_uses=10, price=PRICE,
                                                 purpose=SALES_PURPOSE)
        grants["sales"] = {"id": grant_id, "asset": sales["asset"], "origin": "signature", "purpose": SALES_PURPOSE,
                           "price": PRICE, "maxUses": 10, "exposure": shown["worst_severity"]}
        step.save()
    step.say(f"grant #{grants['sales']['id']} on sales: signed by provider-a (EIP-712), submitted by the consumer")

    if "branches" not in grants:
        expiry = step.space.now() + 30 * 86400
        r = step.space.send(consumer.account, auth.functions.applyFor(
            branches["asset"], keccak(text=BRANCHES_PURPOSE), HOM_AGG, 0, 0, expiry, 5))
        app_id = auth.events.ApplicationSubmitted().process_receipt(r, errors=DISCARD)[0]["args"]["applicationId"]
        step.say(f"consumer applied for branches: application #{app_id} (tx {tx_hash(r)[:18]}…)")
        r = step.space.send(step.identity("provider-b").account, auth.functions.approve(app_id, ZERO, PRICE, ZERO))
        grant_id = auth.events.GrantIssued().process_receipt(r, errors=DISCARD)[0]["args"]["grantId"]
        grants["branches"] = {"id": grant_id, "asset": branches["asset"], "origin": "application",
                              "application": app_id, "purpose": BRANCHES_PURPOSE, "price": PRICE, "maxUses": 5}
        step.save()
    step.say(f"grant #{grants['branches']['id']} on branches: application "
             f"#{grants['branches']['application']} approved by provider-b")
    for name, g in grants.items():
        if not auth.functions.isUsable(g["id"], consumer.address, HOM_AGG).call():
            fail(f"grant #{g['id']} ({name}) is not usable by the consumer")
    step.done(grants={n: g["id"] for n, g in grants.items()})
    return grants
