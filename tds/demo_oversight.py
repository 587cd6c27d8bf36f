"""The demo's oversight section: a burst of job requests on one grant trips the monitor's burst
rule; the monitor (an account holding MONITOR, under its own DID) freezes the grant on chain with
its reason code and anchors the alert; the next request is refused by name (``GrantIsFrozen``);
the monitor cannot lift the freeze, the regulator does; then a compliance scan of the space lists
its findings by grade (the demo's datasets carry no consent record)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from chain import Member, Space
from chain.accounts import dev_account
from chain.ops import HOM_AGG
from chain.system import role_id
from chain.tx import Reverted
from did.identity import create_identity
from did.registry import IdentityRegistryClient

BURST = 21          # one more than the default rule allows per grant per minute
PRICE = 10**12


def run_oversight_section(space: Space, store: Any, work: Path, members: dict[str, Member], asset: int,
                          query: dict[str, Any], step: Callable[..., None], say: Callable[[str], None]) -> None:
    """Run the section on ``space``; ``members`` holds the demo's operator, provider-a, consumer and regulator."""
    from oversight.monitor import Monitor, MonitorOptions
    from oversight.rules import load_rules

    operator, provider, consumer, regulator = (members[n] for n in ("operator", "provider-a", "consumer",
                                                                    "regulator"))
    auth = space.c["Authorizations"]
    watcher = create_identity("monitor", dev_account(2))
    IdentityRegistryClient(space.w3, space.c["IdentityRegistry"]).bind(watcher)
    space.send(operator.account, auth.functions.grantRole(role_id("MONITOR"), watcher.address))
    grant = space.grant_by_signature(provider, consumer, asset, HOM_AGG, max_uses=BURST + 5, price=PRICE,
                                     purpose="oversight demo: a burst")
    for _ in range(BURST):
        space.request_job(consumer, grant, HOM_AGG, query, store, value=PRICE)
    say(f"oversight: {BURST} job requests on grant #{grant} within a minute (the rule allows 20)")
    monitor = Monitor(space.w3, space.deployment, watcher.account, watcher.did, load_rules(), work / "oversight",
                      options=MonitorOptions(confirmations=0))
    try:
        alerts = []
        for _ in range(20):
            result = monitor.step()
            alerts += result.alerts
            if result.caught_up:
                break
    finally:
        monitor.close()
    burst = [a for a in alerts if a.rule == "burst-per-grant" and grant in a.grants]
    frozen = auth.functions.grantOf(grant).call()
    frozen_by = _frozen_by(space, grant)
    say(f"  monitor: {len(alerts)} alert(s); burst on grant #{grant} → "
        f"{'frozen on chain by the monitor (reason 0xA001)' if frozen_by else 'NOT frozen'}")
    refused = ""
    try:
        space.request_job(consumer, grant, HOM_AGG, query, store, value=PRICE)
    except Reverted as exc:
        refused = str(exc)
    say(f"  a further request: {'refused: ' + refused.split(':', 1)[-1].strip() if refused else 'NOT refused'}")
    space.send(regulator.account, auth.functions.unfreeze(grant))
    lifted = _frozen_by(space, grant) == 0
    say(f"  the regulator reviewed the alert and lifted the freeze: {'yes' if lifted else 'NO'}")
    step("oversight burst", bool(burst) and bool(frozen_by) and "GrantIsFrozen" in refused and lifted,
         grant=grant, alerts=[a.rule for a in alerts], refused=refused, grant_state=[str(v) for v in frozen])


def _frozen_by(space: Space, grant: int) -> int:
    """Who holds the grant's freeze (0: nobody), from its GrantFrozen / GrantUnfrozen events."""
    auth = space.c["Authorizations"]
    frm = space.deployment["block"]
    froze = auth.events.GrantFrozen().get_logs(from_block=frm, argument_filters={"grantId": grant})
    thawed = auth.events.GrantUnfrozen().get_logs(from_block=frm, argument_filters={"grantId": grant})
    last = max([(e["blockNumber"], e["logIndex"], int(e["args"]["authority"])) for e in froze] +
               [(e["blockNumber"], e["logIndex"], 0) for e in thawed], default=(0, 0, 0))
    return last[2]
