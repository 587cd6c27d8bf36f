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
