"""Three providers, three compute nodes, one consumer; small tables with known plaintext."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from did.identity import Identity
from offchain.mpc.sharing import NodeKey

CATEGORIES = ["north", "south", "east"]


@dataclass
class Cast:
    nodes: list[Identity]
    providers: list[Identity]
    consumer: Identity
    stranger: Identity

    @property
    def keys(self) -> list[NodeKey]:
        return [NodeKey.of(n) for n in self.nodes]

    @property
    def node_dids(self) -> list[str]:
        return [n.did for n in self.nodes]


@pytest.fixture(scope="session")
def cast() -> Cast:
    return Cast([Identity.create(f"node{i}") for i in range(3)], [Identity.create(f"provider{i}") for i in range(3)],
                Identity.create("consumer"), Identity.create("stranger"))


@pytest.fixture(scope="session")
def categories() -> list[str]:
    return CATEGORIES


@pytest.fixture(scope="session")
def tables() -> list[dict[str, list]]:
    """Per provider: x (income-like), y (correlated with x), region (group-by key)."""
    rng = np.random.default_rng(2024)
    out = []
    for p, rows in enumerate((25, 30, 20)):
        x = np.round(rng.normal(40 + 5 * p, 12, rows), 2)
        y = np.round(0.5 * x + rng.normal(0, 4, rows), 3)
        region = list(rng.choice(CATEGORIES, rows, p=[0.5, 0.3, 0.2]))
        out.append({"x": x.tolist(), "y": y.tolist(), "region": region})
    return out
