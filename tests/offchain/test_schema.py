from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from offchain.errors import SchemaError, SchemaViolation
from offchain.ingest.schema import ConsistencyRule, Field, Schema, infer_field
from offchain.ingest.table import Table


def test_parse_types():
    assert Field("a", "integer").parse(" 42 ", 1) == 42
    assert Field("a", "decimal", decimals=2).parse("1.5", 1) == Decimal("1.50")
    assert Field("a", "date").parse("2024-02-29", 1) == dt.date(2024, 2, 29)
    assert Field("a", "string").parse("", 1) is None


def test_decimals_rule():
    with pytest.raises(SchemaViolation) as e:
        Field("price", "decimal", decimals=2).parse("1.234", 7)
    assert (e.value.rule, e.value.column, e.value.row) == ("decimals", "price", 7)


@pytest.mark.parametrize("field,value,rule", [
    (Field("a", "integer", minimum=0), -1, "minimum"),
    (Field("a", "integer", maximum=9), 10, "maximum"),
    (Field("a", "string", pattern=r"[a-z]+"), "ABC", "pattern"),
    (Field("a", "string", allowed=("x", "y")), "z", "allowed"),
    (Field("a", "string", nullable=False), None, "required"),
])
def test_constraint_rules_named(field, value, rule):
    assert field.check(value, 3) == rule
    t = Table(Schema((field,)), {"a": [value]})
    with pytest.raises(SchemaViolation) as e:
        t.validate()
    assert e.value.rule == rule and e.value.row == 1


def test_unique_and_consistency_rules():
    s = Schema((Field("k", "integer", unique=True), Field("start", "date"), Field("end", "date")),
               consistency=(ConsistencyRule("end", ">=", "start"),))
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    with pytest.raises(SchemaViolation) as e:
        Table(s, {"k": [1, 1], "start": [d1, d1], "end": [d2, d2]}).validate()
    assert e.value.rule == "unique"
    with pytest.raises(SchemaViolation) as e:
        Table(s, {"k": [1, 2], "start": [d1, d2], "end": [d2, d1]}).validate()
    assert e.value.rule == "end >= start" and e.value.row == 2


def test_schema_roundtrip_and_errors(tmp_path):
    s = Schema((Field("a", "decimal", decimals=3, minimum="0.5"), Field("b", "identifier", unique=True)),
               key=("b",), name="x")
    assert Schema.from_dict(s.to_dict()) == s
    with pytest.raises(SchemaError):
        Field("a", "float")
    with pytest.raises(SchemaError):
        Schema((Field("a", "integer"),), key=("zz",))
    bad = tmp_path / "s.json"
    bad.write_text("{ nope")
    with pytest.raises(SchemaError, match="line 1"):
        Schema.load(bad)


def test_inference():
    assert infer_field("n", ["1", "2", ""]).type == "integer"
    assert infer_field("user_id", ["1", "2"]).type == "identifier"
    assert infer_field("p", ["1.25", "3"]).decimals == 2
    assert infer_field("d", ["2024-01-01"]).type == "date"
    assert infer_field("s", ["x", "1"]).type == "string"
