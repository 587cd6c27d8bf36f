from __future__ import annotations

from decimal import Decimal

import pytest

from offchain.errors import SchemaError
from offchain.ingest.cleaning import Deduplicate, DropOutliers, FillMissing, clean, rule_from_dict
from offchain.ingest.schema import Field, Schema
from offchain.ingest.table import Table

S = Schema((Field("k", "string"), Field("v", "decimal", decimals=1)))


def table():
    return Table(S, {"k": ["a", "a", "b", "c", "d", "e", "f", "g"],
                     "v": [Decimal(x) if x else None for x in ("1", "1", "", "2", "3", "2", "3", "900")]})


def test_rules_and_log():
    t, log = clean(table(), [Deduplicate(), FillMissing("v", "median"), DropOutliers("v", "iqr")])
    assert t.columns["k"] == ["a", "b", "c", "d", "e", "f"]
    assert [e.rule for e in log] == ["deduplicate", "fill_missing", "drop_outliers"]
    assert log[0].rows == (2,) and log[1].rows == (3,) and log[2].rows == (8,)
    assert t.columns["v"][1] == Decimal("2.5")


def test_fill_constant_and_range_outliers():
    t, log = clean(table(), [FillMissing("v", "constant", "0"), DropOutliers("v", "range", low=0, high=10)])
    assert Decimal("0.0") in t.columns["v"] and Decimal("900.0") not in t.columns["v"]


def test_rule_from_dict_and_errors():
    assert isinstance(rule_from_dict({"rule": "deduplicate", "columns": ["k"]}), Deduplicate)
    with pytest.raises(SchemaError):
        rule_from_dict({"rule": "magic"})
    with pytest.raises(SchemaError):
        FillMissing("k", "mean").apply(table())
