"""Which onions each field gets, which operations a grant may peel, and what each exposes.

Onions (CryptDB): ``eq`` = RND(DET(v)) for equality / GROUP BY / JOIN; ``ord`` = RND(OPE(v))
for ranges, ORDER, MIN/MAX; ``hom`` = Paillier(v) for SUM / AVG / COUNT; ``blob`` = RND(v), an
opaque copy only the provider opens (never peeled for computation). The default policy gives
``confidential`` numeric fields the HOM onion only (Naveed–Kamara–Wright, CCS 2015: DET and
OPE columns fall to frequency and sorting attacks when the distribution is known)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from offchain.errors import PolicyError
from offchain.ingest.classification import Classification, level_rank
from offchain.ingest.schema import Schema

EQ, ORD, HOM, BLOB = "eq", "ord", "hom", "blob"
ONIONS = (EQ, ORD, HOM, BLOB)
OPERATION_ONION: dict[str, str | None] = {
    "equality": EQ, "group_by": EQ, "join": EQ,
    "range": ORD, "order": ORD, "min": ORD, "max": ORD,
    "sum": HOM, "avg": HOM, "count": None,
}
LEAKAGE = {
    EQ: ("medium", "equality pattern: which rows share a value, hence the value frequency "
                   "histogram (frequency analysis recovers values whose distribution is known)"),
    ORD: ("high", "equality and the total order of all values, and approximately their "
                  "magnitude (upper half of the bits); sorting attacks recover dense columns"),
    HOM: ("low", "nothing per row (IND-CPA); only the opened aggregate, over at least the "
                 "dataset's minimum group size"),
    BLOB: ("none", "nothing: never peeled for computation"),
}


@dataclass(frozen=True)
class FieldPolicy:
    column: str
    onions: tuple[str, ...]
    join_domain: str | None = None

    @property
    def domain(self) -> str:
        """DET context: columns with the same domain (and key) can be joined."""
        return self.join_domain or self.column

    def to_dict(self) -> dict:
        d: dict = {"column": self.column, "onions": list(self.onions)}
        if self.join_domain:
            d["join_domain"] = self.join_domain
        return d


PAILLIER, BFV = "paillier", "bfv"
HOM_SCHEMES = ("auto", PAILLIER, BFV)
BFV_MIN_ROWS = 16384   # two full BFV blocks; below it Paillier (per-row, joins, order index) wins


@dataclass(frozen=True)
class DatasetPolicy:
    """``hom_scheme``: ``"auto"`` (BFV from ``BFV_MIN_ROWS`` rows up for each HOM column whose
    declared range cannot wrap, Paillier otherwise), ``"paillier"`` or ``"bfv"`` (refuses a
    column that could wrap). The manifest records the scheme of every HOM column."""

    fields: dict[str, FieldPolicy]
    min_group_size: int = 5
    hom_scheme: str = "auto"

    def __post_init__(self) -> None:
        if self.hom_scheme not in HOM_SCHEMES:
            raise PolicyError("*", "encrypt", f"unknown HOM scheme {self.hom_scheme!r} (one of {HOM_SCHEMES})")

    def hom_scheme_for(self, rows: int, fits_bfv: bool) -> str:
        """Which HOM layer a column of a ``rows``-row table gets (``fits_bfv``: no wrap possible)."""
        if self.hom_scheme == "auto":
            return BFV if rows >= BFV_MIN_ROWS and fits_bfv else PAILLIER
        return self.hom_scheme

    def onions(self, column: str) -> tuple[str, ...]:
        if column not in self.fields:
            raise PolicyError(column, "any", "column is not in the dataset")
        return self.fields[column].onions

    def require(self, column: str, operation: str) -> str | None:
        """The onion ``operation`` on ``column`` needs, or raise :class:`PolicyError`."""
        onion = OPERATION_ONION.get(operation)
        if operation not in OPERATION_ONION:
            raise PolicyError(column, operation, "unknown operation")
        if onion is not None and onion not in self.onions(column):
            raise PolicyError(column, operation, f"the policy gives it no {onion!r} onion "
                              f"(it has {list(self.onions(column))})")
        return onion

    def to_dict(self) -> dict:
        out: dict = {"min_group_size": self.min_group_size,
                     "fields": [self.fields[c].to_dict() for c in sorted(self.fields)]}
        if self.hom_scheme != "auto":
            out["hom_scheme"] = self.hom_scheme
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetPolicy":
        fields = {f["column"]: FieldPolicy(f["column"], tuple(f["onions"]), f.get("join_domain"))
                  for f in d["fields"]}
        return cls(fields, int(d.get("min_group_size", 5)), str(d.get("hom_scheme", "auto")))


def default_field_onions(type_: str, role: str, level: str) -> tuple[str, ...]:
    """Role and classification decide: confidential numbers get HOM only; confidential text
    is opaque; identifiers get DET; measures get order + HOM; dates equality + order."""
    numeric = type_ in ("integer", "decimal")
    if level == "confidential":
        return (HOM,) if numeric else (BLOB,)
    if role == "identifier" or type_ in ("identifier", "string"):
        return (EQ,)
    if type_ == "date":
        return (EQ, ORD)
    if numeric and role == "dimension":
        return (EQ, ORD)
    return (ORD, HOM) if level == "sensitive" else (EQ, ORD, HOM)


def default_policy(schema: Schema, classification: Classification, min_group_size: int = 5,
                   overrides: dict[str, Iterable[str]] | None = None,
                   join_domains: dict[str, str] | None = None, hom_scheme: str = "auto") -> DatasetPolicy:
    fields = {}
    for f in schema.fields:
        onions = tuple(overrides[f.name]) if overrides and f.name in overrides else \
            default_field_onions(f.type, f.effective_role, classification.fields[f.name])
        bad = [o for o in onions if o not in ONIONS]
        if bad:
            raise PolicyError(f.name, "encrypt", f"unknown onion(s) {bad}")
        if f.type not in ("integer", "decimal", "date") and (ORD in onions or HOM in onions):
            raise PolicyError(f.name, "encrypt", f"{f.type} values have no order/HOM onion")
        if f.type == "date" and HOM in onions:
            raise PolicyError(f.name, "encrypt", "dates have no HOM onion")
        fields[f.name] = FieldPolicy(f.name, onions, (join_domains or {}).get(f.name))
    return DatasetPolicy(fields, min_group_size, hom_scheme)


@dataclass(frozen=True)
class ReleaseRules:
    """Grant-time rules over the onions that exist: which consumer and price may peel what.
    Order layers of sensitive fields and equality on sensitive fields are only released to
    trusted consumers or at ``min_price_leaky`` or above."""

    trusted_consumers: frozenset[str] = field(default_factory=frozenset)
    min_price_leaky: int = 0


@dataclass(frozen=True)
class Exposure:
    column: str
    operation: str
    onion: str | None
    level: str
    severity: str
    leaks: str
    allowed: bool
    reason: str = ""

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def exposure(policy: DatasetPolicy, classification: Classification,
             requested: Iterable[tuple[str, str]], consumer: str = "", price: int = 0,
             rules: ReleaseRules = ReleaseRules()) -> list[Exposure]:
    """What granting each (operation, column) would expose — shown to the provider before
    signing; ``allowed`` is false where the policy or the release rules refuse it."""
    out = []
    for operation, column in requested:
        level = classification.fields.get(column, "internal")
        try:
            onion = policy.require(column, operation)
        except PolicyError as exc:
            out.append(Exposure(column, operation, OPERATION_ONION.get(operation), level, "n/a",
                                "", False, str(exc)))
            continue
        severity, leaks = LEAKAGE[onion] if onion else ("low", "the row count of the selection")
        allowed, reason = True, ""
        leaky = onion in (EQ, ORD) and level_rank(level) >= level_rank("sensitive")
        if leaky and consumer not in rules.trusted_consumers and price < rules.min_price_leaky:
            allowed, reason = False, (f"{onion} on a {level} field needs a trusted consumer or a "
                                      f"price >= {rules.min_price_leaky}")
        out.append(Exposure(column, operation, onion, level, severity, leaks, allowed, reason))
    return out
