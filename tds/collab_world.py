"""A multi-party space for the demo, tests and benchmarks: on a deployed system, three providers
(banks) each holding a customer table in their own node, a consumer holding a PSI+MPC grant on
each bank's asset, and three compute nodes registered in the NodeRegistry. Every participant is a
fresh account funded by the operator, bound to its own DID, with its role on chain."""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from chain import Member, Space
from chain import collab as cc
from chain.cid import parse_cid
from chain.ops import MPC, PSI
from did.identity import Identity, create_identity
from did.registry import IdentityRegistryClient
from offchain.psi.normalize import normalize

PRICE = 10**15
BANKS = ("bank-a", "bank-b", "bank-c")
NODES = ("node-1", "node-2", "node-3")
ID_COLUMNS = {"bank-a": "customer_id", "bank-b": "cust_no", "bank-c": "id"}
# each bank writes its ids its own way; these rules bring them to one form for PSI
NORMALISE = {"bank-a": ["strip"], "bank-b": ["strip", "digits_only"], "bank-c": ["strip", "lstrip: 0"]}


# what else each bank knows of its customers (vertical statistics join these by PSI)
EXTRA_COLUMNS = {"bank-a": "segment", "bank-b": "loans", "bank-c": "card_spend"}
SEGMENTS = ("retail", "sme", "private")


def bank_rows(bank: str, n: int, common: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` customers of ``bank``: the first ``common`` ids are shared by every bank (formatted
    differently per bank), the rest are the bank's own; balances are whole currency units. Each
    bank also holds one column of its own (``EXTRA_COLUMNS``); for a shared customer it follows
    the customer's wealth, so statistics across banks (Pearson, cross-tab) find a real relation."""
    rng, extra = random.Random(f"{seed}:{bank}"), random.Random(f"{seed}:{bank}:extra")
    rows = []
    for i in range(n):
        number = 10_000_000 + i if i < common else 20_000_000 + BANKS.index(bank) * 1_000_000 + i
        shown = {"bank-a": f" {number} ", "bank-b": f"CN-{number}", "bank-c": f"{number:011d}"}[bank]
        wealth = random.Random(f"{seed}:customer:{number}").random()
        row: dict[str, Any] = {ID_COLUMNS[bank]: shown, "balance": rng.randint(100, 50_000)}
        if bank == "bank-a":
            row["segment"] = SEGMENTS[min(2, int(wealth * 3))]
        elif bank == "bank-b":
            row["loans"] = round(wealth * 80_000 + extra.uniform(0, 20_000))
        else:
            row["card_spend"] = round(wealth * 6_000 + extra.uniform(0, 1_500), 2)
        rows.append(row)
    return rows


@dataclass
class CollabWorld:
    space: Space
    store: Any
    operator: LocalAccount
    consumer: Member
    banks: dict[str, Member]
    nodes: dict[str, Member]
    identities: dict[str, Identity]
    tables: dict[str, list[dict[str, Any]]]  # bank -> its plaintext rows (held by the bank only)
    assets: dict[str, int]
    grants: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)

    def description(self, steps: list[dict[str, Any]], name: str = "joint-customer-balances",
                    step_timeout: int = 3600) -> dict[str, Any]:
        """A tds-collab/1 description over this world's banks, grants and nodes."""
        return {
            "version": "tds-collab/1", "name": name,
            "environment": {"chain_id": self.space.w3.eth.chain_id, "step_timeout": step_timeout},
            "participants": {
                "consumer": {"address": self.consumer.address, "did": self.consumer.did},
                "providers": {b: {"address": m.address, "did": m.did} for b, m in self.banks.items()},
                "compute_nodes": {n: {"address": m.address, "did": m.did} for n, m in self.nodes.items()},
            },
            "data_sources": {
                f"{b}-customers": {"asset": self.assets[b], "provider": b, "grant": self.grants[b],
                                   "id_column": ID_COLUMNS[b], "normalise": NORMALISE[b],
                                   "columns": ["balance", EXTRA_COLUMNS[b]]} for b in self.banks},
            "steps": steps,
        }


    def common_customers(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The plaintext answer key: normalised id -> bank -> that bank's row, for the customers
        every bank holds (what PSI finds; only tests and the demo's check may look at it)."""
        keyed = {b: dict(zip(normalize([str(r[ID_COLUMNS[b]]) for r in self.tables[b]], NORMALISE[b]),
                             self.tables[b])) for b in self.banks}
        common = set.intersection(*(set(k) for k in keyed.values()))
        return {k: {b: keyed[b][k] for b in self.banks} for k in sorted(common)}


def _member(space: Space, operator: LocalAccount, name: str, registry: IdentityRegistryClient,
            role: str, identities: dict[str, Identity]) -> Member:
    account = Account.create()
    space.sender(operator).transfer(account.address, 10**19)
    ident = create_identity(name, account)
    identities[name] = ident
    registry.bind(ident)
    member = Member(name, account, ident.did)
    space.grant_role(operator, member, role, keccak(text=f"vc:{name}:{role}"))
    return member


def build_collab_world(space: Space, store: Any, operator: LocalAccount, rows: int = 60, common: int = 20,
                       max_uses: int = 10) -> CollabWorld:
    """Providers, consumer and compute nodes on ``space``; grants PSI|MPC on each bank's asset."""
    registry = IdentityRegistryClient(space.w3, space.c["IdentityRegistry"])
    identities: dict[str, Identity] = {}
    consumer = _member(space, operator, "analyst", registry, "CONSUMER", identities)
    banks = {b: _member(space, operator, b, registry, "PROVIDER", identities) for b in BANKS}
    nodes = {n: _member(space, operator, n, registry, "COMPUTE_PROVIDER", identities) for n in NODES}
    for n, m in nodes.items():
        cc.add_node(space, operator, m.address, cc.NodeKind.COMPUTE, n, f"tds-node://{n}")
    template = space.publish_template(operator, "joint computation", b"joint terms v1", 3, PSI | MPC | 7,
                                      [7000, 0, 2000, 1000])
    tables, assets, grants = {}, {}, {}
    for b, m in banks.items():
        tables[b] = bank_rows(b, rows, common)
        manifest = json.dumps({"dataset": f"{b}-customers", "columns": [ID_COLUMNS[b], "balance", EXTRA_COLUMNS[b]],
                               "rows": rows, "sha256": hashlib.sha256(json.dumps(tables[b]).encode()).hexdigest()},
                              sort_keys=True).encode()
        cid = parse_cid(store.add_bytes(manifest)).to_bytes()
        assets[b] = space.register_asset(m, cid, cid, keccak(manifest), "internal", keccak(text=f"quality:{b}"),
                                         template)
        grants[b] = space.grant_by_signature(m, consumer, assets[b], PSI | MPC, max_uses=max_uses,
                                             price=PRICE * (1 + BANKS.index(b)), purpose="joint customer analysis")
    return CollabWorld(space, store, operator, consumer, banks, nodes, identities, tables, assets, grants)
