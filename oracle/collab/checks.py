"""A planned collaboration checked against the chain before anything is signed: the chain id, the
consumer's and providers' DID bindings, every data source's grant (held by the consumer, on that
asset, active, not frozen, in its validity window, allowing the step's engine, with a use left for
every step that reads it, one payment token), and every compute node (registered, active, a
compute provider). Each finding names the thing and the fix."""
from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractCustomError

from chain.collab import NodeKind
from chain.ops import describe
from chain.space import Space
from chain.system import role_id
from oracle.collab.description import Plan

GRANT_STATUS = {0: "unknown", 1: "active", 2: "revoked", 3: "closed"}
FREEZE = {0: "", 1: "the provider", 2: "the monitor", 3: "the regulator"}


@dataclass(frozen=True)
class Quote:
    payment_token: str
    total: int
    per_grant: dict[int, int]  # grant id -> price per use


def check(space: Space, plan: Plan) -> tuple[list[str], Quote | None]:
    """Every problem found (empty when the plan can be submitted) and the price to pay."""
    d, problems = plan.description, []
    w3 = space.w3
    if d.environment.chain_id != w3.eth.chain_id:
        problems.append(f"environment.chain_id: the description is for chain {d.environment.chain_id}; "
                        f"this node is chain {w3.eth.chain_id}")
    now = space.now()
    consumer = to_checksum_address(d.participants.consumer.address)
    problems += _identity(space, "participants.consumer", consumer, d.participants.consumer.did)
    if not space.c["IdentityRegistry"].functions.hasParticipantRole(consumer, role_id("CONSUMER")).call():
        problems.append(f"participants.consumer: {consumer} does not hold the CONSUMER role")
    for name, p in d.participants.providers.items():
        problems += _identity(space, f"participants.providers.{name}", to_checksum_address(p.address), p.did)
    need = plan.uses_per_grant()
    ops_needed: dict[int, int] = {}
    for s in plan.steps:
        for g in s.request.grant_ids:
            ops_needed[g] = ops_needed.get(g, 0) | s.request.operation
    auth, assets = space.c["Authorizations"], space.c["AssetRegistry"]
    tokens: dict[int, str] = {}
    prices: dict[int, int] = {}
    for name, src in d.data_sources.items():
        where = f"data_sources.{name}"
        try:
            g = auth.functions.grantOf(src.grant).call()
        except ContractCustomError:  # UnknownGrant
            problems.append(f"{where}.grant: grant {src.grant} does not exist")
            continue
        (g_consumer, uses, max_uses, ops, status, frozen, kind, _algo, asset, not_before, expiry, token,
         price) = g
        if status == 0:
            problems.append(f"{where}.grant: grant {src.grant} does not exist")
            continue
        if to_checksum_address(g_consumer) != consumer:
            problems.append(f"{where}.grant: grant {src.grant} is held by {g_consumer}, not the consumer {consumer}")
        if asset != src.asset:
            problems.append(f"{where}.grant: grant {src.grant} covers asset {asset}, not asset {src.asset}")
        if status != 1:
            problems.append(f"{where}.grant: grant {src.grant} is {GRANT_STATUS.get(status, status)}")
        if frozen:
            problems.append(f"{where}.grant: grant {src.grant} is frozen by {FREEZE.get(frozen, frozen)}")
        if now < not_before or (expiry and now > expiry):
            problems.append(f"{where}.grant: grant {src.grant} is outside its validity window")
        want = ops_needed.get(src.grant, 0)
        if want & ~ops:
            problems.append(f"{where}.grant: grant {src.grant} allows {describe(ops)}; the steps need "
                            f"{describe(want)}")
        if kind == 0:
            left = max_uses - uses + auth.functions.restoredUses(src.grant).call()
            if need.get(src.grant, 0) > left:
                problems.append(f"{where}.grant: grant {src.grant} has {left} use(s) left; the steps need "
                                f"{need[src.grant]}")
        provider = d.participants.providers.get(src.provider)
        if provider is not None:
            holder = assets.functions.ownerOf(src.asset).call() if asset == src.asset else None
            if holder and to_checksum_address(holder) != to_checksum_address(provider.address):
                problems.append(f"{where}.provider: asset {src.asset} is held by {holder}, not by "
                                f"{src.provider} ({provider.address})")
        tokens[src.grant], prices[src.grant] = token, price
    if len(set(tokens.values())) > 1:
        problems.append(f"data_sources: the grants are paid in different tokens ({sorted(set(tokens.values()))}); "
                        f"one collaboration is paid in one token")
    problems += _nodes(space, plan)
    if problems:
        return problems, None
    total = sum(prices[g] for s in plan.steps for g in s.request.grant_ids)
    return [], Quote(next(iter(tokens.values())), total, prices)


def _identity(space: Space, where: str, address: str, did: str | None) -> list[str]:
    ident = space.identity(address)
    if ident is None:
        return [f"{where}: {address} has no DID bound on chain (tds id bind)"]
    if did is not None and ident.did_hash != keccak(text=did):
        return [f"{where}: {address} is bound to another DID than {did}"]
    return []


def _nodes(space: Space, plan: Plan) -> list[str]:
    out = []
    reg, ids = space.c["NodeRegistry"], space.c["IdentityRegistry"]
    used = {n for s in plan.steps for n in s.step.nodes}
    for name in sorted(used):
        address = to_checksum_address(plan.node_addresses[name])
        where = f"participants.compute_nodes.{name}"
        if not reg.functions.isActive(address, int(NodeKind.COMPUTE)).call():
            known = address in reg.functions.nodes().call()
            out.append(f"{where}: {address} is {'disabled or not a compute node' if known else 'not registered'} "
                       f"in the NodeRegistry (the operator adds it: tds node add)")
        elif not ids.functions.hasParticipantRole(address, role_id("COMPUTE_PROVIDER")).call():
            out.append(f"{where}: {address} does not hold the COMPUTE_PROVIDER role")
    return out
