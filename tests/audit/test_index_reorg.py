"""The event index against reorgs and confirmation depth on a fresh anvil."""
from __future__ import annotations

import pytest

from audit.index import EventIndex
from audit.index_reads import asset_from_index, catalog_page
from audit.index_tables import digest
from bench.gateway import fresh_space, mint_one


@pytest.fixture
def space(tmp_settings):
    from chain.node import EmbeddedNode

    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    yield fresh_space(tmp_settings)
    node.down(save=False)


def _ids(idx: EventIndex) -> list[int]:
    return [a["assetId"] for a in catalog_page(idx.engine, idx.deployment)[1]]


def test_reorg_rolls_back_what_it_removed(space, tmp_path):
    w3 = space["w3"]
    for k in range(3):
        mint_one(space, f"a{k}")
    idx = EventIndex(w3, space["deployment"], f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    assert _ids(idx) == [1, 2, 3]
    head = w3.eth.block_number
    w3.provider.make_request("anvil_reorg", [2, []])  # the last two blocks (assets 2 and 3) replaced by empty ones
    assert w3.eth.block_number == head
    idx.catch_up()
    assert _ids(idx) == [1] and idx.indexed_block() == head
    assert asset_from_index(idx.engine, idx.deployment, 2) is None
    fresh = EventIndex(w3, space["deployment"], f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    fresh.catch_up()
    assert digest(idx.engine) == digest(fresh.engine)  # the same as an index of the chain as it is now
    space["send"].resync()
    mint_one(space, "after")  # the chain goes on: asset 2 again, with other content
    idx.catch_up()
    assert _ids(idx) == [1, 2]
    assert asset_from_index(idx.engine, idx.deployment, 2)["manifestHash"] != ""


def test_reorg_by_snapshot_revert_of_a_confirmed_window(space, tmp_path):
    w3 = space["w3"]
    mint_one(space, "kept")
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    mint_one(space, "dropped")
    idx = EventIndex(w3, space["deployment"], f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    assert _ids(idx) == [1, 2]
    w3.provider.make_request("evm_revert", [snap])
    for _ in range(3):
        w3.provider.make_request("evm_mine", [])  # the other branch grows past the old head
    idx.catch_up()
    assert _ids(idx) == [1]
    assert idx.status()["counts"]["assets"] == 1


def test_confirmations_hold_back_the_newest_blocks(space, tmp_path):
    w3 = space["w3"]
    idx = EventIndex(w3, space["deployment"], f"sqlite:///{tmp_path / 'i.sqlite'}", confirmations=2)
    block = mint_one(space, "new")
    idx.catch_up()
    assert _ids(idx) == [] and idx.indexed_block() == block - 2
    w3.provider.make_request("evm_mine", [])
    idx.catch_up()
    assert _ids(idx) == []
    w3.provider.make_request("evm_mine", [])
    idx.catch_up()
    assert _ids(idx) == [1] and idx.status()["lag"] == 2
