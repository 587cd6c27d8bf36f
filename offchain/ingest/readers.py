"""Readers for CSV, JSON (an array of records, or JSON lines) and Excel (.xlsx).

Every parse failure raises :class:`MalformedInput` naming the file, the row (CSV/Excel: the
spreadsheet row, header = 1; JSON: the line) and the column (a header name, or for a JSON
syntax error the character column)."""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offchain.errors import MalformedInput
from offchain.ingest.schema import Schema, infer_schema
from offchain.ingest.table import Table

EXCEL_ERRORS = frozenset({"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!",
                          "#GETTING_DATA", "#SPILL!", "#CALC!"})


@dataclass
class RawTable:
    """Untyped cells as read, with each row's position in the source."""

    source: str
    header: list[str]
    rows: list[list[Any]]
    lines: list[int]

    def typed(self, schema: Schema | None = None) -> Table:
        """Type by a declared schema (columns matched by name) or an inferred one."""
        schema = schema or infer_schema(self.header, self.rows, Path(self.source).stem)
        index = {h: i for i, h in enumerate(self.header)}
        missing = [f.name for f in schema.fields if f.name not in index]
        if missing:
            raise MalformedInput(self.source, 1, missing[0], "declared column missing from the header")
        order = [index[f.name] for f in schema.fields]
        rows = [[row[i] for i in order] for row in self.rows]
        return Table.from_rows(schema, rows, self.source, self.lines)


def _check_header(source: str, header: list[str]) -> list[str]:
    clean = [h.strip() for h in header]
    for i, h in enumerate(clean):
        if not h:
            raise MalformedInput(source, 1, f"#{i + 1}", "empty column name in header")
        if h in clean[:i]:
            raise MalformedInput(source, 1, h, "duplicate column name in header")
    return clean


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def read_csv(path: Path | str, delimiter: str = ",") -> RawTable:
    source = str(path)
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedInput(source, _line_of(data, exc.start), None, "not valid UTF-8") from None
    if "\0" in text:
        raise MalformedInput(source, _line_of(data, data.index(b"\0")), None, "NUL byte in text")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise MalformedInput(source, 1, None, "empty file (no header row)")
        header = _check_header(source, header)
        rows, lines = [], []
        for row in reader:
            if not row or row == [""]:
                continue
            line = reader.line_num
            if len(row) != len(header):
                col = header[len(row)] if len(row) < len(header) else f"#{len(header) + 1}"
                raise MalformedInput(source, line, col,
                                     f"expected {len(header)} fields, found {len(row)}")
            rows.append(row)
            lines.append(line)
    except csv.Error as exc:
        raise MalformedInput(source, reader.line_num, None, f"CSV syntax: {exc}") from None
    return RawTable(source, header, rows, lines)


def _scalar(source: str, line: int, column: str, value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise MalformedInput(source, line, column, "nested objects/arrays are not tabular")
    return value


def read_json(path: Path | str) -> RawTable:
    """An array of objects, or one object per line (JSON lines)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedInput(source, None, None, f"not valid UTF-8 (byte {exc.start})") from None
    records: list[tuple[int, Any]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            doc = json.loads(text, parse_float=str)
        except json.JSONDecodeError as exc:
            raise MalformedInput(source, exc.lineno, f"char {exc.colno}", exc.msg) from None
        if not isinstance(doc, list):
            raise MalformedInput(source, 1, None, "expected an array of records")
        records = list(enumerate(doc, 1))  # the "row" of an array element is its 1-based index
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((lineno, json.loads(line, parse_float=str)))
            except json.JSONDecodeError as exc:
                raise MalformedInput(source, lineno, f"char {exc.colno}", exc.msg) from None
    header: list[str] = []
    for line, rec in records:
        if not isinstance(rec, dict):
            raise MalformedInput(source, line, None, f"expected an object, found {type(rec).__name__}")
        for k in rec:
            if k not in header:
                header.append(k)
    if not records:
        raise MalformedInput(source, 1, None, "no records")
    _check_header(source, header)
    rows = [[_scalar(source, line, h, rec.get(h)) for h in header] for line, rec in records]
    return RawTable(source, header, rows, [line for line, _ in records])


def read_xlsx(path: Path | str, sheet: str | None = None) -> RawTable:
    source = str(path)
    import openpyxl
    from openpyxl.utils import get_column_letter
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many unrelated types
        raise MalformedInput(source, None, None, f"not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise MalformedInput(source, None, None, f"no sheet named {sheet!r}")
        ws = wb[sheet] if sheet else wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        first = next(it, None)
        if not first or all(c is None for c in first):
            raise MalformedInput(source, 1, None, "empty sheet (no header row)")
        width = max(i + 1 for i, c in enumerate(first) if c is not None)
        header = _check_header(source, ["" if c is None else str(c) for c in first[:width]])
        rows, lines = [], []
        for r, values in enumerate(it, 2):
            values = tuple(values[:width]) + (None,) * max(0, width - len(values))
            if all(v is None for v in values):
                continue
            extra = [i for i, v in enumerate(values[width:], width) if v is not None] if len(values) > width else []
            if extra:
                raise MalformedInput(source, r, get_column_letter(extra[0] + 1), "value outside the header's columns")
            for i, v in enumerate(values):
                if isinstance(v, str) and v in EXCEL_ERRORS:
                    raise MalformedInput(source, r, f"{header[i]} ({get_column_letter(i + 1)})",
                                         f"spreadsheet error value {v}")
                if isinstance(v, _dt.time):
                    raise MalformedInput(source, r, header[i], "time-of-day cells are not supported")
            rows.append(list(values))
            lines.append(r)
    finally:
        wb.close()
    return RawTable(source, header, rows, lines)


def read_raw(path: Path | str) -> RawTable:
    """Dispatch on the extension: .csv, .json / .jsonl, .xlsx."""
    suffix = Path(path).suffix.lower()
    if not Path(path).exists():
        raise MalformedInput(str(path), None, None, "file not found")
    if suffix in (".csv", ".tsv"):
        return read_csv(path, "\t" if suffix == ".tsv" else ",")
    if suffix in (".json", ".jsonl", ".ndjson"):
        return read_json(path)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    raise MalformedInput(str(path), None, None, f"unsupported file type {suffix!r} (csv, json, xlsx)")


def read_table(path: Path | str, schema: Schema | None = None) -> Table:
    """Read and type a file (schema declared, or inferred when ``None``)."""
    return read_raw(path).typed(schema)
