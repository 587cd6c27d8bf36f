from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings, strategies as st

from offchain.errors import KeyAuthenticationError, SlotRangeError
from offchain.onion.ope import OrderKey, in_range

KEY = OrderKey(secrets.token_bytes(32), 32, 64)


@given(st.lists(st.integers(KEY.low, KEY.high), min_size=2, max_size=50))
@settings(max_examples=60, deadline=None)
def test_order_preserved_and_invertible(values):
    codes = KEY.encrypt_many(values)
    assert codes == [KEY.encrypt(v) for v in values]
    for (a, ca), (b, cb) in zip(zip(values, codes), zip(values[1:], codes[1:])):
        assert (a < b) == (ca < cb) and (a == b) == (ca == cb)
    assert [KEY.decrypt(c) for c in codes] == values


def test_extremes_and_range_filter():
    vals = [KEY.low, -1, 0, 1, KEY.high]
    codes = KEY.encrypt_many(vals)
    assert codes == sorted(codes) and len(codes[0]) == 8
    assert in_range(codes, KEY.encrypt(-1), KEY.encrypt(1)) == [1, 2, 3]
    assert in_range(codes, None, KEY.encrypt(0)) == [0, 1, 2]


def test_wrong_key_fails_authentication():
    other = OrderKey(secrets.token_bytes(32), 32, 64)
    bad = 0
    for v in range(20):
        try:
            other.decrypt(KEY.encrypt(v * 1000))
        except KeyAuthenticationError:
            bad += 1
    assert bad >= 19   # a foreign code lands on a valid point with negligible probability


def test_domain_enforced():
    with pytest.raises(SlotRangeError):
        KEY.encrypt(KEY.high + 1)
    with pytest.raises(SlotRangeError):
        KEY.encrypt_many([0, KEY.low - 1])
    with pytest.raises(ValueError):
        OrderKey(b"short")
