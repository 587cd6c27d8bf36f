"""The demo's multi-party section: three banks find their common customers by PSI, then three
compute nodes compute joint statistics of those customers' balances by secret-sharing MPC, then
a second statistic that depends on the first; the consumer opens the sealed outputs and they are
compared with the plaintext answers; every grant use is counted and paid."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable

from chain import Space
from chain import collab as cc
from chain.accounts import dev_account
from offchain.collab.party_chain import PartyChain
from offchain.collab.provider_node import ProviderNode
from offchain.psi.normalize import normalize
from oracle.collab.checks import check
from oracle.collab.coordinator import CollabCoordinator, open_result
from oracle.collab.description import canonical, load, plan
from tds.collab_world import BANKS, ID_COLUMNS, NORMALISE, build_collab_world

ZERO = "0x" + "00" * 20
SOURCES = [f"{b}-customers" for b in BANKS]
STEPS = [
    {"id": "match", "engine": "psi", "inputs": SOURCES, "nodes": ["node-1"], "params": {"mode": "intersection"}},
    {"id": "stats", "engine": "mpc", "inputs": ["match", *SOURCES], "nodes": ["node-1", "node-2", "node-3"],
     "output": True, "params": {"operations": ["count", "sum", "mean", "stddev"], "column": "balance",
                                "min_group": 5}},
    {"id": "spread", "engine": "mpc", "inputs": ["stats", "match", *SOURCES], "nodes": ["node-1", "node-2", "node-3"],
     "output": True, "params": {"operations": ["min", "max", "median"], "column": "balance", "min_group": 5}},
]


def _plain(world: Any) -> list[float]:
    keys = {b: normalize([r[ID_COLUMNS[b]] for r in world.tables[b]], NORMALISE[b]) for b in BANKS}
    common = set.intersection(*(set(k) for k in keys.values()))
    return [float(r["balance"]) for b in BANKS for r, k in zip(world.tables[b], keys[b]) if k in common]


def run_collab_section(space: Space, store: Any, work: Path, step: Callable[..., None],
                       say: Callable[[str], None]) -> None:
    """Run the multi-party section on ``space``; ``step(name, ok, **detail)`` records each result."""
    w = build_collab_world(space, store, dev_account(0), rows=60, common=20)
    say(f"multi-party: 3 banks, 3 compute nodes registered, consumer holds a PSI+MPC grant on each bank's asset")
    p = plan(load(w.description(STEPS)))
    problems, quote = check(space, p)
    if problems or quote is None:
        step("collab validate", False, problems=problems)
        return
    for s in p.steps:
        store.add_bytes(canonical(s.document), cid_version=1)
    cid = cc.request_collaboration(space, w.consumer.account, p.description_hash, p.requests(), 3600, quote.total)
    say(f"  collaboration #{cid}: {len(p.steps)} steps (PSI → joint statistics → dependent statistic), "
        f"{quote.total / 1e18:.4f} paid into escrow for {sum(p.uses_per_grant().values())} grant uses")
    party_chain = PartyChain(space, store)  # what each bank's node reads from the chain and the store
    providers = {m.address: ProviderNode(w.identities[b], {w.assets[b]: w.tables[b]}, party_chain)
                 for b, m in w.banks.items()}
    compute = {m.address: w.identities[n] for n, m in w.nodes.items()}
    node1 = w.nodes["node-1"]
    coordinator = CollabCoordinator(space, node1.account, w.identities["node-1"], store, providers, compute,
                                    work / "collab", timeout=120)
    outcomes = coordinator.run_until_idle()
    for o in outcomes:
        say(f"  step {o.step} ({o.engine}): {'completed' if o.ok else 'FAILED ' + o.detail}, "
            f"result hash {o.result_hash.hex()[:16] + '…' if o.result_hash else '-'}"
            f"{' (intermediate, not published)' if o.ok and not o.result_cid else ''}")
    status = cc.collaboration(space, cid)["status"]
    step("collab run", status == cc.CollabStatus.COMPLETED and all(o.ok for o in outcomes),
         collaboration=cid, steps=[{"step": o.step, "engine": o.engine, "ok": o.ok, "detail": o.detail}
                                   for o in outcomes])
    if status != cc.CollabStatus.COMPLETED:
        return
    plain = _plain(w)
    senders = [w.nodes[n].did for n in ("node-1", "node-2", "node-3")]
    stats = open_result(w.identities["analyst"], store, outcomes[1].result_cid, senders)["values"]
    spread = open_result(w.identities["analyst"], store, outcomes[2].result_cid, senders)["values"]
    expected = {"count": len(plain), "sum": sum(plain), "mean": statistics.fmean(plain),
                "stddev": statistics.stdev(plain), "min": min(plain), "max": max(plain),
                "median": statistics.median(plain)}
    got = {"count": stats["count"], "sum": stats["sum"]["balance"], "mean": stats["mean"]["balance"],
           "stddev": stats["stddev"]["balance"], "min": spread["min"]["balance"], "max": spread["max"]["balance"],
           "median": spread["median"]["balance"]}
    match = all(abs(got[k] - v) <= 1e-3 * max(1.0, abs(v)) for k, v in expected.items())
    say(f"  consumer opened the sealed outputs: {len(plain)} matched rows, mean {got['mean']:.2f}, "
        f"median {got['median']:.2f} — {'equal to' if match else 'DIFFERENT from'} the plaintext answers")
    step("collab answers", match, got=got, expected=expected)
    vault = space.c["Collaborations"]
    earned = {b: vault.functions.balanceOf(w.banks[b].address, ZERO).call() for b in BANKS}
    for b, amount in earned.items():
        if amount:
            space.send(w.banks[b].account, vault.functions.withdraw(ZERO))
    say("  banks withdrew " + ", ".join(f"{b} {v / 1e18:.4f}" for b, v in earned.items()))
    step("collab payments", all(earned.values()), earned=earned)
