"""A dataset under the ``sm`` profile (SM4-GCM, SM4-SIV, SM3): encrypted, stored, queried and
opened; and every way of mixing it with the default profile refused by name."""
from __future__ import annotations

import datetime as dt
import json
import warnings
from decimal import Decimal

import pytest

from chain.crypto_profile import CryptoProfileMismatch
from chain.sm import sm3
from offchain.canonical import canonical_hash, canonical_json
from offchain.errors import DatasetFormatError
from offchain.ingest.classification import Classification
from offchain.ingest.schema import Field, Schema
from offchain.ingest.table import Table
from offchain.keyservice.release import Grant, KeyService
from offchain.onion.dataset import EncryptedDataset, encrypt_table, manifest_hash
from offchain.onion.det import DetKey
from offchain.onion.keys import Keyring, key_from_dict, key_to_dict, new_det, new_rnd
from offchain.onion.keystore import Keystore
from offchain.onion.peel import PeeledKeys, peel
from offchain.onion.policy import EQ, default_policy
from offchain.onion.rnd import RndKey
from offchain.onion.rotation import decrypt_dataset
from offchain.query.engine import Engine
from offchain.query.plan import Agg, Eq, Query, Range

S = Schema((Field("k", "identifier"), Field("g", "string"),
            Field("x", "integer", minimum=-1000, maximum=1000),
            Field("y", "decimal", decimals=2, minimum="-50", maximum="50"),
            Field("d", "date")), name="t")
CLS = Classification("internal", {f: "internal" for f in S.names})
POLICY = default_policy(S, CLS, min_group_size=1)
ROWS = [[f"k{i % 4}", "abc"[i % 3], (i * 37) % 200 - 100, Decimal(i % 50) / 4, dt.date(2024, 1, 1) + dt.timedelta(i)]
        for i in range(40)]


@pytest.fixture
def sm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")


@pytest.fixture
def default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TDS_CRYPTO_PROFILE", raising=False)


def encrypt(hom_key, profile: str | None = None) -> tuple[EncryptedDataset, Keyring, Table]:
    table, ring = Table.from_rows(S, ROWS), Keyring()
    return encrypt_table(table, POLICY, CLS, ring, hom_key=hom_key, chunk_rows=16, profile=profile), ring, table


def answer(ks: KeyService, ds: EncryptedDataset, q: Query) -> list:
    grant = Grant("g", "did:c", frozenset(ks.manifests), frozenset(q.operations()))
    enc, peeled = ks.prepare(q, grant)
    return ks.open(q, grant, Engine(ks.manifests, ds.get, peeled).run(enc)).answer["rows"]


def test_sm_dataset_round_trip_and_queries(sm: None, hom_key) -> None:
    ds, ring, table = encrypt(hom_key)
    m = ds.manifest
    assert m["crypto_profile"] == "sm"
    rnd_ids = {meta[o]["rnd"] for meta in m["columns"].values() for o in meta if "rnd" in meta[o]}
    assert rnd_ids and all(ring.rnd(i).profile == "sm" and len(ring.rnd(i).key) == 16 for i in rnd_ids)
    det = ring.det(m["columns"]["g"][EQ]["det"])
    assert det.profile == "sm" and len(det.key) == 32
    for chunk in m["chunks"]:                       # each object's SM3 digest beside its (sha2-256) CID
        assert set(chunk["sm3"]) == set(chunk["objects"])
        assert all(sm3(ds.get(chunk["objects"][ref])).hex() == d for ref, d in chunk["sm3"].items())
    assert ds.manifest_hash == "0x" + sm3(canonical_json(m)).hex() == manifest_hash(m) != canonical_hash(m)

    ks = KeyService(ring, {ds.dataset_id: m})
    rows = list(table.rows())
    q = Query(ds.dataset_id, (Agg("count"), Agg("sum", "x")), (Range("x", -50, 50), Eq("g", "b")), None)
    sel = [r for r in rows if -50 <= r["x"] <= 50 and r["g"] == "b"]
    assert answer(ks, ds, q) == [[len(sel), sum(r["x"] for r in sel)]]
    grouped = Query(ds.dataset_id, (Agg("count"),), (), "k")     # GROUP BY over SM4-SIV labels
    want = sorted([[k, sum(1 for r in rows if r["k"] == k)] for k in {r["k"] for r in rows}])
    assert sorted(answer(ks, ds, grouped)) == want
    assert list(decrypt_dataset(ds, ring).rows()) == rows              # the provider opens every layer


def test_default_manifest_keeps_its_bytes(default: None, hom_key) -> None:
    ds, ring, _ = encrypt(hom_key)
    assert "crypto_profile" not in ds.manifest and all("sm3" not in c for c in ds.manifest["chunks"])
    assert ds.manifest_hash == canonical_hash(ds.manifest)
    assert all(k.profile == "default" for k in ring.keys.values() if isinstance(k, (RndKey, DetKey)))


def test_a_mismatch_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, hom_key) -> None:
    sm_ds, sm_ring, _ = encrypt(hom_key, "sm")
    monkeypatch.delenv("TDS_CRYPTO_PROFILE", raising=False)      # default in force, an sm dataset
    q = Query(sm_ds.dataset_id, (Agg("count"),), (Eq("g", "a"),), None)
    with pytest.raises(CryptoProfileMismatch) as exc:
        peel(sm_ds.manifest, sm_ring, {("g", EQ)})
    assert (exc.value.expected, exc.value.found) == ("default", "sm")
    with pytest.raises(CryptoProfileMismatch):
        answer(KeyService(sm_ring, {sm_ds.dataset_id: sm_ds.manifest}), sm_ds, q)
    with pytest.raises(CryptoProfileMismatch):
        Engine({sm_ds.dataset_id: sm_ds.manifest}, sm_ds.get, PeeledKeys())
    with pytest.raises(CryptoProfileMismatch):                   # an append under another profile
        encrypt_table(Table.from_rows(S, ROWS[:3]), POLICY, CLS, sm_ring, previous=sm_ds.manifest)

    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")               # sm in force, a default dataset
    d_ds, d_ring, _ = encrypt(hom_key, "default")
    with pytest.raises(CryptoProfileMismatch) as exc:
        peel(d_ds.manifest, d_ring, {("g", EQ)})
    assert (exc.value.expected, exc.value.found) == ("sm", "default")
    with pytest.raises(CryptoProfileMismatch):                   # a shared DET key of the other profile
        encrypt_table(Table.from_rows(S, ROWS), POLICY, CLS, Keyring(), hom_key=hom_key,
                      det_keys={POLICY.fields["g"].domain: new_det("default")})

    # keys of one profile smuggled under a manifest claiming the other
    forged = {**sm_ds.manifest}
    forged.pop("crypto_profile")
    monkeypatch.delenv("TDS_CRYPTO_PROFILE")
    with pytest.raises(CryptoProfileMismatch, match="'sm'"):
        peel(forged, sm_ring, {("g", EQ)})
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")               # a worker handed a default key for it
    stray = new_rnd("default")
    with pytest.raises(CryptoProfileMismatch, match=stray.key_id):
        Engine({sm_ds.dataset_id: sm_ds.manifest}, sm_ds.get,
               PeeledKeys({stray.key_id: stray}, {stray.key_id: (sm_ds.dataset_id, "g", EQ)}))


def test_sm_object_digests_are_checked(sm: None, hom_key) -> None:
    ds, ring, _ = encrypt(hom_key)
    chunk = ds.manifest["chunks"][0]
    cid = chunk["objects"]["g/eq"]
    ds.objects[cid] = ds.objects[cid][:-1] + bytes([ds.objects[cid][-1] ^ 1])
    ks = KeyService(ring, {ds.dataset_id: ds.manifest})
    q = Query(ds.dataset_id, (Agg("count"),), (Eq("g", "a"),), None)
    with pytest.raises(DatasetFormatError, match="SM3 digest"):
        answer(ks, ds, q)


def test_sm_keys_persist_with_their_profile(tmp_path, sm: None) -> None:
    rnd, det = new_rnd(), new_det()
    assert (rnd.profile, det.profile, len(rnd.key), len(det.key)) == ("sm", "sm", 16, 32)
    assert key_to_dict(rnd)["profile"] == "sm" and "profile" not in key_to_dict(new_rnd("default"))
    assert key_from_dict(key_to_dict(det)) == det
    assert rnd.key_id != RndKey(rnd.key + rnd.key).key_id      # ids from the profile's own hash
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = Keystore.create(tmp_path / "keys.json", "pw", scrypt_n=2 ** 10)
    store.add(rnd)
    store.add(det)
    again = Keystore.open(tmp_path / "keys.json", "pw").keyring()
    assert again.rnd(rnd.key_id) == rnd and again.det(det.key_id) == det
    peeled = PeeledKeys({rnd.key_id: rnd}, {rnd.key_id: ("d", "c", "eq")})
    assert PeeledKeys.from_dict(json.loads(json.dumps(peeled.to_dict()))).rnd(rnd.key_id) == rnd
    with pytest.raises(ValueError, match="16 bytes"):
        RndKey(bytes(32), "sm")
