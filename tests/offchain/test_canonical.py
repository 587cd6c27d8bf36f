import datetime as dt
from decimal import Decimal

import pytest

from offchain.canonical import canonical_hash, canonical_json


def test_canonical_form():
    assert canonical_json({"b": 1, "a": [Decimal("1.50"), dt.date(2024, 1, 2)], "c": "中"}) == \
        '{"a":["1.50","2024-01-02"],"b":1,"c":"中"}'.encode()
    assert canonical_hash({"x": 1, "y": 2}) == canonical_hash({"y": 2, "x": 1})
    with pytest.raises(TypeError):
        canonical_json({"f": 1.5})
