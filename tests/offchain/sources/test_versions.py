"""Appending means versions: a query names a version (``<id>@v<n>``) or takes the latest, the
versions form a hash chain, and the quality gate refuses a dataset below its threshold."""
from __future__ import annotations

import json
import sqlite3

import pytest

from offchain.canonical import canonical_hash
from offchain.keyservice.release import Grant, KeyService
from offchain.query.engine import Engine
from offchain.query.plan import Agg, Query, split_version
from offchain.sources.errors import QualityBelowThreshold
from offchain.sources.gate import QualityReportMismatch, QualityReportMissing, find_report, require_quality
from offchain.sources.spec import SourceSpec
from offchain.sources.versions import read_history, versioned_manifests

SCHEMA = {"name": "pay", "fields": [
    {"name": "id", "type": "identifier", "nullable": False},
    {"name": "region", "type": "string", "allowed": ["north", "south"]},
    {"name": "amount", "type": "integer", "minimum": 0, "maximum": 1000}]}


def answer(ks: KeyService, q: Query, fetch) -> dict:
    grant = Grant.covering(q, q.operations())
    enc, peeled = ks.prepare(q, grant)
    return ks.open(q, grant, Engine(ks.manifests, fetch, peeled).run(enc)).answer


def test_query_by_version_and_latest(tmp_path, make_runner, store, keys):
    db = tmp_path / "pay.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("create table pay (id integer, region text, amount integer)")
        c.executemany("insert into pay values (?,?,?)", [(i, "north", i) for i in range(1, 21)])
    r = make_runner()
    r.state.add(SourceSpec("pay", "sqlite", str(db), table="pay", watermark="id", schema=SCHEMA,
                           onions={"amount": ["hom"]}))
    r.sync_once("pay")
    with sqlite3.connect(db) as c:
        c.executemany("insert into pay values (?,?,?)", [(i, "south", 100) for i in range(21, 31)])
    r.sync_once("pay")
    history = read_history(r.home.history_file("pay"))
    assert [h["version"] for h in history] == [1, 2]
    manifests = versioned_manifests(history, store.cat)
    v1, v2 = (json.loads(store.cat(h["manifest_cid"])) for h in history)
    assert v2["previous_version_hash"] == canonical_hash(v1) == history[0]["manifest_hash"]
    ks = KeyService(keys.keyring(), manifests)
    dataset = v1["dataset_id"]
    aggs = (Agg("count"), Agg("sum", "amount"))
    first = answer(ks, Query(f"{dataset}@v1", aggs), store.cat)
    latest = answer(ks, Query(dataset, aggs), store.cat)
    assert first["rows"] == [[20, 210]] and latest["rows"] == [[30, 1210]]
    assert split_version(f"{dataset}@v2") == (dataset, 2) and split_version(dataset) == (dataset, None)


def test_quality_gate(tmp_path, make_runner, store):
    db = tmp_path / "bad.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("create table pay (id integer, region text, amount integer)")
        c.executemany("insert into pay values (?,?,?)", [(i, "west" if i % 2 else "north", i) for i in range(1, 21)])
    r = make_runner()
    r.state.add(SourceSpec("bad", "sqlite", str(db), table="pay", schema=SCHEMA, onions={"amount": ["eq"]}))
    r.sync_once("bad")
    manifest = json.loads(store.cat(r.state.head("bad").manifest_cid))
    report = find_report(manifest, store.cat)
    assert report["dimensions"]["accuracy"]["failures"] == {"region": 10}
    expected = manifest["quality_report_hash"]
    overall = report["overall"]                        # 10 of 20 regions break 'allowed'
    with pytest.raises(QualityBelowThreshold, match=f"scores {overall} overall, below the quality threshold 0.99"):
        require_quality(manifest["dataset_id"], report, expected, "0.99")
    assert require_quality(manifest["dataset_id"], report, expected, "0.5") == overall
    with pytest.raises(QualityReportMissing, match="--quality-report"):
        require_quality("d", None, expected, "0.8")
    with pytest.raises(QualityReportMismatch):
        require_quality("d", report, "0x" + "00" * 32, "0.8")
    assert require_quality("d", None, expected, "0") == "unchecked"
