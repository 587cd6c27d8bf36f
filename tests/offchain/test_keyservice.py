from __future__ import annotations

import pytest

from offchain.errors import GrantRefused, KeyAuthenticationError, KeyNotFound, PolicyError
from offchain.ingest.classification import classify
from offchain.keyservice import Grant, KeyService
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.policy import default_policy
from offchain.query.engine import Engine
from offchain.query.plan import Agg, Eq, Query, Range

from offchain_tables import orders_table


@pytest.fixture
def setup(hom_key):
    t = orders_table(120)
    c = classify(t.schema)
    ring = Keyring()
    ds = encrypt_table(t, default_policy(t.schema, c, min_group_size=12), c, ring, hom_key=hom_key, chunk_rows=40)
    return t, ds, ring, KeyService(ring, {ds.dataset_id: ds.manifest})


def grant_for(ds, q, **kw):
    return Grant("grant-1", "did:example:consumer", frozenset({ds.dataset_id}), frozenset(q.operations()), **kw)


def test_prepare_releases_tokens_and_rnd_keys_only(setup):
    t, ds, ring, ks = setup
    q = Query(ds.dataset_id, (Agg("sum", "amount"),), (Eq("region", "north"), Range("qty", 0, 5)))
    enc, peeled = ks.prepare(q, grant_for(ds, q))
    assert {k.split(":")[0] for k in peeled.keys} == {"rnd"}
    assert {(c, o) for _, c, o in peeled.scope.values()} == {("region", "eq"), ("qty", "ord")}
    assert b"north" not in repr(enc).encode()


def test_grant_must_cover_every_operation(setup):
    t, ds, ring, ks = setup
    q = Query(ds.dataset_id, (Agg("sum", "amount"),), (Range("qty", 0, 5),))
    narrow = Grant("g", "did:c", frozenset({ds.dataset_id}), frozenset({"sum:amount"}))
    with pytest.raises(GrantRefused) as e:
        ks.prepare(q, narrow)
    assert e.value.operation == "range:qty"
    with pytest.raises(GrantRefused, match="expired"):
        ks.prepare(q, grant_for(ds, q, expires_at=1))
    other = Grant("g", "did:c", frozenset({"another"}), frozenset(q.operations()))
    with pytest.raises(GrantRefused, match="does not cover dataset"):
        ks.prepare(q, other)


def test_policy_refuses_missing_onion(setup):
    t, ds, ring, ks = setup
    q = Query(ds.dataset_id, (Agg("count"),), (Eq("amount", "1.00"),))  # amount is sensitive: no DET
    with pytest.raises(PolicyError):
        ks.prepare(q, grant_for(ds, q))


def test_minimum_group_size_enforced(setup):
    t, ds, ring, ks = setup
    q = Query(ds.dataset_id, (Agg("count"), Agg("sum", "amount")), (Range("qty", 7, 7),), "cid")
    g = grant_for(ds, q)
    enc, peeled = ks.prepare(q, g)
    res = Engine({ds.dataset_id: ds.manifest}, ds.get, peeled).run(enc)
    rel = ks.open(q, g, res)
    assert rel.answer["suppressed_groups"] == len(res.groups) and rel.answer["rows"] == []
    assert rel.record["groups_suppressed"] == len(res.groups)
    q2 = Query(ds.dataset_id, (Agg("count"),), (Range("qty", 7, 7),))
    g2 = grant_for(ds, q2)
    enc2, p2 = ks.prepare(q2, g2)
    with pytest.raises(GrantRefused, match="minimum group size 12"):
        ks.open(q2, g2, Engine({ds.dataset_id: ds.manifest}, ds.get, p2).run(enc2))


def test_release_record_and_tampered_result(setup):
    t, ds, ring, ks = setup
    q = Query(ds.dataset_id, (Agg("count"), Agg("avg", "qty")), (Range("amount", "-1000", "1000"),))
    g = grant_for(ds, q)
    enc, peeled = ks.prepare(q, g)
    res = Engine({ds.dataset_id: ds.manifest}, ds.get, peeled).run(enc)
    rel = ks.open(q, g, res)
    assert rel.answer["rows"][0][0] == 120
    assert rel.record["query_hash"] == q.hash and rel.record["grant_id"] == "grant-1"
    assert rel.record["answer_hash"].startswith("0x") and "rows" not in rel.record
    res.groups[0].rows = 119              # a worker lying about the row count
    with pytest.raises(KeyAuthenticationError):
        ks.open(q, g, res)


def test_rotated_away_hom_key(setup, other_hom_key):
    t, ds, ring, ks = setup
    q = Query(ds.dataset_id, (Agg("sum", "qty"),), (Range("qty", None, None),))
    g = grant_for(ds, q)
    enc, peeled = ks.prepare(q, g)
    res = Engine({ds.dataset_id: ds.manifest}, ds.get, peeled).run(enc)
    ring.remove(ds.manifest["hom"]["key"])
    with pytest.raises(KeyNotFound):
        ks.open(q, g, res)
    ring.keys[ds.manifest["hom"]["key"]] = other_hom_key       # the wrong key under the old id
    with pytest.raises((KeyAuthenticationError, Exception)) as e:
        ks.open(q, g, res)
    assert type(e.value).__name__ in ("KeyAuthenticationError", "PackingOverflow")
