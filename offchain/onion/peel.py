"""Onion peeling: release exactly the RND layer keys an operation needs.

``eq`` needs the RND key over that column's DET onion; ``ord`` (and its order index) the RND
key over the order onion; ``hom`` needs nothing (the worker computes with the public key).
DET, order and Paillier secret keys are never released, and ``blob`` onions are never peeled
for computation."""
from __future__ import annotations

from dataclasses import dataclass, field

from chain.crypto_profile import DEFAULT, require_profile
from offchain.errors import PolicyError
from offchain.onion.keys import Keyring
from offchain.onion.policy import BLOB, EQ, HOM, ORD
from offchain.onion.rnd import RndKey


@dataclass
class PeeledKeys:
    """What a worker receives: RND keys by id, and which (dataset, column, onion) each opens."""

    keys: dict[str, RndKey] = field(default_factory=dict)
    scope: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    def rnd(self, key_id: str) -> RndKey:
        from offchain.errors import KeyNotFound
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyNotFound(key_id) from None

    def merge(self, other: "PeeledKeys") -> None:
        self.keys.update(other.keys)
        self.scope.update(other.scope)

    def describe(self) -> list[dict]:
        """The release without key material (for logs and the release record)."""
        return [{"key_id": k, "dataset": d, "column": c, "onion": o}
                for k, (d, c, o) in sorted(self.scope.items())]

    def to_dict(self) -> dict:
        """With key material (hex): only ever sent sealed to the worker that runs the job."""
        return {"format": "tds-peeled-keys/1",
                "keys": [{**entry, "key": self.keys[entry["key_id"]].key.hex(),
                          **_profile_field(self.keys[entry["key_id"]])} for entry in self.describe()]}

    @classmethod
    def from_dict(cls, d: dict) -> "PeeledKeys":
        out = cls()
        for e in d.get("keys", []):
            key = RndKey(bytes.fromhex(e["key"]), e.get("profile", DEFAULT))
            if key.key_id != e["key_id"]:
                raise PolicyError(e.get("column", "?"), "peel", f"key material does not match id {e['key_id']}")
            out.keys[key.key_id] = key
            out.scope[key.key_id] = (e["dataset"], e["column"], e["onion"])
        return out


def _profile_field(key: RndKey) -> dict:
    return {} if key.profile == DEFAULT else {"profile": key.profile}


def peel(manifest: dict, keyring: Keyring, needs: set[tuple[str, str]]) -> PeeledKeys:
    """RND keys for each (column, onion) in ``needs``; refuses onions that do not exist or
    must never be peeled, and a dataset of another cryptography profile than the one in force
    or its keys' (:class:`~chain.crypto_profile.CryptoProfileMismatch`)."""
    from offchain.onion.dataset import check_profile
    profile = check_profile(manifest)
    out = PeeledKeys()
    for column, onion in sorted(needs):
        if onion == HOM:
            continue
        if onion == BLOB:
            raise PolicyError(column, "peel", "opaque (blob) onions are never released for computation")
        if onion not in (EQ, ORD):
            raise PolicyError(column, "peel", f"unknown onion {onion!r}")
        meta = manifest["columns"].get(column, {}).get(onion)
        if meta is None:
            raise PolicyError(column, onion, "the dataset has no such onion")
        key = keyring.rnd(meta["rnd"])
        require_profile(key.profile, profile, f"dataset {manifest['dataset_id']}")
        out.keys[key.key_id] = key
        out.scope[key.key_id] = (manifest["dataset_id"], column, onion)
    return out
