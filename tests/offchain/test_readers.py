"""Malformed input names the file, the row and the column."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import openpyxl
import pytest

from offchain.errors import MalformedInput, SchemaViolation
from offchain.ingest.readers import read_raw, read_table
from offchain.ingest.schema import Field, Schema


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_typed_by_inference(tmp_path):
    p = write(tmp_path, "a.csv", "customer_id,amount,day,note\nc1,10.50,2024-01-02,x\nc2,,2024-02-03,\n")
    t = read_table(p)
    assert [f.type for f in t.schema.fields] == ["identifier", "decimal", "date", "string"]
    assert t.columns["amount"] == [Decimal("10.50"), None]
    assert t.columns["day"][1] == dt.date(2024, 2, 3)
    assert t.lines == [2, 3]


def test_csv_ragged_row_names_file_row_column(tmp_path):
    p = write(tmp_path, "bad.csv", "a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(MalformedInput) as e:
        read_raw(p)
    assert (e.value.file, e.value.row, e.value.column) == (str(p), 3, "c")
    assert "bad.csv, row 3, column 'c'" in str(e.value)


def test_csv_unterminated_quote_and_bad_header(tmp_path):
    with pytest.raises(MalformedInput) as e:
        read_raw(write(tmp_path, "q.csv", 'a,b\n1,"oops\n'))
    assert e.value.row is not None
    with pytest.raises(MalformedInput) as e:
        read_raw(write(tmp_path, "h.csv", "a,a\n1,2\n"))
    assert (e.value.row, e.value.column) == (1, "a")


def test_csv_bad_utf8(tmp_path):
    p = tmp_path / "u.csv"
    p.write_bytes(b"a,b\n1,2\n3,\xff\n")
    with pytest.raises(MalformedInput) as e:
        read_raw(p)
    assert e.value.row == 3


def test_type_error_names_rule_column_row_and_file(tmp_path):
    p = write(tmp_path, "t.csv", "qty\n1\n2\nthree\n")
    with pytest.raises(SchemaViolation) as e:
        read_table(p, Schema((Field("qty", "integer"),)))
    assert (e.value.rule, e.value.column, e.value.row) == ("type", "qty", 4)
    assert "t.csv" in str(e.value)


def test_json_records_and_lines(tmp_path):
    rec = write(tmp_path, "r.json", json.dumps([{"id": 1, "v": 1.5}, {"id": 2, "v": None}]))
    t = read_table(rec)
    assert t.columns["v"] == [Decimal("1.5"), None]
    lines = write(tmp_path, "l.jsonl", '{"id": 1}\n{"id": 2}\n')
    assert read_table(lines).columns["id"] == ["1", "2"] or read_table(lines).columns["id"] == [1, 2]


def test_json_syntax_error_position(tmp_path):
    p = write(tmp_path, "s.jsonl", '{"a": 1}\n{"a": 2,}\n')
    with pytest.raises(MalformedInput) as e:
        read_raw(p)
    assert e.value.row == 2 and e.value.column.startswith("char ")
    p2 = write(tmp_path, "n.json", '[{"a": {"nested": 1}}]')
    with pytest.raises(MalformedInput) as e:
        read_raw(p2)
    assert (e.value.row, e.value.column) == (1, "a")
    with pytest.raises(MalformedInput):
        read_raw(write(tmp_path, "x.json", "[1, 2]"))


def test_xlsx_roundtrip_and_error_cell(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "amount", "day"])
    ws.append(["a1", 3.25, dt.datetime(2024, 3, 1)])
    ws.append(["a2", 4, dt.datetime(2024, 3, 2)])
    p = tmp_path / "ok.xlsx"
    wb.save(p)
    t = read_table(p)
    assert t.columns["amount"] == [Decimal("3.25"), Decimal("4.00")]
    assert t.columns["day"] == [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]
    ws.append(["a3", "#DIV/0!", None])
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    with pytest.raises(MalformedInput) as e:
        read_raw(bad)
    assert e.value.row == 4 and e.value.column.startswith("amount")


def test_not_an_xlsx_and_unknown_extension(tmp_path):
    with pytest.raises(MalformedInput, match="xlsx"):
        read_raw(write(tmp_path, "fake.xlsx", "not a zip"))
    with pytest.raises(MalformedInput, match="unsupported"):
        read_raw(write(tmp_path, "a.parquet", "x"))
    with pytest.raises(MalformedInput, match="not found"):
        read_raw(tmp_path / "missing.csv")


def test_declared_column_missing(tmp_path):
    with pytest.raises(MalformedInput) as e:
        read_table(write(tmp_path, "m.csv", "a\n1\n"), Schema((Field("b", "integer"),)))
    assert e.value.column == "b"
