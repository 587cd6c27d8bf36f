"""Key material of every layer, its id, and an in-memory keyring.

Ids are derived from the material (``rnd:``, ``det:``, ``ope:``, ``hom:`` + 96 bits of a
domain-separated SHA-256), so the manifest can name a key without revealing it and a lookup
by id can never pick the wrong key."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Union

from chain.crypto_profile import DEFAULT, configured_profile, get_profile
from offchain.errors import KeyNotFound
from offchain.onion.bfvkey import BfvSecretKey, new_bfv_key
from offchain.onion.det import DetKey
from offchain.onion.ope import OrderKey
from offchain.onion.paillier import (DEFAULT_BITS, DEFAULT_EXPONENT_BITS, PaillierPrivateKey,
                                     generate_keypair)
from offchain.onion.rnd import RndKey

Key = Union[RndKey, DetKey, OrderKey, PaillierPrivateKey, BfvSecretKey]


def new_rnd(profile: str | None = None) -> RndKey:
    """A fresh RND key of ``profile`` (``None``: the configured one, ``TDS_CRYPTO_PROFILE``)."""
    p = get_profile(profile) if profile is not None else configured_profile()
    return RndKey(secrets.token_bytes(p.rnd_key_bytes), p.name)


def new_det(profile: str | None = None) -> DetKey:
    """A fresh DET key of ``profile`` (``None``: the configured one)."""
    p = get_profile(profile) if profile is not None else configured_profile()
    return DetKey(secrets.token_bytes(p.det_key_bytes), p.name)


def _profiled(key: RndKey | DetKey, d: dict) -> dict:
    """A non-default profile is recorded beside the material; default entries keep their bytes."""
    return d if key.profile == DEFAULT else {**d, "profile": key.profile}


def new_order(in_bits: int = 48) -> OrderKey:
    return OrderKey(secrets.token_bytes(32), in_bits, in_bits + 48 - (in_bits % 8))


def new_hom(bits: int = DEFAULT_BITS, exponent_bits: int = DEFAULT_EXPONENT_BITS) -> PaillierPrivateKey:
    return generate_keypair(bits, exponent_bits)


def new_bfv() -> BfvSecretKey:
    return new_bfv_key()


def key_to_dict(key: Key) -> dict:
    if isinstance(key, RndKey):
        return _profiled(key, {"kind": "rnd", "key": key.key.hex()})
    if isinstance(key, DetKey):
        return _profiled(key, {"kind": "det", "key": key.key.hex()})
    if isinstance(key, OrderKey):
        return {"kind": "ope", "key": key.key.hex(), "in_bits": key.in_bits, "out_bits": key.out_bits}
    if isinstance(key, PaillierPrivateKey):
        return {"kind": "hom", **key.to_dict()}
    if isinstance(key, BfvSecretKey):
        return {"kind": "bfv", **key.to_dict()}
    raise TypeError(f"not a key: {type(key).__name__}")


def key_from_dict(d: dict) -> Key:
    kind = d["kind"]
    if kind == "rnd":
        return RndKey(bytes.fromhex(d["key"]), d.get("profile", DEFAULT))
    if kind == "det":
        return DetKey(bytes.fromhex(d["key"]), d.get("profile", DEFAULT))
    if kind == "ope":
        return OrderKey(bytes.fromhex(d["key"]), int(d["in_bits"]), int(d["out_bits"]))
    if kind == "hom":
        return PaillierPrivateKey.from_dict(d)
    if kind == "bfv":
        return BfvSecretKey.from_dict(d)
    raise ValueError(f"unknown key kind {kind!r}")


@dataclass
class Keyring:
    """Keys by id. The provider's keystore loads into one; a worker only ever gets one
    holding peeled RND keys."""

    keys: dict[str, Key] = field(default_factory=dict)

    def add(self, key: Key) -> str:
        self.keys[key.key_id] = key
        return key.key_id

    def get(self, key_id: str) -> Key:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyNotFound(key_id) from None

    def rnd(self, key_id: str) -> RndKey:
        return self._typed(key_id, RndKey)  # type: ignore[return-value]

    def det(self, key_id: str) -> DetKey:
        return self._typed(key_id, DetKey)  # type: ignore[return-value]

    def order(self, key_id: str) -> OrderKey:
        return self._typed(key_id, OrderKey)  # type: ignore[return-value]

    def hom(self, key_id: str) -> PaillierPrivateKey:
        return self._typed(key_id, PaillierPrivateKey)  # type: ignore[return-value]

    def bfv(self, key_id: str) -> BfvSecretKey:
        return self._typed(key_id, BfvSecretKey)  # type: ignore[return-value]

    def _typed(self, key_id: str, kind: type) -> Key:
        key = self.get(key_id)
        if not isinstance(key, kind):
            raise KeyNotFound(key_id)
        return key

    def remove(self, key_id: str) -> None:
        self.keys.pop(key_id, None)

    def __contains__(self, key_id: str) -> bool:
        return key_id in self.keys
