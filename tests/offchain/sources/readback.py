"""Readers for the live-source tests: a source's head manifest, and a column opened with the
provider's keys (to check that every row arrived exactly once)."""
from __future__ import annotations

import json
from typing import Callable

from offchain.onion.chunks import split_varlen, unpack_object
from offchain.onion.keystore import Keystore
from offchain.sources.runner import SourceRunner
from offchain.store.client import EmbeddedStore


def head_manifest(runner: SourceRunner, store: EmbeddedStore, name: str) -> dict:
    return json.loads(store.cat(runner.state.head(name).manifest_cid))


def open_column(manifest: dict, keys: Keystore, fetch: Callable[[str], bytes], column: str) -> list:
    """The plaintext of ``column`` (EQ onion), in row order, opened with the provider's keys."""
    ring = keys.keyring()
    meta = manifest["columns"][column]["eq"]
    out: list = []
    for chunk in manifest["chunks"]:
        header, hbytes, body = unpack_object(fetch(chunk["objects"][f"{column}/eq"]))
        assert header.dataset == manifest["dataset_id"] and header.chunk == chunk["index"]
        plain = ring.rnd(meta["rnd"]).open(bytes(body), hbytes)
        out += [ring.det(meta["det"]).decrypt(ct, meta["domain"]) for ct in split_varlen(plain)]
    return out
