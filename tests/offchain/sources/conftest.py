"""Fixtures for the live-source tests: a data keystore (cheap scrypt), an embedded content
store, a runner over a fresh sources folder, and a reader that opens a dataset's EQ column
with the provider's keys (to check that every row arrived exactly once)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import pytest

from offchain.onion.keystore import Keystore
from offchain.sources.monitor import Backoff
from offchain.sources.runner import SourceHome, SourceRunner
from offchain.store.client import EmbeddedStore


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


@pytest.fixture
def keys(tmp_path: Path) -> Keystore:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Keystore.create(tmp_path / "keys.json", "pw", scrypt_n=2 ** 10)


@pytest.fixture
def make_runner(tmp_path: Path, keys: Keystore, store: EmbeddedStore) -> Callable[..., SourceRunner]:
    made: list[SourceRunner] = []

    def make(**kw: Any) -> SourceRunner:
        kw.setdefault("backoff", Backoff(attempts=3, base=0.05, cap=0.2))
        r = SourceRunner(SourceHome(tmp_path / "sources"), keys, store.add_bytes, store.cat, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()
