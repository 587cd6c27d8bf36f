from __future__ import annotations

import json

import pytest

from offchain.canonical import canonical_json
from offchain.errors import DatasetFormatError, KeyAuthenticationError, SchemaViolation, SlotRangeError
from offchain.ingest.classification import classify
from offchain.ingest.table import Table
from offchain.onion.chunks import pack_object, unpack_object
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.policy import default_policy
from offchain.onion.rotation import decrypt_dataset, manifest_key_ids
from offchain.store.blockstore import BlockStore
from offchain.store.unixfs import file_cid

from offchain_tables import ORDERS, orders_table


def encrypt(hom_key, table=None, **kw):
    table = table or orders_table()
    c = classify(table.schema)
    ring = Keyring()
    return encrypt_table(table, default_policy(table.schema, c), c, ring, hom_key=hom_key, chunk_rows=50, **kw), ring


def test_manifest_and_chunks(hom_key, tmp_path):
    ds, ring = encrypt(hom_key, quality_hash="0xabc")
    m = ds.manifest
    assert m["row_count"] == 120 and len(m["chunks"]) == 3 and m["quality_report_hash"] == "0xabc"
    assert m["hom"]["key"] == hom_key.key_id and set(m["hom"]["columns"]) == {"amount", "qty"}
    assert manifest_key_ids(m) <= set(ring.keys)
    assert all(file_cid(blob) == cid for cid, blob in ds.objects.items())
    assert json.loads(ds.manifest_bytes) == m and ds.manifest_bytes == canonical_json(json.loads(ds.manifest_bytes))
    store = BlockStore(tmp_path)
    mcid = ds.publish(lambda b: store.add_bytes(b).cid)
    assert mcid == ds.manifest_cid and json.loads(store.cat(mcid)) == m
    # no plaintext in any object
    blob = b"".join(ds.objects.values())
    assert b"north" not in blob and b"south" not in blob


def test_roundtrip_by_provider(hom_key):
    ds, ring = encrypt(hom_key)
    assert decrypt_dataset(ds, ring).columns == orders_table().columns


def test_swapped_or_tampered_chunk_is_refused(hom_key):
    ds, ring = encrypt(hom_key)
    c0, c1 = ds.manifest["chunks"][0]["objects"], ds.manifest["chunks"][1]["objects"]
    # put chunk 1's sealed body under chunk 0's header: AES-GCM binds the header
    h0, _, _ = unpack_object(ds.objects[c0["region/eq"]])
    _, _, body1 = unpack_object(ds.objects[c1["region/eq"]])
    ds.objects[c0["region/eq"]] = pack_object(h0, body1)
    with pytest.raises(KeyAuthenticationError):
        decrypt_dataset(ds, ring)
    with pytest.raises(DatasetFormatError):
        unpack_object(b"junk")


def test_wrong_key_never_yields_garbage(hom_key, other_hom_key):
    ds, ring = encrypt(hom_key)
    other, _ = encrypt(other_hom_key)
    with pytest.raises(Exception) as e:
        decrypt_dataset(ds, Keyring({k: v for k, v in _.keys.items()}))
    assert type(e.value).__name__ in ("KeyNotFound", "KeyAuthenticationError")


def test_refusals_before_encryption(hom_key):
    t = orders_table(10)
    t.columns["qty"][3] = 51                      # declared maximum is 50 -> slot range
    with pytest.raises(SlotRangeError) as e:
        encrypt(hom_key, t)
    assert e.value.column == "qty" and e.value.row == 4
    t = orders_table(10)
    t.columns["amount"][2] = None
    with pytest.raises(SchemaViolation) as e:
        encrypt(hom_key, t)
    assert e.value.rule == "required" and e.value.row == 3


def test_parallel_encryption_matches(hom_key):
    t = Table.from_rows(ORDERS, [[r[k] for k in ORDERS.names] for r in orders_table(4200).rows()])
    ds, ring = encrypt(hom_key, t, processes=2)
    assert decrypt_dataset(ds, ring).columns["qty"] == t.columns["qty"]
