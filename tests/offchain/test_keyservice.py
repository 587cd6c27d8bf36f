from __future__ import annotations

import pytest

from offchain.errors import GrantRefused, KeyAuthenticationError, KeyNotFound, PolicyError
from offchain.ingest.classification import classify
from offchain.keyservice.release import Grant, KeyService
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
    with pytest.raises(KeyAuthenticationError):
        ks.open(q, g, res)


def test_spec_step7_names_with_json_over_the_wire(setup):
    """The oracle passes the encrypted query, peeled keys and encrypted result as JSON."""
    import json

    from offchain.onion.peel import PeeledKeys
    from offchain.query.engine import EncryptedResult
    from offchain.query.plan import EncryptedQuery
    t, ds, ring, ks = setup
    q = Query(ds.dataset_id, (Agg("count"), Agg("sum", "amount"), Agg("max", "qty")),
              (Range("qty", -3, 5),), "cid")
    enc, peeled = ks.release_layer_keys(q.operations(), q)
    enc2 = EncryptedQuery.from_dict(json.loads(json.dumps(enc.to_dict())))
    peeled2 = PeeledKeys.from_dict(json.loads(json.dumps(peeled.to_dict())))
    assert enc2 == enc and peeled2.describe() == peeled.describe()
    result = Engine({ds.dataset_id: ds.manifest}, ds.get, peeled2).run(enc2)
    wire = json.loads(json.dumps(result.to_dict()))
    assert EncryptedResult.from_dict(wire).to_dict() == wire
    rel = ks.open_aggregate(wire, q.operations(), q, min_group=1)
    plain: dict = {}
    for r in t.rows():
        if -3 <= r["qty"] <= 5:
            plain.setdefault(r["cid"], []).append(r)
    expect = sorted([[k, len(v), sum(r["amount"] for r in v), max(r["qty"] for r in v)]
                     for k, v in plain.items() if len(v) >= 12])
    assert len(expect) == 7 and sorted(rel.answer["rows"]) == expect
    # min_group can only raise the dataset's minimum (12): 10 changes nothing, 14 suppresses some
    assert ks.open_aggregate(wire, q.operations(), q, min_group=10).answer == rel.answer
    high = ks.open_aggregate(wire, q.operations(), q, min_group=14).answer
    assert sorted(high["rows"]) == [r for r in expect if r[1] >= 14] and high["suppressed_groups"] == 1
    assert ks.open_aggregate(wire, q.operations(), q, min_group=1000).answer["rows"] == []
    with pytest.raises(GrantRefused) as e:
        ks.open_aggregate(wire, {"count", "sum:amount"}, q)
    assert e.value.operation in ("group_by:cid", "max:qty", "range:qty")


def test_result_for_other_dataset_refused(setup, hom_key):
    t, ds, ring, ks = setup
    q = Query(ds.dataset_id, (Agg("count"),), (Range("qty", None, None),))
    g = grant_for(ds, q)
    enc, peeled = ks.prepare(q, g)
    res = Engine({ds.dataset_id: ds.manifest}, ds.get, peeled).run(enc)
    res.datasets = {"left": "someone-else"}
    with pytest.raises(GrantRefused, match="other datasets"):
        ks.open(q, g, res)


def test_exposure_of_a_grant_before_signing(setup):
    from offchain.keyservice.release import grant_exposure
    from offchain.onion.policy import ReleaseRules
    t, ds, ring, ks = setup
    ops = {"count", "sum:amount", "range:amount", "equality:region", "group_by:cid", "range:nope"}
    ex = grant_exposure(ds.manifest, ops, "did:c", price=5, rules=ReleaseRules(min_price_leaky=100))
    fields = {(f["operation"], f["column"]): f for f in ex["fields"]}
    assert fields[("sum", "amount")]["onion"] == "hom" and fields[("sum", "amount")]["severity"] == "low"
    assert "order" in fields[("range", "amount")]["leaks"]       # amount is sensitive: order leak
    assert "range:amount" in ex["refused"] and ex["unknown"] == ["range:nope"]
    assert {"column": "cid", "onion": "eq"} in ex["peeled_layers"]
    assert ex["hash"].startswith("0x") and ex["min_group_size"] == 12
    rich = grant_exposure(ds.manifest, ops - {"range:nope"}, "did:c", price=500,
                          rules=ReleaseRules(min_price_leaky=100))
    assert rich["refused"] == [] and rich["worst_severity"] == "high" and rich["hash"] != ex["hash"]


def test_release_rules_depend_on_consumer_and_price(setup):
    from offchain.onion.policy import ReleaseRules
    t, ds, ring, ks = setup
    strict = KeyService(ring, ks.manifests, rules=ReleaseRules(frozenset({"did:trusted"}), 100))
    q = Query(ds.dataset_id, (Agg("count"),), (Range("amount", "0", "50"),))
    with pytest.raises(GrantRefused) as e:
        strict.prepare(q, grant_for(ds, q))
    assert e.value.operation == "range:amount"
    strict.prepare(q, Grant("g", "did:trusted", frozenset({ds.dataset_id}), frozenset(q.operations())))
    strict.prepare(q, Grant("g", "did:x", frozenset({ds.dataset_id}), frozenset(q.operations()), price=100))
