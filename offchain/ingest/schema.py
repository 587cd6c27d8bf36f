"""Schemas: typed fields with constraints, parsing of raw cells, and schema inference.

Types: ``integer``, ``decimal`` (fixed point with ``decimals`` digits), ``date`` (ISO),
``string``, ``identifier``. Constraint rules, each named in a :class:`SchemaViolation`:
``type``, ``required``, ``minimum``, ``maximum``, ``pattern``, ``allowed``, ``decimals``,
``unique``; consistency rules compare two columns (``ship_date >= order_date``)."""
from __future__ import annotations

import datetime as _dt
import json
import operator
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Sequence

from offchain.errors import SchemaError, SchemaViolation

TYPES = ("integer", "decimal", "date", "string", "identifier")
LEVELS = ("public", "internal", "sensitive", "confidential")
ROLES = ("identifier", "measure", "dimension", "timestamp", "attribute")
_INT = re.compile(r"^[+-]?\d+$")
_DEC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Field:
    """One column: type, constraints, role and (optional) declared classification."""

    name: str
    type: str
    nullable: bool = True
    unique: bool = False
    minimum: Any = None
    maximum: Any = None
    pattern: str | None = None
    allowed: tuple | None = None
    decimals: int = 2
    role: str | None = None
    classification: str | None = None
    max_age_days: int | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise SchemaError(f"field {self.name!r}: unknown type {self.type!r} (one of {TYPES})")
        if self.role is not None and self.role not in ROLES:
            raise SchemaError(f"field {self.name!r}: unknown role {self.role!r} (one of {ROLES})")
        if self.classification is not None and self.classification not in LEVELS:
            raise SchemaError(f"field {self.name!r}: unknown classification {self.classification!r}")
        for bound in ("minimum", "maximum"):
            value = getattr(self, bound)
            if value is not None and not isinstance(value, (int, Decimal, _dt.date)):
                object.__setattr__(self, bound, self.parse(value, None, rule=bound))

    @property
    def effective_role(self) -> str:
        if self.role:
            return self.role
        return {"identifier": "identifier", "date": "timestamp", "string": "dimension"}.get(
            self.type, "measure")

    @property
    def numeric(self) -> bool:
        return self.type in ("integer", "decimal", "date")

    def parse(self, raw: Any, row: int | None, rule: str = "type") -> Any:
        """Convert a raw cell (text, number, date) to this field's Python value; ``None`` for
        an empty cell. Unparseable input raises ``SchemaViolation('type', ...)``."""
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            return None
        t = self.type
        try:
            if t == "integer":
                if isinstance(raw, bool):
                    raise ValueError
                if isinstance(raw, int):
                    return raw
                if isinstance(raw, float) and raw.is_integer():
                    return int(raw)
                if isinstance(raw, str) and _INT.match(raw.strip()):
                    return int(raw.strip())
                raise ValueError
            if t == "decimal":
                if isinstance(raw, bool):
                    raise ValueError
                text = repr(raw) if isinstance(raw, float) else str(raw).strip()
                if not isinstance(raw, (int, float)) and not _DEC.match(text):
                    raise ValueError
                value = Decimal(text)
                if -value.as_tuple().exponent > self.decimals and value != round(value, self.decimals):
                    raise SchemaViolation("decimals", self.name, row, raw,
                                          f"more than {self.decimals} decimal places")
                return value.quantize(Decimal(1).scaleb(-self.decimals))
            if t == "date":
                if isinstance(raw, _dt.datetime):
                    return raw.date()
                if isinstance(raw, _dt.date):
                    return raw
                text = str(raw).strip()[:10]
                if not _DATE.match(text):
                    raise ValueError
                return _dt.date.fromisoformat(text)
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            return str(raw).strip() if t == "identifier" else str(raw)
        except (ValueError, InvalidOperation):
            raise SchemaViolation(rule, self.name, row, raw, f"not a valid {t}") from None

    def check(self, value: Any, row: int | None) -> str | None:
        """The first constraint rule ``value`` breaks, or ``None``."""
        if value is None:
            return None if self.nullable else "required"
        if self.minimum is not None and value < self.minimum:
            return "minimum"
        if self.maximum is not None and value > self.maximum:
            return "maximum"
        if self.pattern is not None and not re.fullmatch(self.pattern, str(value)):
            return "pattern"
        if self.allowed is not None and value not in self.allowed and str(value) not in self.allowed:
            return "allowed"
        return None

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        if self.allowed is not None:
            d["allowed"] = list(self.allowed)
        for bound in ("minimum", "maximum"):
            if bound in d and not isinstance(d[bound], int):
                d[bound] = str(d[bound])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Field":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "name" not in known or "type" not in known:
            raise SchemaError(f"field declaration needs 'name' and 'type': {d!r}")
        if known.get("allowed") is not None:
            known["allowed"] = tuple(known["allowed"])
        return cls(**known)


@dataclass(frozen=True)
class ConsistencyRule:
    """``left op right`` must hold on every row where both sides are present."""

    left: str
    op: str
    right: str

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise SchemaError(f"consistency rule: unknown operator {self.op!r}")

    @property
    def name(self) -> str:
        return f"{self.left} {self.op} {self.right}"

    def holds(self, a: Any, b: Any) -> bool:
        return a is None or b is None or OPS[self.op](a, b)


@dataclass(frozen=True)
class Schema:
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ()
    consistency: tuple[ConsistencyRule, ...] = ()
    name: str = "dataset"

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise SchemaError(f"duplicate field names in schema: {names}")
        for col in list(self.key) + [c for r in self.consistency for c in (r.left, r.right)]:
            if col not in names:
                raise SchemaError(f"schema refers to unknown column {col!r}")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(f"no column {name!r} in schema {self.name!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, "fields": [f.to_dict() for f in self.fields], "key": list(self.key),
                "consistency": [[r.left, r.op, r.right] for r in self.consistency]}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        try:
            return cls(tuple(Field.from_dict(f) for f in d["fields"]), tuple(d.get("key", ())),
                       tuple(ConsistencyRule(*r) for r in d.get("consistency", ())),
                       d.get("name", "dataset"))
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"malformed schema declaration: {exc}") from exc

    @classmethod
    def load(cls, path: Path | str) -> "Schema":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def infer_field(name: str, values: Sequence[Any]) -> Field:
    """Guess a field from its raw cells (to be confirmed by the provider)."""
    present = [v for v in values if v is not None and not (isinstance(v, str) and not v.strip())]
    texts = [str(v).strip() for v in present]
    nullable = len(present) < len(values)
    lname = name.lower()
    ident = lname == "id" or lname.endswith(("_id", "id", "code", "编号", "号码"))
    if present and all(isinstance(v, (_dt.date, _dt.datetime)) or _DATE.match(t[:10]) and len(t) in (10, 19)
                       for v, t in zip(present, texts)):
        return Field(name, "date", nullable=nullable)
    if present and all((isinstance(v, int) and not isinstance(v, bool)) or _INT.match(t)
                       for v, t in zip(present, texts)):
        if ident:
            return Field(name, "identifier", nullable=nullable, unique=len(set(texts)) == len(texts))
        return Field(name, "integer", nullable=nullable)
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) or _DEC.match(t)
                       for v, t in zip(present, texts)):
        places = max(max(0, -Decimal(repr(v) if isinstance(v, float) else t).as_tuple().exponent)
                     for v, t in zip(present, texts))
        return Field(name, "decimal", nullable=nullable, decimals=min(max(places, 0), 8))
    if ident:
        return Field(name, "identifier", nullable=nullable, unique=len(set(texts)) == len(texts))
    return Field(name, "string", nullable=nullable)


def infer_schema(header: Sequence[str], rows: Sequence[Sequence[Any]], name: str = "dataset") -> Schema:
    columns = list(zip(*rows)) if rows else [() for _ in header]
    return Schema(tuple(infer_field(h, col) for h, col in zip(header, columns)), name=name)
