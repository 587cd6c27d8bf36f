from __future__ import annotations

import io
import os

import pytest

from offchain.errors import BlockNotFound, StoreError
from offchain.store.blockstore import BlockStore
from offchain.store.unixfs import file_cid


def test_add_cat_roundtrip_multilevel(tmp_path):
    store = BlockStore(tmp_path)
    data = os.urandom(262144 * 176 + 17)  # two levels
    res = store.add_bytes(data)
    assert res.cid == file_cid(data) and res.file_size == len(data)
    assert store.cat(res.cid) == data
    v1 = store.add_bytes(data, cid_version=1)
    assert v1.cid.startswith("bafybei") and store.cat(v1.cid) == data


def test_empty_and_small(tmp_path):
    store = BlockStore(tmp_path)
    assert store.cat(store.add_bytes(b"").cid) == b""
    assert store.cat(store.add_bytes(b"x", 1).cid) == b"x"


def test_pin_and_gc(tmp_path):
    store = BlockStore(tmp_path)
    keep = store.add_bytes(os.urandom(300000))
    drop = store.add_bytes(os.urandom(300000))
    store.pin_rm(drop.cid)
    removed = store.gc()
    assert len(removed) == 3  # the dropped file's root and its two leaves
    assert store.cat(keep.cid)
    with pytest.raises(BlockNotFound):
        store.cat(drop.cid)
    assert set(store.pin_ls()) == {keep.cid}


def test_unpinned_add_is_collected(tmp_path):
    store = BlockStore(tmp_path)
    res = store.add_bytes(b"temporary", pin=False)
    assert store.has(res.cid)
    store.gc()
    assert not store.has(res.cid)


def test_pin_missing_and_unpin_unpinned(tmp_path):
    store = BlockStore(tmp_path)
    with pytest.raises(BlockNotFound):
        store.pin_add("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
    res = store.add_bytes(b"a", pin=False)
    with pytest.raises(StoreError):
        store.pin_rm(res.cid)


def test_only_hash_stores_nothing(tmp_path):
    store = BlockStore(tmp_path)
    res = store.add_stream(io.BytesIO(b"ghost"), only_hash=True)
    assert not store.has(res.cid)
