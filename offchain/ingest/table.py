"""A typed, columnar in-memory table (the provider's plaintext; never leaves the provider)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from offchain.errors import SchemaViolation
from offchain.ingest.schema import Schema


@dataclass
class Table:
    """Columns by name, all the same length. ``lines`` keeps each row's source line/row
    number so later errors can point back into the file."""

    schema: Schema
    columns: dict[str, list[Any]]
    source: str = "<memory>"
    lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        lengths = {len(v) for v in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"ragged table: column lengths {sorted(lengths)}")
        if not self.lines:
            self.lines = list(range(1, self.num_rows + 1))

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def rows(self) -> Iterator[dict[str, Any]]:
        names = list(self.columns)
        for values in zip(*(self.columns[n] for n in names)):
            yield dict(zip(names, values))

    def take(self, indices: list[int]) -> "Table":
        """A new table with only these rows, in this order."""
        return Table(self.schema, {n: [col[i] for i in indices] for n, col in self.columns.items()},
                     self.source, [self.lines[i] for i in indices])

    @classmethod
    def from_rows(cls, schema: Schema, rows: list[list[Any]], source: str = "<memory>",
                  lines: list[int] | None = None) -> "Table":
        """Type raw rows by ``schema`` (cells are parsed; a bad cell raises a
        :class:`SchemaViolation` naming the rule, column, source and row)."""
        names = schema.names
        columns: dict[str, list[Any]] = {n: [] for n in names}
        lines = lines or list(range(1, len(rows) + 1))
        fields = schema.fields
        for raw_row, line in zip(rows, lines):
            for f, raw in zip(fields, raw_row):
                try:
                    columns[f.name].append(f.parse(raw, line))
                except SchemaViolation as exc:
                    exc.args = (f"{source}: {exc.args[0]}",)
                    exc.file = source  # type: ignore[attr-defined]
                    raise
        return cls(schema, columns, source, list(lines))

    def validate(self) -> None:
        """Strict check: raise on the first row breaking a declared rule."""
        for f in self.schema.fields:
            seen: set = set()
            for value, line in zip(self.columns[f.name], self.lines):
                rule = f.check(value, line)
                if rule:
                    raise SchemaViolation(rule, f.name, line, value)
                if f.unique and value is not None:
                    if value in seen:
                        raise SchemaViolation("unique", f.name, line, value)
                    seen.add(value)
        for rule in self.schema.consistency:
            for a, b, line in zip(self.columns[rule.left], self.columns[rule.right], self.lines):
                if not rule.holds(a, b):
                    raise SchemaViolation(rule.name, rule.left, line, (a, b))
