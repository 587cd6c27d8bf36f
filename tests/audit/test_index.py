"""The event index over the shared lifecycle: the same catalog, trail and verdicts as the chain
alone; rebuilt from empty to the same digest; a crash mid-window resumes without gap or duplicate."""
from __future__ import annotations

import pytest

import audit.index as index_mod
from audit.events import ChainReader
from audit.index import EventIndex, IndexMismatch
from audit.index_entities import EntityReads
from audit.index_reads import IndexedReader, asset_from_index, catalog_page
from audit.index_tables import digest
from audit.trail import build_trail, catalog
from audit.verify import verify_all
from tests.support.lifecycle import Lifecycle, shared_lifecycle


@pytest.fixture
def lc(request, tmp_path_factory) -> Lifecycle:
    return shared_lifecycle(request, tmp_path_factory)


def _index(lc: Lifecycle, path, **kw) -> EventIndex:
    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{path}", **kw)
    idx.catch_up()
    return idx


def test_catalog_from_index_equals_catalog_from_chain(lc, tmp_path):
    idx = _index(lc, tmp_path / "i.sqlite")
    block, page = catalog_page(idx.engine, lc.deployment)
    assert block == lc.w3.eth.block_number
    direct = catalog(ChainReader(lc.w3, lc.deployment))
    assert [{k: v for k, v in a.items() if k != "indexedBlock"} for a in page] == direct
    assert all(a["indexedBlock"] == block for a in page)
    one = asset_from_index(idx.engine, lc.deployment, lc.asset)
    assert one is not None and one["state"] == "offline" and one["holder"] == lc.addr["provider2"]
    assert asset_from_index(idx.engine, lc.deployment, 999) is None
    _, second = catalog_page(idx.engine, lc.deployment, offset=1, limit=1)
    assert [a["assetId"] for a in second] == [lc.other_asset]


def test_trail_and_verification_agree_from_index_and_from_chain(lc, tmp_path):
    """The auditor's independence check: what the index says equals what the chain alone says."""
    idx = _index(lc, tmp_path / "i.sqlite")
    chain, indexed = ChainReader(lc.w3, lc.deployment), IndexedReader.of(idx)
    assert [e.uid for e in indexed.events] == [e.uid for e in chain.events]
    for asset in (lc.asset, lc.other_asset):
        assert build_trail(indexed, asset) == build_trail(chain, asset)
        from_chain = verify_all(None, None, reader=chain, asset=asset, logs_dir=lc.logs_dir, fetch=lc.fetch)
        from_index = verify_all(None, None, reader=indexed, asset=asset, logs_dir=lc.logs_dir, fetch=lc.fetch)
        assert from_index == from_chain and all(v["ok"] for v in from_index)
        # `tds audit asset|verify --asset` read only the events that can concern the asset
        block, narrow = EntityReads(lc.w3, lc.deployment, idx.engine).asset_reader(asset)
        assert block == idx.indexed_block() and len(narrow.events) < len(chain.events)
        assert build_trail(narrow, asset) == build_trail(chain, asset)
        assert verify_all(None, None, reader=narrow, asset=asset, logs_dir=lc.logs_dir, fetch=lc.fetch) == from_chain
    assert EntityReads(lc.w3, lc.deployment, idx.engine).asset_reader(999) == (idx.indexed_block(), None)


def test_rebuild_from_empty_gives_the_same_digest(lc, tmp_path):
    first = _index(lc, tmp_path / "a.sqlite", max_range=7)  # many small windows
    before = digest(first.engine)
    first.engine.dispose()
    for name in ("a.sqlite", "a.sqlite-wal", "a.sqlite-shm"):  # delete the database
        (tmp_path / name).unlink(missing_ok=True)
    rebuilt = _index(lc, tmp_path / "a.sqlite")  # one window
    assert digest(rebuilt.engine) == before
    other = _index(lc, tmp_path / "b.sqlite", max_range=3)
    assert digest(rebuilt.engine) == digest(other.engine)
    assert rebuilt.status()["counts"]["events"] == len(ChainReader(lc.w3, lc.deployment).events)


def test_killed_mid_window_resumes_without_gap_or_duplicate(lc, tmp_path, monkeypatch):
    clean = _index(lc, tmp_path / "clean.sqlite", max_range=5)
    real = index_mod.apply_event
    for crash_at in (1, 17, 60):  # die after some of a window's events were written
        path = tmp_path / f"crash{crash_at}.sqlite"
        calls = {"n": 0}

        def dying(conn, ev, when, chain_id):
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise KeyboardInterrupt("killed")
            real(conn, ev, when, chain_id)

        monkeypatch.setattr(index_mod, "apply_event", dying)
        idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{path}", max_range=5)
        with pytest.raises(KeyboardInterrupt):
            idx.catch_up()
        monkeypatch.setattr(index_mod, "apply_event", real)
        resumed = EventIndex(lc.w3, lc.deployment, f"sqlite:///{path}", max_range=5)  # a new process
        resumed.catch_up()
        assert digest(resumed.engine) == digest(clean.engine)


def test_index_refuses_another_deployment(lc, tmp_path):
    _index(lc, tmp_path / "i.sqlite")
    other = dict(lc.deployment, chainId=999)
    with pytest.raises(IndexMismatch, match="delete it"):
        EventIndex(lc.w3, other, f"sqlite:///{tmp_path / 'i.sqlite'}")
