"""The provider's party node: what it shares for an MPC step, in which order, and what it refuses
(pure: the chain check is a stub that passes or raises; shares are opened and reconstructed here)."""
from __future__ import annotations

import pytest

from did.identity import Identity
from offchain.collab.provider_node import ContributionRefused, ProviderNode, contributed_columns
from offchain.mpc.sharing import FRAC_BITS, ROW_PRIME, NodeKey, open_bundle, reconstruct, threshold, to_signed

SESSION = "c1-7-s1"
SOURCE = {"name": "b", "asset": 2, "grant": 5, "id_column": "cust", "normalise": ["strip", "digits_only"],
          "columns": ["loans", "segment"]}
ROWS = [{"cust": "CN-3", "loans": 30.0, "segment": "sme"}, {"cust": "CN-1", "loans": 10.0, "segment": "retail"},
        {"cust": "CN-9", "loans": 90.0, "segment": "sme"}, {"cust": " 2", "loans": 20.5, "segment": "retail"}]
VERTICAL = {"layout": "vertical", "operations": ["mean"], "columns": {"b": ["loans"]}}


@pytest.fixture(scope="module")
def nodes() -> list[Identity]:
    return [Identity.create(f"node{i}") for i in range(3)]


class StubChain:
    """The chain as the node reads it, for one MPC step 1 of collaboration 7 reading source "b"."""

    def __init__(self, params: dict, nodes: list[Identity], refuse: str | None = None, engine: str = "mpc"):
        self.params, self.nodes, self.refuse, self.engine = params, nodes, refuse, engine

    def session(self, collab_id: int, step: int) -> str:
        return SESSION

    def check_step(self, collab_id: int, step: int, grant_id: int) -> None:
        if self.refuse:
            raise RuntimeError(self.refuse)

    def document(self, collab_id: int, step: int) -> dict:
        return {"engine": self.engine, "sources": {"b": {k: v for k, v in SOURCE.items() if k != "name"}},
                "params": self.params, "after": [0], "output": True}

    def compute_nodes(self, collab_id: int, step: int) -> list[NodeKey]:
        return [NodeKey.of(n) for n in self.nodes]


def node(nodes, params=VERTICAL, rows=ROWS, refuse: str | None = None, engine: str = "mpc") -> ProviderNode:
    p = ProviderNode(Identity.create("bank-b"), {2: rows}, StubChain(params, nodes, refuse, engine))
    p.matched[(7, 0)] = {"1", "2", "3"}   # what PSI step 0 matched (normalised ids)
    return p


def opened(p: ProviderNode, nodes: list[Identity], sealed: list[bytes], column: str) -> list[float]:
    t = threshold(len(nodes))
    bundles = [open_bundle(n, i, s, p.did, SESSION, len(nodes)) for i, (n, s) in enumerate(zip(nodes, sealed))]
    points = {i + 1: list(b.columns[column].reshape(-1)) for i, b in enumerate(bundles)}
    return [to_signed(v, ROW_PRIME) / 2 ** FRAC_BITS for v in reconstruct(points, ROW_PRIME, t)]


def test_vertical_rows_are_the_matched_ids_sorted_by_normalised_id(nodes):
    p = node(nodes)
    assert opened(p, nodes, p.mpc_bundles(7, 1, "b"), "loans") == [10.0, 20.5, 30.0]   # ids 1, 2, 3 — not CN-9


def test_horizontal_keeps_table_order_and_may_rename_a_local_column(nodes):
    params = {"operations": ["sum"], "column": "amount", "columns": {"b": "loans"}}
    assert contributed_columns(SOURCE, params) == {"amount": "loans"}
    p = node(nodes, params)
    assert opened(p, nodes, p.mpc_bundles(7, 1, "b"), "amount") == [30.0, 10.0, 20.5]


def test_refusals_name_what_is_wrong(nodes):
    duplicate = ROWS + [{"cust": "CN-1 ", "loans": 1.0, "segment": "sme"}]
    cases = [
        (node(nodes, rows=duplicate), 7, "b", "ID '1' appears twice"),
        (node(nodes), 8, "b", "needs the IDs an earlier PSI step matched"),
        (node(nodes, rows=ROWS[:3]), 7, "b", "1 matched ID\\(s\\) are no longer"),
        (node(nodes, {**VERTICAL, "columns": {"b": ["balance"]}}), 7, "b", "no column 'balance'"),
        (node(nodes, {**VERTICAL, "columns": {"a": ["x"]}}), 7, "b", "takes no column"),
        (node(nodes, {**VERTICAL, "columns": {"b": ["segment"]}}), 7, "b", "'segment' holds 'retail', not a number"),
        (node(nodes, refuse="GrantIsFrozen(5)"), 7, "b", "the chain says GrantIsFrozen"),
        (node(nodes), 7, "z", "reads no data source 'z'"),
        (node(nodes, engine="psi"), 7, "b", "is a 'psi' step, not 'mpc'"),
    ]
    for p, collab, source, message in cases:
        with pytest.raises(ContributionRefused, match=message):
            p.mpc_bundles(collab, 1, source)


def test_an_intersection_is_kept_only_from_the_session_leader(nodes):
    from offchain.psi.session import seal_intersection

    p = node(nodes)
    with pytest.raises(ContributionRefused, match="took no part in PSI step 0"):
        p.keep_intersection(9, 0, b"")
    leader, stranger = Identity.create("bank-a"), Identity.create("coordinator")
    p.sessions[(9, 0)] = [leader.did, p.did]
    forged = seal_intersection(stranger, SESSION, [stranger.did, p.did], ["1"], p.did, p.identity.x25519_public)
    with pytest.raises(Exception, match="sender|signed|expected"):
        p.keep_intersection(9, 0, forged)
    real = seal_intersection(leader, SESSION, [leader.did, p.did], ["1", "2"], p.did, p.identity.x25519_public)
    assert p.keep_intersection(9, 0, real) == 2 and p.matched[(9, 0)] == {"1", "2"}
    p.forget(9)
    assert (9, 0) not in p.matched and (9, 0) not in p.sessions
