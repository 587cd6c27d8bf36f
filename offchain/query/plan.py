"""Query plans. Columns of a joined (right) table are written ``right.<column>``.

A consumer's :class:`Query` names plaintext constants; the provider's key service turns it
into an :class:`EncryptedQuery` whose constants are DET ciphertexts / order codes, which is
all the worker ever sees."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from offchain.canonical import canonical_hash
from offchain.errors import QueryError

AGGREGATES = ("count", "sum", "avg", "min", "max")
RIGHT = "right."


VERSION_SEP = "@v"


def split_version(dataset: str) -> tuple[str, int | None]:
    """``"<id>@v3"`` -> (id, 3); a bare dataset id -> (id, None), meaning the latest version.
    A key service holds manifests under both forms (see :mod:`offchain.sources.versions`)."""
    base, sep, number = dataset.rpartition(VERSION_SEP)
    if sep and base and number.isdigit():
        return base, int(number)
    return dataset, None


def split_ref(ref: str) -> tuple[str, str]:
    """``"right.amount"`` -> ("right", "amount"); ``"amount"`` -> ("left", "amount")."""
    return ("right", ref[len(RIGHT):]) if ref.startswith(RIGHT) else ("left", ref)


@dataclass(frozen=True)
class Eq:
    column: str
    value: Any


@dataclass(frozen=True)
class Range:
    """Inclusive bounds; either may be ``None`` (open)."""

    column: str
    low: Any = None
    high: Any = None


@dataclass(frozen=True)
class Agg:
    func: str
    column: str | None = None

    def __post_init__(self) -> None:
        if self.func not in AGGREGATES:
            raise QueryError(f"unknown aggregate {self.func!r} (one of {AGGREGATES})")
        if self.func != "count" and not self.column:
            raise QueryError(f"{self.func} needs a column")

    @property
    def label(self) -> str:
        return f"{self.func}({self.column or '*'})"


@dataclass(frozen=True)
class Join:
    dataset: str
    left_on: str
    right_on: str


@dataclass(frozen=True)
class Query:
    dataset: str
    aggregates: tuple[Agg, ...]
    where: tuple[Eq | Range, ...] = ()
    group_by: str | None = None
    join: Join | None = None

    def __post_init__(self) -> None:
        if not self.aggregates:
            raise QueryError("a query needs at least one aggregate")
        for ref in self.refs():
            if split_ref(ref)[0] == "right" and self.join is None:
                raise QueryError(f"{ref!r} refers to a joined table but the query has no join")

    def refs(self) -> list[str]:
        out = [a.column for a in self.aggregates if a.column]
        out += [p.column for p in self.where]
        if self.group_by:
            out.append(self.group_by)
        return out

    def operations(self) -> set[str]:
        """What a grant must allow: ``"<op>:<column ref>"`` plus ``"count"``."""
        ops = {"count"} if any(a.func == "count" for a in self.aggregates) else set()
        ops |= {f"{a.func}:{a.column}" for a in self.aggregates if a.column}
        ops |= {f"{'equality' if isinstance(p, Eq) else 'range'}:{p.column}" for p in self.where}
        if self.group_by:
            ops.add(f"group_by:{self.group_by}")
        if self.join:
            ops.add(f"join:{self.join.left_on}")
            ops.add(f"join:{RIGHT}{self.join.right_on}")
        return ops

    def to_dict(self) -> dict:
        return {"dataset": self.dataset,
                "aggregates": [[a.func, a.column] for a in self.aggregates],
                "where": [["eq", p.column, p.value] if isinstance(p, Eq) else
                          ["range", p.column, p.low, p.high] for p in self.where],
                "group_by": self.group_by,
                "join": None if not self.join else [self.join.dataset, self.join.left_on, self.join.right_on]}

    @classmethod
    def from_dict(cls, d: dict) -> "Query":
        where: list[Eq | Range] = []
        for w in d.get("where", []):
            if w[0] == "eq":
                where.append(Eq(w[1], w[2]))
            elif w[0] == "range":
                where.append(Range(w[1], w[2] if len(w) > 2 else None, w[3] if len(w) > 3 else None))
            else:
                raise QueryError(f"unknown predicate {w[0]!r}")
        j = d.get("join")
        return cls(d["dataset"], tuple(Agg(a[0], a[1] if len(a) > 1 else None) for a in d["aggregates"]),
                   tuple(where), d.get("group_by"), Join(*j) if j else None)

    @property
    def hash(self) -> str:
        return canonical_hash(self.to_dict())


def _hex(b: bytes | None) -> str | None:
    return None if b is None else bytes(b).hex()


def _unhex(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


@dataclass(frozen=True)
class EqToken:
    side: str
    column: str
    ciphertext: bytes

    def to_dict(self) -> dict:
        return {"kind": "eq", "side": self.side, "column": self.column, "ciphertext": _hex(self.ciphertext)}


@dataclass(frozen=True)
class RangeToken:
    side: str
    column: str
    low: bytes | None
    high: bytes | None
    empty: bool = False   # the plaintext range is empty or outside the domain

    def to_dict(self) -> dict:
        return {"kind": "range", "side": self.side, "column": self.column, "low": _hex(self.low),
                "high": _hex(self.high), "empty": self.empty}


def token_from_dict(d: dict) -> EqToken | RangeToken:
    try:
        if d["kind"] == "eq":
            return EqToken(d["side"], d["column"], bytes.fromhex(d["ciphertext"]))
        if d["kind"] == "range":
            return RangeToken(d["side"], d["column"], _unhex(d.get("low")), _unhex(d.get("high")),
                              bool(d.get("empty", False)))
    except (KeyError, TypeError, ValueError) as exc:
        raise QueryError(f"malformed query token {d!r}: {exc}") from None
    raise QueryError(f"unknown query token kind {d.get('kind')!r}")


@dataclass(frozen=True)
class EncryptedQuery:
    """What the worker runs: no plaintext constants, only tokens. JSON round-trips through
    :meth:`to_dict` / :meth:`from_dict` (hex for bytes), so it can travel over HTTP."""

    query_hash: str
    datasets: dict[str, str]                       # side -> dataset id
    aggregates: tuple[Agg, ...]
    where: tuple[EqToken | RangeToken, ...] = ()
    group_by: str | None = None
    join: Join | None = None
    hints: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"format": "tds-encrypted-query/1", "query_hash": self.query_hash,
                "datasets": dict(sorted(self.datasets.items())),
                "aggregates": [[a.func, a.column] for a in self.aggregates],
                "where": [t.to_dict() for t in self.where], "group_by": self.group_by,
                "join": None if not self.join else [self.join.dataset, self.join.left_on, self.join.right_on],
                "hints": self.hints}

    @classmethod
    def from_dict(cls, d: dict) -> "EncryptedQuery":
        try:
            j = d.get("join")
            return cls(str(d["query_hash"]), {str(k): str(v) for k, v in d["datasets"].items()},
                       tuple(Agg(a[0], a[1] if len(a) > 1 else None) for a in d["aggregates"]),
                       tuple(token_from_dict(t) for t in d.get("where", [])), d.get("group_by"),
                       Join(*j) if j else None, dict(d.get("hints") or {}))
        except (KeyError, TypeError, IndexError) as exc:
            raise QueryError(f"malformed encrypted query: {exc!r}") from None
