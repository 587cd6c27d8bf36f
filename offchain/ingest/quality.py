"""The quality report (000 §5.1.4, §10.3.4): completeness, accuracy, consistency, timeliness
and uniqueness, each a score in [0, 1] with the failing counts, plus the cleaning log and
classification; serialised as canonical JSON whose SHA-256 goes on chain."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Sequence

from offchain.canonical import canonical_hash, canonical_json
from offchain.ingest.classification import Classification, classify
from offchain.ingest.cleaning import CleaningEntry
from offchain.ingest.table import Table

REPORT_FORMAT = "tds-quality-report/1"


def _score(ok: int, total: int) -> str:
    value = Decimal(1) if total == 0 else Decimal(ok) / Decimal(total)
    return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


@dataclass
class Dimension:
    name: str
    checked: int
    failed: int
    failures: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def score(self) -> str:
        return _score(self.checked - self.failed, self.checked)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"score": self.score, "checked": self.checked, "failed": self.failed,
                             "failures": dict(sorted(self.failures.items()))}
        if self.note:
            d["note"] = self.note
        return d


@dataclass
class QualityReport:
    dataset: str
    source: str
    rows: int
    columns: list[str]
    dimensions: dict[str, Dimension]
    cleaning: list[CleaningEntry]
    classification: Classification
    as_of: _dt.date

    @property
    def overall(self) -> str:
        scores = [Decimal(d.score) for d in self.dimensions.values()]
        return str((sum(scores) / len(scores)).quantize(Decimal("0.0001")))

    def passed(self, threshold: str = "0.9") -> bool:
        return Decimal(self.overall) >= Decimal(threshold)

    def to_dict(self) -> dict:
        return {"format": REPORT_FORMAT, "dataset": self.dataset, "source": Path(self.source).name,
                "rows": self.rows, "columns": self.columns, "as_of": self.as_of.isoformat(),
                "overall": self.overall,
                "dimensions": {k: v.to_dict() for k, v in sorted(self.dimensions.items())},
                "cleaning": [e.to_dict() for e in self.cleaning],
                "classification": self.classification.to_dict()}

    def canonical(self) -> bytes:
        return canonical_json(self.to_dict())

    @property
    def hash(self) -> str:
        """``0x`` + SHA-256 of the canonical JSON (the on-chain quality-report hash)."""
        return canonical_hash(self.to_dict())


def assess(table: Table, cleaning: Sequence[CleaningEntry] = (),
           as_of: _dt.date | None = None) -> QualityReport:
    """Score ``table`` against its schema's declared constraints."""
    schema, n = table.schema, table.num_rows
    as_of = as_of or _dt.date.today()
    comp = Dimension("completeness", 0, 0)
    acc = Dimension("accuracy", 0, 0)
    for f in schema.fields:
        col = table.columns[f.name]
        nulls = sum(v is None for v in col)
        comp.checked += n
        comp.failed += nulls
        if nulls:
            comp.failures[f.name] = nulls
        bad = sum(1 for v in col if v is not None and f.check(v, None) is not None)
        acc.checked += n - nulls
        acc.failed += bad
        if bad:
            acc.failures[f.name] = bad
    cons = Dimension("consistency", n * len(schema.consistency), 0)
    for rule in schema.consistency:
        bad = sum(not rule.holds(a, b) for a, b in zip(table.columns[rule.left], table.columns[rule.right]))
        cons.failed += bad
        if bad:
            cons.failures[rule.name] = bad
    if not schema.consistency:
        cons.note = "no consistency rules declared"
    time_fields = [f for f in schema.fields if f.type == "date" and f.max_age_days is not None]
    tim = Dimension("timeliness", 0, 0)
    for f in time_fields:
        limit = as_of - _dt.timedelta(days=f.max_age_days or 0)
        values = [v for v in table.columns[f.name] if v is not None]
        stale = sum(v < limit for v in values)
        tim.checked += len(values)
        tim.failed += stale
        if stale:
            tim.failures[f.name] = stale
    if not time_fields:
        tim.note = "no field declares max_age_days"
    uniq = Dimension("uniqueness", 0, 0)
    keys = [tuple(schema.key)] if schema.key else []
    keys += [(f.name,) for f in schema.fields if f.unique]
    if not keys:
        keys = [tuple(schema.names)]
        uniq.note = "no key declared: whole-row duplicates"
    for key in keys:
        values = list(zip(*(table.columns[c] for c in key)))
        dup = len(values) - len(set(values))
        uniq.checked += len(values)
        uniq.failed += dup
        if dup:
            uniq.failures[",".join(key)] = dup
    dims = {d.name: d for d in (comp, acc, cons, tim, uniq)}
    return QualityReport(schema.name, table.source, n, schema.names, dims, list(cleaning),
                         classify(schema), as_of)
