"""Sealed job parameters under both cryptography profiles, without a chain: the default block keeps its
format (no new member; the key service's X25519 path unchanged), an sm block is SM2/SM4 with
``"profile": "sm"`` and opens for each of several recipients, and the profile is checked by name."""
from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chain.crypto_profile import CryptoProfileMismatch as ProfileMismatch
from chain.params import (
    PARAMS_FORMAT,
    CryptoProfileMismatch,
    ParamsError,
    open_params,
    params_key,
    params_profile,
    seal_params,
)
from did.identity import Identity
from did.sm2_identity import Sm2Participant, even_y_key

QUERY = {"dataset": "d", "aggregates": [["sum", "x"]], "where": [["range", "x", 1, 9]]}


def _raw(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_default_blocks_keep_their_format(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TDS_CRYPTO_PROFILE", raising=False)
    k = X25519PrivateKey.generate()
    block = json.loads(seal_params(QUERY, [_raw(k)]))
    assert set(block) == {"format", "recipients", "nonce", "ciphertext"} and block["format"] == PARAMS_FORMAT
    assert set(block["recipients"][0]) == {"key", "epk", "nonce", "wrapped"}
    assert params_profile(block) == "default" and open_params(block, k) == QUERY
    ident = Identity.create("p")
    assert params_key(ident) is ident.x25519


def test_sm_blocks_open_for_every_recipient_and_only_theirs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")
    keys = [even_y_key() for _ in range(3)]
    block = json.loads(seal_params(QUERY, [k.public[1:33] for k in keys[:2]]))
    assert block["profile"] == "sm" and len(bytes.fromhex(block["nonce"])) == 12
    assert [bytes.fromhex(r["key"]) for r in block["recipients"]] == [k.public[1:33] for k in keys[:2]]
    assert all(open_params(block, k) == QUERY for k in keys[:2])
    with pytest.raises(ParamsError, match="not sealed to this key"):
        open_params(block, keys[2])
    p = Sm2Participant.create("p")
    assert params_key(p) is p.agreement
    assert open_params(json.loads(seal_params(QUERY, [p.key_agreement_key])), params_key(p)) == QUERY


def test_profiles_are_refused_by_name(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")
    sm_key, x_key = even_y_key(), X25519PrivateKey.generate()
    sm_block = json.loads(seal_params(QUERY, [sm_key.public[1:33]]))
    default_block = json.loads(seal_params(QUERY, [_raw(x_key)], profile="default"))
    for block, key, expected, found in ((sm_block, x_key, "default", "sm"), (default_block, sm_key, "sm", "default")):
        with pytest.raises(CryptoProfileMismatch) as exc:
            open_params(block, key)
        assert (exc.value.expected, exc.value.found) == (expected, found)
        assert isinstance(exc.value, ProfileMismatch) and isinstance(exc.value, ParamsError)
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "default")          # a default block, its key, sm not in force
    assert open_params(default_block, x_key) == QUERY
    with pytest.raises(CryptoProfileMismatch, match="'sm' cryptography profile where 'default'"):
        open_params(sm_block, sm_key)
    with pytest.raises(ParamsError, match="unknown cryptography profile"):
        open_params({**sm_block, "profile": "gost"}, sm_key)
