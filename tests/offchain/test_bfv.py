"""The packed BFV layer: sums and group-bys equal the plaintext; a layout that could wrap is
refused; the key service never decrypts a ciphertext whose slots hold rows."""
from __future__ import annotations

import random
from decimal import Decimal

import pytest

from offchain.errors import BfvLayoutCouldWrap, GrantRefused, KeyNotFound, UnreducedCiphertext
from offchain.ingest.classification import Classification
from offchain.ingest.schema import Field, Schema
from offchain.ingest.table import Table
from offchain.keyservice.release import Grant, KeyService, ResultRejected
from offchain.onion.bfv import MAX_T_BITS, BfvColumn, ct_from_bytes
from offchain.onion.bfvkey import ReducedTotal
from offchain.onion.chunks import split_varlen, unpack_object
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.packing import Slot
from offchain.onion.peel import PeeledKeys
from offchain.onion.policy import BFV_MIN_ROWS, default_policy
from offchain.query.columns import ChunkCache
from offchain.query.engine import Engine
from offchain.query.plan import Agg, Eq, Query, Range

S = Schema((Field("region", "string"), Field("ts", "integer", minimum=0, maximum=1000),
            Field("amount", "decimal", decimals=2, minimum="-50", maximum="50"),
            Field("qty", "integer", minimum=0, maximum=100)), name="t")
CLS = Classification("internal", {f: "internal" for f in S.names})


def rows_of(n: int, seed: int = 1) -> list[list]:
    rng = random.Random(seed)
    return [[rng.choice("abcdefg"), rng.randrange(1001), Decimal(rng.randrange(-5000, 5001)) / 100,
             rng.randrange(101)] for _ in range(n)]


@pytest.fixture(scope="module")
def bfv_ds():
    rows = rows_of(700)
    ring = Keyring()
    ds = encrypt_table(Table.from_rows(S, rows), default_policy(S, CLS, 1, hom_scheme="bfv"), CLS, ring,
                       chunk_rows=300)
    return rows, ring, ds, KeyService(ring, {ds.dataset_id: ds.manifest}, fetch=ds.get)


def ask(ks: KeyService, ds, q: Query, processes: int = 1):
    grant = Grant("g", "did:c", frozenset({ds.dataset_id}), frozenset(q.operations()))
    enc, peeled = ks.prepare(q, grant)
    result = Engine(ks.manifests, ds.get, peeled, processes=processes).run(enc)
    return grant, result, ks.open(q, grant, result).answer


def test_manifest_records_the_scheme_per_column(bfv_ds):
    _, _, ds, _ = bfv_ds
    m = ds.manifest
    assert m["hom"] is None and sorted(m["bfv"]["columns"]) == ["amount", "qty", "ts"]
    assert m["columns"]["amount"]["hom"] == {"key": m["bfv"]["key"], "scheme": "bfv"}
    amount = BfvColumn.from_dict(m["bfv"]["columns"]["amount"])
    assert amount.bound == 10000 * 700 < amount.params.plain_modulus          # no sum can wrap
    assert all(f"amount/bfv" in c["objects"] for c in m["chunks"])


@pytest.mark.parametrize("processes", [1, 2])
def test_sum_count_avg_where_equal_plaintext(bfv_ds, processes):
    rows, _, ds, ks = bfv_ds
    q = Query(ds.dataset_id, (Agg("count"), Agg("sum", "amount"), Agg("avg", "qty"), Agg("sum", "qty")),
              (Range("ts", 120, 640), Eq("region", "c")))
    _, _, answer = ask(ks, ds, q, processes)
    sel = [r for r in rows if 120 <= r[1] <= 640 and r[0] == "c"]
    assert answer["rows"] == [[len(sel), sum(r[2] for r in sel), Decimal(sum(r[3] for r in sel)) / len(sel),
                               sum(r[3] for r in sel)]]


def test_group_by_equals_plaintext_and_parallel_gives_the_same_ciphertexts(bfv_ds, monkeypatch):
    from offchain.query import scan
    monkeypatch.setattr(scan, "PARALLEL_MIN_WORK", 1)       # fork even for this small table
    monkeypatch.setattr(scan, "_spare_cores", lambda: 2)     # and even on a busy machine
    rows, _, ds, ks = bfv_ds
    q = Query(ds.dataset_id, (Agg("count"), Agg("sum", "amount"), Agg("min", "ts"), Agg("max", "ts")),
              (Range("ts", 50, None),), "region")
    _, one, answer = ask(ks, ds, q, 1)
    _, two, _ = ask(ks, ds, q, 2)
    assert [g.bfv for g in one.groups] == [g.bfv for g in two.groups]
    expect = {}
    for r in rows:
        if r[1] >= 50:
            e = expect.setdefault(r[0], [0, 0, 1001, -1])
            e[0], e[1], e[2], e[3] = e[0] + 1, e[1] + r[2], min(e[2], r[1]), max(e[3], r[1])
    assert sorted(answer["rows"]) == sorted([k, *v] for k, v in expect.items())


def test_whole_table_sum_at_the_declared_extremes(bfv_ds):
    """Every value at its maximum: the largest total the layout allows still opens exactly."""
    ring = Keyring()
    rows = [["a", 1000, Decimal(50), 100]] * 300
    ds = encrypt_table(Table.from_rows(S, rows), default_policy(S, CLS, 1, hom_scheme="bfv"), CLS, ring)
    ks = KeyService(ring, {ds.dataset_id: ds.manifest}, fetch=ds.get)
    _, _, answer = ask(ks, ds, Query(ds.dataset_id, (Agg("sum", "amount"), Agg("sum", "qty"))))
    assert answer["rows"] == [[Decimal(15000), 30000]]


def test_a_wrap_capable_layout_is_refused():
    wide = Schema((Field("k", "identifier"), Field("v", "integer")), name="w")     # no declared range: ±2^39
    cls = Classification("internal", {"k": "internal", "v": "internal"})
    table = Table.from_rows(wide, [[f"k{i}", i] for i in range(3000)])
    with pytest.raises(BfvLayoutCouldWrap) as err:
        encrypt_table(table, default_policy(wide, cls, 1, hom_scheme="bfv"), cls, Keyring())
    assert err.value.column == "v" and err.value.needed_bits > MAX_T_BITS
    with pytest.raises(BfvLayoutCouldWrap):
        BfvColumn.create(Slot("x", 0, 2 ** 30), 2 ** 20)
    col = BfvColumn.create(Slot("x", 0, 1000), 100)
    with pytest.raises(BfvLayoutCouldWrap):
        col.check_rows(101)                     # more rows than the modulus was sized for


def test_policy_chooses_bfv_for_big_tables_and_paillier_otherwise(hom_key):
    small = Schema((Field("v", "integer", minimum=0, maximum=100),), name="s")
    cls = Classification("internal", {"v": "internal"})
    policy = default_policy(small, cls, 1)
    big = encrypt_table(Table.from_rows(small, [[i % 100] for i in range(BFV_MIN_ROWS)]), policy, cls, Keyring(),
                        hom_key=hom_key, chunk_rows=BFV_MIN_ROWS)
    assert big.manifest["columns"]["v"]["hom"]["scheme"] == "bfv" and big.manifest["hom"] is None
    few = encrypt_table(Table.from_rows(small, [[i % 100] for i in range(50)]), policy, cls, Keyring(), hom_key=hom_key)
    assert "scheme" not in few.manifest["columns"]["v"]["hom"] and "bfv" not in few.manifest
    assert few.manifest["hom"]["columns"] == ["v"]


def test_key_service_refuses_a_ciphertext_holding_rows(bfv_ds):
    _, ring, ds, ks = bfv_ds
    q = Query(ds.dataset_id, (Agg("count"), Agg("sum", "qty")))
    grant, result, _ = ask(ks, ds, q)
    chunk = ds.manifest["chunks"][0]
    _, _, body = unpack_object(ds.get(chunk["objects"]["qty/bfv"]))
    raw_block = split_varlen(bytes(body))[0]                       # 300 rows' values in its slots
    result.groups[0].bfv["qty"] = raw_block
    with pytest.raises(ResultRejected, match="ResultRejected"):
        ks.open(q, grant, result)
    key = ring.bfv(ds.manifest["bfv"]["key"])
    with pytest.raises(UnreducedCiphertext):
        key.decrypt_reduced(raw_block)                              # bytes: not a reduced total
    with pytest.raises(TypeError):
        ReducedTotal(object(), None, None, 0)                       # only reduce() makes one
    params = BfvColumn.from_dict(ds.manifest["bfv"]["columns"]["qty"]).params
    forged = object.__new__(ReducedTotal)                           # bypassing the constructor
    forged.params, forged.ct, forged.flood_bits = params, ct_from_bytes(params, raw_block), 0
    with pytest.raises(UnreducedCiphertext, match="slots"):
        key.decrypt_reduced(forged)                                 # slots differ: nothing is returned


def test_bfv_results_are_opened_only_from_a_recomputation(bfv_ds):
    _, ring, ds, _ = bfv_ds
    blind = KeyService(ring, {ds.dataset_id: ds.manifest})          # no content store
    q = Query(ds.dataset_id, (Agg("sum", "qty"),))
    grant = Grant("g", "did:c", frozenset({ds.dataset_id}), frozenset(q.operations()))
    enc, peeled = blind.prepare(q, grant)
    result = Engine(blind.manifests, ds.get, peeled).run(enc)
    with pytest.raises(GrantRefused, match="recomputation"):
        blind.open(q, grant, result)


def test_cached_chunks_are_served_only_to_a_query_holding_their_key(bfv_ds):
    _, _, ds, ks = bfv_ds
    cache = ChunkCache(1 << 26)
    q = Query(ds.dataset_id, (Agg("sum", "qty"),), (Range("ts", 0, 500),))
    grant = Grant("g", "did:c", frozenset({ds.dataset_id}), frozenset(q.operations()))
    enc, peeled = ks.prepare(q, grant)
    first = Engine(ks.manifests, ds.get, peeled, cache=cache).run(enc)
    misses = cache.misses
    again = Engine(ks.manifests, ds.get, peeled, cache=cache).run(enc)
    assert cache.misses == misses and cache.hits > 0 and first.groups[0].bfv == again.groups[0].bfv
    with pytest.raises(KeyNotFound):
        Engine(ks.manifests, ds.get, PeeledKeys(), cache=cache).run(enc)


def test_rotation_re_encrypts_a_bfv_only_column(tmp_path):
    from offchain.onion.keystore import Keystore
    from offchain.onion.rotation import decrypt_dataset, rotate_dataset
    schema = Schema((Field("k", "identifier"), Field("pay", "decimal", decimals=2, minimum="0", maximum="900")), name="p")
    cls = Classification("confidential", {"k": "internal", "pay": "confidential"})    # pay: HOM only
    rows = [[f"k{i}", Decimal(i * 7 % 90000) / 100] for i in range(400)]
    store = Keystore.create(tmp_path / "ks.json", "pw", scrypt_n=2 ** 10)
    ring = Keyring()
    ds = encrypt_table(Table.from_rows(schema, rows), default_policy(schema, cls, 1, hom_scheme="bfv"), cls, ring)
    store.add_keyring(ring)
    assert ds.manifest["columns"]["pay"] == {"hom": {"key": ds.manifest["bfv"]["key"], "scheme": "bfv"}}
    new = rotate_dataset(ds, store)
    assert new.manifest["bfv"]["key"] != ds.manifest["bfv"]["key"]
    assert decrypt_dataset(new, store.keyring()).columns["pay"] == [r[1] for r in rows]


def test_a_bfv_result_travels_as_fingerprints_and_opens_from_the_recomputation(bfv_ds):
    from offchain.query.engine import EncryptedResult
    _, _, ds, ks = bfv_ds
    q = Query(ds.dataset_id, (Agg("count"), Agg("sum", "amount")), (), "region")
    grant, result, answer = ask(ks, ds, q)
    wire = result.to_dict()
    assert all(v.startswith("sha256:") for g in wire["groups"] for v in g["bfv"].values())
    assert len(repr(wire)) < 4096                                   # 7 groups: digests, not ciphertexts
    assert ks.open(q, grant, EncryptedResult.from_dict(wire)).answer == answer
    with pytest.raises(GrantRefused, match="fingerprint"):
        ks.open_recomputed(q, grant, EncryptedResult.from_dict(wire))
