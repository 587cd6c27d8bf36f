from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

import pytest

from offchain.errors import KeyAuthenticationError
from offchain.onion.det import DetKey, decode_value, encode_value


def test_deterministic_and_domain_bound():
    k = DetKey(secrets.token_bytes(64))
    assert k.encrypt("c1", "cid") == k.encrypt("c1", "cid")
    assert k.encrypt("c1", "cid") != k.encrypt("c2", "cid")
    assert k.encrypt("c1", "cid") != k.encrypt("c1", "other")
    assert k.decrypt(k.encrypt(Decimal("1.50"), "x"), "x") == Decimal("1.5")


def test_wrong_key_or_tamper_is_auth_error():
    k, other = DetKey(secrets.token_bytes(64)), DetKey(secrets.token_bytes(64))
    ct = k.encrypt(42, "d")
    with pytest.raises(KeyAuthenticationError) as e:
        other.decrypt(ct, "d")
    assert e.value.key_id == other.key_id
    with pytest.raises(KeyAuthenticationError):
        k.decrypt(ct[:-1] + bytes([ct[-1] ^ 1]), "d")


@pytest.mark.parametrize("v", [None, True, 0, -5, Decimal("2.50"), dt.date(2024, 1, 2), "中文"])
def test_value_encoding_roundtrip(v):
    assert decode_value(encode_value(v)) == v
