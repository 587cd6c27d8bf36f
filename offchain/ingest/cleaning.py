"""Cleaning rules (000 §10.3.1): fill missing values, drop outliers by rule, de-duplicate.
Each rule returns a new table plus a log entry (rule, column, affected source rows) that the
quality report carries, so every change to the data is accounted for."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from offchain.errors import SchemaError
from offchain.ingest.table import Table


@dataclass(frozen=True)
class CleaningEntry:
    rule: str
    column: str | None
    rows: tuple[int, ...]
    detail: str = ""

    def to_dict(self) -> dict:
        return {"rule": self.rule, "column": self.column, "count": len(self.rows),
                "rows": list(self.rows), "detail": self.detail}


@dataclass(frozen=True)
class FillMissing:
    """Fill empty cells of ``column`` with a constant or the column's mean/median/mode."""

    column: str
    strategy: str = "constant"   # constant | mean | median | mode
    value: Any = None

    def apply(self, table: Table) -> tuple[Table, CleaningEntry]:
        col = table.columns.get(self.column)
        if col is None:
            raise SchemaError(f"fill_missing: no column {self.column!r}")
        present = [v for v in col if v is not None]
        f = table.schema.field(self.column)
        if self.strategy == "constant":
            fill = f.parse(self.value, None) if isinstance(self.value, str) else self.value
        elif not present:
            fill = None
        elif self.strategy == "mode":
            fill = statistics.mode(present)
        elif self.strategy in ("mean", "median") and f.type in ("integer", "decimal"):
            raw = statistics.mean(present) if self.strategy == "mean" else statistics.median(present)
            fill = (round(raw) if f.type == "integer"
                    else Decimal(raw).quantize(Decimal(1).scaleb(-f.decimals)))
        else:
            raise SchemaError(f"fill_missing: strategy {self.strategy!r} does not apply to {f.type}")
        idx = [i for i, v in enumerate(col) if v is None]
        new = dict(table.columns)
        new[self.column] = [fill if v is None else v for v in col]
        return (Table(table.schema, new, table.source, table.lines),
                CleaningEntry("fill_missing", self.column, tuple(table.lines[i] for i in idx),
                              f"{self.strategy}={fill}"))


@dataclass(frozen=True)
class DropOutliers:
    """Drop rows whose ``column`` is outside [low, high] (method ``range``), beyond
    ``k``·IQR from the quartiles (``iqr``) or ``k`` standard deviations from the mean (``zscore``)."""

    column: str
    method: str = "iqr"
    k: float = 1.5
    low: Any = None
    high: Any = None

    def bounds(self, values: Sequence[Any]) -> tuple[Any, Any]:
        if self.method == "range":
            return self.low, self.high
        nums = sorted(float(v) for v in values)
        if len(nums) < 4:
            return None, None
        if self.method == "iqr":
            q1, _, q3 = statistics.quantiles(nums, n=4)
            return q1 - self.k * (q3 - q1), q3 + self.k * (q3 - q1)
        if self.method == "zscore":
            mu, sd = statistics.mean(nums), statistics.pstdev(nums)
            return mu - self.k * sd, mu + self.k * sd
        raise SchemaError(f"drop_outliers: unknown method {self.method!r}")

    def apply(self, table: Table) -> tuple[Table, CleaningEntry]:
        col = table.columns[self.column]
        lo, hi = self.bounds([v for v in col if v is not None])

        def out(v: Any) -> bool:
            if v is None:
                return False
            x = v if self.method == "range" else float(v)
            return (lo is not None and x < lo) or (hi is not None and x > hi)

        keep = [i for i, v in enumerate(col) if not out(v)]
        dropped = tuple(table.lines[i] for i, v in enumerate(col) if out(v))
        return table.take(keep), CleaningEntry("drop_outliers", self.column, dropped,
                                               f"{self.method} bounds [{lo}, {hi}]")


@dataclass(frozen=True)
class Deduplicate:
    """Keep the first row of each group with equal ``columns`` (all columns when empty)."""

    columns: tuple[str, ...] = ()

    def apply(self, table: Table) -> tuple[Table, CleaningEntry]:
        names = list(self.columns) or list(table.columns)
        seen: set = set()
        keep, dropped = [], []
        for i, key in enumerate(zip(*(table.columns[n] for n in names))):
            if key in seen:
                dropped.append(table.lines[i])
            else:
                seen.add(key)
                keep.append(i)
        return table.take(keep), CleaningEntry("deduplicate", ",".join(names), tuple(dropped))


Rule = FillMissing | DropOutliers | Deduplicate


def clean(table: Table, rules: Sequence[Rule]) -> tuple[Table, list[CleaningEntry]]:
    """Apply rules in order; returns the cleaned table and the log."""
    log = []
    for rule in rules:
        table, entry = rule.apply(table)
        log.append(entry)
    return table, log


def rule_from_dict(d: dict) -> Rule:
    """``{"rule": "fill_missing", "column": ..., "strategy": ...}`` etc."""
    kind = d.get("rule")
    args = {k: v for k, v in d.items() if k != "rule"}
    if kind == "fill_missing":
        return FillMissing(**args)
    if kind == "drop_outliers":
        return DropOutliers(**args)
    if kind == "deduplicate":
        return Deduplicate(tuple(args.get("columns", ())))
    raise SchemaError(f"unknown cleaning rule {kind!r}")
