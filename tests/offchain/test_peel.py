import pytest

from offchain.errors import PolicyError
from offchain.ingest.classification import classify
from offchain.ingest.schema import Field, Schema
from offchain.ingest.table import Table
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.peel import peel
from offchain.onion.policy import default_policy
from offchain.onion.rnd import RndKey


def test_peel_releases_only_rnd_keys(hom_key):
    s = Schema((Field("cid", "identifier"), Field("id_card", "string"), Field("qty", "integer")))
    t = Table(s, {"cid": ["a", "b"], "id_card": ["x", "y"], "qty": [1, 2]})
    c = classify(s)
    ring = Keyring()
    ds = encrypt_table(t, default_policy(s, c), c, ring, hom_key=hom_key)
    p = peel(ds.manifest, ring, {("cid", "eq"), ("qty", "ord"), ("qty", "hom")})
    assert all(isinstance(k, RndKey) for k in p.keys.values()) and len(p.keys) == 2
    assert {(c, o) for _, c, o in p.scope.values()} == {("cid", "eq"), ("qty", "ord")}
    with pytest.raises(PolicyError):
        peel(ds.manifest, ring, {("id_card", "blob")})
    with pytest.raises(PolicyError):
        peel(ds.manifest, ring, {("cid", "ord")})
