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


def node(rows=ROWS, refuse: str | None = None) -> ProviderNode:
    def check(collab: int, step: int, grant: int) -> None:
        if refuse:
            raise RuntimeError(refuse)

    p = ProviderNode(Identity.create("bank-b"), {2: rows}, check)
    p.matched[(7, 0)] = {"1", "2", "3"}   # what PSI step 0 matched (normalised ids)
    return p


def opened(p: ProviderNode, nodes: list[Identity], sealed: list[bytes], column: str) -> list[float]:
    t = threshold(len(nodes))
    bundles = [open_bundle(n, i, s, p.did, SESSION, len(nodes)) for i, (n, s) in enumerate(zip(nodes, sealed))]
    points = {i + 1: list(b.columns[column].reshape(-1)) for i, b in enumerate(bundles)}
    return [to_signed(v, ROW_PRIME) / 2 ** FRAC_BITS for v in reconstruct(points, ROW_PRIME, t)]


def test_vertical_rows_are_the_matched_ids_sorted_by_normalised_id(nodes):
    p = node()
    sealed = p.mpc_bundles(7, 1, SOURCE, VERTICAL, [0], [NodeKey.of(n) for n in nodes], SESSION)
    assert opened(p, nodes, sealed, "loans") == [10.0, 20.5, 30.0]   # ids 1, 2, 3 — CN-9 is not shared


def test_horizontal_keeps_table_order_and_may_rename_a_local_column(nodes):
    p = node()
    params = {"operations": ["sum"], "column": "amount", "columns": {"b": "loans"}}
    assert contributed_columns(SOURCE, params) == {"amount": "loans"}
    sealed = p.mpc_bundles(7, 1, SOURCE, params, [0], [NodeKey.of(n) for n in nodes], SESSION)
    assert opened(p, nodes, sealed, "amount") == [30.0, 10.0, 20.5]


def test_refusals_name_what_is_wrong(nodes):
    keys = [NodeKey.of(n) for n in nodes]
    duplicate = ROWS + [{"cust": "CN-1 ", "loans": 1.0, "segment": "sme"}]
    with pytest.raises(ContributionRefused, match="ID '1' appears twice"):
        node(duplicate).mpc_bundles(7, 1, SOURCE, VERTICAL, [0], keys, SESSION)
    with pytest.raises(ContributionRefused, match="needs the IDs an earlier PSI step matched"):
        node().mpc_bundles(8, 1, SOURCE, VERTICAL, [0], keys, SESSION)
    with pytest.raises(ContributionRefused, match="1 matched ID\\(s\\) are no longer"):
        node(ROWS[:3]).mpc_bundles(7, 1, SOURCE, VERTICAL, [0], keys, SESSION)
    with pytest.raises(ContributionRefused, match="'balance' is not offered|no column 'balance'"):
        node().mpc_bundles(7, 1, SOURCE, {**VERTICAL, "columns": {"b": ["balance"]}}, [0], keys, SESSION)
    with pytest.raises(ContributionRefused, match="takes no column"):
        node().mpc_bundles(7, 1, SOURCE, {**VERTICAL, "columns": {"a": ["x"]}}, [0], keys, SESSION)
    with pytest.raises(ContributionRefused, match="'segment' holds 'retail', not a number"):
        node().mpc_bundles(7, 1, SOURCE, {**VERTICAL, "columns": {"b": ["segment"]}}, [0], keys, SESSION)
    with pytest.raises(ContributionRefused, match="the chain says GrantIsFrozen"):
        node(refuse="GrantIsFrozen(5)").mpc_bundles(7, 1, SOURCE, VERTICAL, [0], keys, SESSION)
