from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from offchain.ingest.cleaning import Deduplicate, clean
from offchain.ingest.quality import assess
from offchain.ingest.schema import ConsistencyRule, Field, Schema
from offchain.ingest.table import Table

S = Schema((Field("id", "identifier", unique=True), Field("age", "integer", minimum=0, maximum=120),
            Field("start", "date", max_age_days=30), Field("end", "date")),
           consistency=(ConsistencyRule("end", ">=", "start"),), name="people")
D = dt.date(2024, 5, 1)


def table():
    return Table(S, {"id": ["a", "b", "b", "c"], "age": [30, 150, None, 40],
                     "start": [D, D, dt.date(2023, 1, 1), D],
                     "end": [D, dt.date(2024, 4, 1), dt.date(2023, 1, 2), D]})


def test_scores_and_failing_counts():
    r = assess(table(), as_of=D)
    dims = r.to_dict()["dimensions"]
    assert dims["completeness"]["failed"] == 1 and dims["completeness"]["failures"] == {"age": 1}
    assert dims["accuracy"]["failures"] == {"age": 1}
    assert dims["consistency"]["failures"] == {"end >= start": 1}
    assert dims["timeliness"]["failures"] == {"start": 1} and dims["timeliness"]["score"] == "0.7500"
    assert dims["uniqueness"]["failures"] == {"id": 1}
    assert r.to_dict()["classification"]["fields"]["age"] == "sensitive"


def test_canonical_hash_is_stable_and_sensitive():
    t, log = clean(table(), [Deduplicate(("id",))])
    a, b = assess(t, log, as_of=D), assess(t, log, as_of=D)
    assert a.canonical() == b.canonical() and a.hash == b.hash and a.hash.startswith("0x")
    assert json.loads(a.canonical())["cleaning"][0]["rows"] == [3]
    assert assess(table(), as_of=D).hash != a.hash
    assert b" " not in a.canonical().split(b'"note"')[0][:20]


def test_perfect_table_passes():
    t = Table(S, {"id": ["a"], "age": [1], "start": [D], "end": [D]})
    r = assess(t, as_of=D)
    assert r.overall == "1.0000" and r.passed()
