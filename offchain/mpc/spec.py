"""What a joint computation asks for: operations, columns, layout, grouping and the k-rule."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from offchain.mpc.errors import MpcSpecError

OPERATIONS = ("count", "sum", "mean", "variance", "stddev", "min", "max", "median", "percentiles",
              "pearson", "crosstab")
LAYOUTS = ("horizontal", "vertical")


@dataclass(frozen=True)
class JointSpec:
    """A joint statistics request.

    ``layout="horizontal"``: every provider holds the same columns for its own rows (the union
    is computed on). ``layout="vertical"``: each provider holds other columns of the same rows,
    already aligned (by PSI) in the same order. ``group_by`` names a categorical column whose
    public ``categories`` are declared up front; ``min_group`` is the k of the release rule."""

    operations: tuple[str, ...]
    columns: tuple[str, ...] = ()
    layout: str = "horizontal"
    group_by: str | None = None
    categories: tuple[str, ...] = ()
    percentiles: tuple[float, ...] = ()
    pearson: tuple[str, str] | None = None
    min_group: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "operations", tuple(self.operations))
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))
        object.__setattr__(self, "percentiles", tuple(float(q) for q in self.percentiles))
        if self.pearson is not None:
            object.__setattr__(self, "pearson", tuple(self.pearson))
        self.validate()

    def validate(self) -> None:
        unknown = [op for op in self.operations if op not in OPERATIONS]
        if unknown or not self.operations:
            raise MpcSpecError(f"unknown or no operations {unknown}: choose from {', '.join(OPERATIONS)}")
        if self.layout not in LAYOUTS:
            raise MpcSpecError(f"layout {self.layout!r}: choose 'horizontal' or 'vertical'")
        if self.min_group < 1:
            raise MpcSpecError(f"min_group {self.min_group}: the minimum group size is at least 1")
        per_column = set(self.operations) - {"count", "pearson", "crosstab"}
        if per_column and not self.columns:
            raise MpcSpecError(f"operations {sorted(per_column)} need value columns")
        if "percentiles" in self.operations and not all(0 <= q <= 100 for q in self.percentiles or [-1]):
            raise MpcSpecError(f"percentiles {list(self.percentiles)} must be given, each in [0, 100]")
        if "pearson" in self.operations and (self.pearson is None or len(self.pearson) != 2):
            raise MpcSpecError("pearson needs a pair of columns")
        if ("crosstab" in self.operations or self.group_by) and not (self.group_by and self.categories):
            raise MpcSpecError("crosstab needs group_by and its public categories")
        if self.group_by and self.group_by in self.columns:
            raise MpcSpecError(f"group_by column {self.group_by!r} cannot also be a value column")

    def needed_columns(self) -> list[str]:
        """Value columns the nodes must load (the group-by key is loaded as one-hot)."""
        names = list(self.columns) + (list(self.pearson) if "pearson" in self.operations else [])
        return list(dict.fromkeys(names))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> JointSpec:
        return cls(**obj)

    def canonical(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()
