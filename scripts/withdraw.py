"""Withdraw step: everyone paid by the jobs pulls its earnings from the Jobs contract's vault —
provider-a (70 %, plus the algorithm-provider 10 % when the grant names none), the oracle as
compute provider (15 %) and the operator's treasury (5 %).

    brownie run scripts/withdraw.py --network tds-anvil             (after scripts/compute.py)

Pull payments: each payee sends its own ``withdraw(token)``; afterwards every balance is zero and
the amounts withdrawn add up to what the consumer paid for the completed jobs.
"""
from __future__ import annotations

from ._common import Step, fail

ZERO = "0x" + "00" * 20
PAYEES = ("provider-a", "provider-b", "oracle", "operator")


def main() -> dict:
    step = Step("withdraw")
    jobs = step.need("request", "jobs")
    vault = step.space.c["Jobs"]
    paid = dict(step.state.get("withdrawn", {}))
    for name in PAYEES:
        who = step.identity(name).account
        balance = vault.functions.balanceOf(who.address, ZERO).call()
        if balance:
            step.space.send(who, vault.functions.withdraw(ZERO))
        paid[name] = paid.get(name, 0) + balance
        step.say(f"  {name:11} withdrew {balance / 1e18:.4f} ETH")
    step.state["withdrawn"] = paid
    left = {n: vault.functions.balanceOf(step.address(n), ZERO).call() for n in PAYEES}
    owed = sum(j["price"] for j in jobs if j.get("status") == "completed")
    step.done(withdrawn=paid, total=sum(paid.values()), owed=owed)
    step.say(f"total withdrawn {sum(paid.values()) / 1e18:.4f} ETH for {owed / 1e18:.4f} ETH of completed jobs")
    if any(left.values()):
        fail(f"balances left in the vault: {left}")
    if sum(paid.values()) != owed:
        fail(f"withdrawn {sum(paid.values())} wei, but completed jobs paid {owed} wei")
    return paid
