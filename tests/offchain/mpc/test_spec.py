"""JointSpec validation: each refusal names what is wrong."""
from __future__ import annotations

import pytest

from offchain.mpc.errors import MpcSpecError
from offchain.mpc.spec import JointSpec


def test_spec_round_trips_through_json() -> None:
    spec = JointSpec(["count", "crosstab", "pearson"], columns=["x"], pearson=("x", "y"), group_by="g",
                     categories=["a", "b"], min_group=5)
    assert JointSpec.from_json(spec.to_json()) == spec
    assert spec.needed_columns() == ["x", "y"]


@pytest.mark.parametrize("kwargs, match", [
    ({"operations": ["median"]}, "need value columns"),
    ({"operations": ["mode"], "columns": ["x"]}, "unknown"),
    ({"operations": ["sum"], "columns": ["x"], "layout": "diagonal"}, "layout"),
    ({"operations": ["pearson"]}, "pair"),
    ({"operations": ["crosstab"], "group_by": "g"}, "categories"),
    ({"operations": ["percentiles"], "columns": ["x"], "percentiles": [101]}, "percentiles"),
    ({"operations": ["count"], "min_group": 0}, "minimum group"),
])
def test_inconsistent_specs_are_refused(kwargs, match) -> None:
    with pytest.raises(MpcSpecError, match=match):
        JointSpec(**kwargs)
