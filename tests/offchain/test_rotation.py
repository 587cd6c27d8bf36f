from __future__ import annotations

import pytest

from offchain.errors import KeyNotFound
from offchain.ingest.classification import classify
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.keystore import Keystore
from offchain.onion.policy import default_policy
from offchain.onion.rotation import decrypt_dataset, manifest_key_ids, rotate_dataset

from offchain_tables import orders_table


def test_rotation_reencrypts_and_old_keys_die(tmp_path, hom_key, monkeypatch):
    import offchain.onion.keys as K
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))
    t = orders_table(60)
    c = classify(t.schema)
    ring = Keyring()
    ds = encrypt_table(t, default_policy(t.schema, c), c, ring, hom_key=hom_key, chunk_rows=25)
    ks = Keystore.create(tmp_path / "ks.json", "pw", scrypt_n=2 ** 10)
    ks.add_keyring(ring)
    new = rotate_dataset(ds, ks, destroy_old=True)
    assert new.dataset_id == ds.dataset_id and new.manifest["rotated_from"] == ds.manifest_hash
    assert not manifest_key_ids(new.manifest) & manifest_key_ids(ds.manifest)
    current = Keystore.open(tmp_path / "ks.json", "pw").keyring()
    assert decrypt_dataset(new, current).columns == t.columns
    with pytest.raises(KeyNotFound):
        decrypt_dataset(ds, current)       # rotated-away keys: refused, never garbage


def test_rotation_retire_keeps_old_readable(tmp_path, hom_key, monkeypatch):
    import offchain.onion.keys as K
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))
    t = orders_table(10)
    c = classify(t.schema)
    ring = Keyring()
    ds = encrypt_table(t, default_policy(t.schema, c), c, ring, hom_key=hom_key)
    ks = Keystore.create(tmp_path / "ks.json", "pw", scrypt_n=2 ** 10)
    ks.add_keyring(ring)
    rotate_dataset(ds, ks)
    assert all(ks.status(k) == "retired" for k in manifest_key_ids(ds.manifest))
    assert decrypt_dataset(ds, ks.keyring(include_retired=True)).columns == t.columns


# ------------------------------------------------------------------ scheduled rotation (issue 15)

def _two_datasets(tmp_path, hom_key):
    """Two tracked datasets sharing one Paillier key, published to an embedded store."""
    from offchain.onion.rotation_policy import DatasetIndex
    from offchain.store.client import EmbeddedStore
    store = EmbeddedStore(tmp_path / "store")
    ks = Keystore.create(tmp_path / "keys" / "provider.json", "pw", scrypt_n=2 ** 10)
    index = DatasetIndex.of_keystore(ks.path)
    out = []
    for n in (30, 12):
        t = orders_table(n)
        c = classify(t.schema)
        ring = Keyring()
        ds = encrypt_table(t, default_policy(t.schema, c), c, ring, hom_key=hom_key, chunk_rows=10)
        ks.add_keyring(ring)
        cid = ds.publish(store.add_bytes)
        index.record(ds.manifest, cid, ds.manifest_hash)
        out.append((t, ds, cid))
    return store, ks, index, out


def test_policy_rotates_only_due_datasets_and_spares_shared_keys(tmp_path, hom_key, monkeypatch):
    import json

    import offchain.onion.keys as K
    from offchain.onion.dataset import EncryptedDataset
    from offchain.onion.rotation_policy import due, parse_period, rotate_version
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))
    store, ks, index, [(t1, ds1, cid1), (_t2, _ds2, _cid2)] = _two_datasets(tmp_path, hom_key)
    assert parse_period("30d") == 30 * 86400 and parse_period("2w") == 14 * 86400
    shared = ds1.manifest["hom"]["key"]
    for k in manifest_key_ids(ds1.manifest) - {shared}:      # the first dataset's own keys are 40 days old
        ks.entries[k]["created"] -= 40 * 86400
    assert [d for d, _ in due(index, ks, parse_period("30d"))] == [ds1.dataset_id]
    lines: list[str] = []
    entry = rotate_version(index, ks, store, cid1, lines.append)
    assert any("chunk 3/3" in x for x in lines) and any("tds asset register" in x for x in lines)
    new = EncryptedDataset(json.loads(store.cat(entry["cid"])))
    assert index.current()[ds1.dataset_id]["cid"] == entry["cid"] and index.versions(ds1.dataset_id)[0]["state"] == \
        "retired"
    assert ks.status(shared) == "active"                     # the other dataset still uses it
    assert all(ks.status(k) == "retired" for k in manifest_key_ids(ds1.manifest) - {shared})
    assert due(index, ks, parse_period("30d")) == []
    reopened = Keystore.open(ks.path, "pw")
    assert decrypt_dataset(_full(new, store), reopened.keyring()).columns == t1.columns
    assert decrypt_dataset(_full(ds1, store), reopened.keyring(include_retired=True)).columns == t1.columns


def _full(ds, store):
    from offchain.onion.dataset import EncryptedDataset
    return EncryptedDataset(ds.manifest, {c: store.cat(c) for ch in ds.manifest["chunks"] for c in ch["objects"].values()})


def test_old_keys_are_destroyed_only_when_no_live_grant_needs_them(tmp_path, hom_key, monkeypatch):
    import offchain.onion.keys as K
    from offchain.onion.rotation_policy import destroy_unneeded, rotate_version
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))
    store, ks, index, [(t1, ds1, cid1), (t2, ds2, _cid2)] = _two_datasets(tmp_path, hom_key)
    rotate_version(index, ks, store, cid1)
    old_only = manifest_key_ids(ds1.manifest) - {ds1.manifest["hom"]["key"]}
    lines: list[str] = []
    assert destroy_unneeded(index, ks, None, lines.append) == {} and "could not be asked" in lines[-1]
    asked = []
    assert destroy_unneeded(index, ks, lambda h: asked.append(h) or [5], lines.append) == {}
    assert asked == [ds1.manifest_hash] and "live grant(s) 5" in lines[-1]
    assert decrypt_dataset(_full(ds1, store), ks.keyring(include_retired=True)).columns == t1.columns
    gone = destroy_unneeded(index, ks, lambda h: [], lines.append)   # the grant expired / was revoked
    assert set(gone[cid1]) == old_only and index.versions(ds1.dataset_id)[0]["state"] == "destroyed"
    reopened = Keystore.open(ks.path, "pw")
    assert ds1.manifest["hom"]["key"] in reopened.entries           # still the second dataset's
    with pytest.raises(KeyNotFound):
        decrypt_dataset(_full(ds1, store), reopened.keyring(include_retired=True))
    assert decrypt_dataset(_full(ds2, store), reopened.keyring()).columns == t2.columns


def test_cli_rotate_every_applies_the_policy_and_keeps_keys_without_a_chain(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    import offchain.onion.keys as K
    from tds.cli.data import data
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))
    monkeypatch.setenv("TDS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TDS_IPFS_API", raising=False)
    monkeypatch.delenv("TDS_RPC_URL", raising=False)
    monkeypatch.setenv("TDS_KEYSTORE_PASSWORD", "pw")
    f = tmp_path / "orders.csv"
    f.write_text("customer_id,amount,qty\nc1,10.50,1\nc2,3.25,2\nc3,4.00,2\n")
    runner = CliRunner()
    res = runner.invoke(data, ["encrypt", str(f), "--yes", "--processes", "1", "--min-group-size", "2"])
    assert res.exit_code == 0, res.output
    cid = json.loads(res.stdout)["manifest_cid"]
    res = runner.invoke(data, ["rotate", "--rotate-every", "30d"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rotated"] == []           # keys made just now: not due
    res = runner.invoke(data, ["rotate", "--rotate-every", "1s", "--destroy-old"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert len(body["rotated"]) == 1 and body["rotated"][0] != cid and body["destroyed"] == {}
    assert "no key is destroyed" in res.stderr and "due" in res.stderr
    index = json.loads((tmp_path / "home" / "keys" / "datasets.json").read_text())
    assert [v["state"] for v in next(iter(index["datasets"].values()))] == ["retired", "current"]
    assert not (tmp_path / "home" / "keys" / "rotation.lock").exists()
    res = runner.invoke(data, ["rotate", "--rotate-every", "soon"])
    assert res.exit_code != 0 and "rotation period" in res.output
