"""Rotation keeps a dataset's cryptography profile; a keyring following its keystore file sees
another process's rotation, keeps its keys when a changed file does not open, and a key service
follows only a new version that extends the one it serves."""
from __future__ import annotations

import json
import logging

import pytest

from chain.crypto_profile import CryptoProfileMismatch
from offchain.errors import KeystoreLocked
from offchain.ingest.classification import classify
from offchain.onion.dataset import check_profile, encrypt_table, manifest_hash
from offchain.onion.keys import Keyring
from offchain.onion.keystore import Keystore
from offchain.onion.keystore_watch import WatchedKeyring, follow_rotated_versions
from offchain.onion.policy import default_policy
from offchain.onion.rotation import decrypt_dataset, manifest_key_ids, rotate_dataset
from offchain.onion.rotation_policy import DatasetIndex

from offchain_tables import orders_table


@pytest.fixture
def small_keys(monkeypatch):
    import offchain.onion.keys as K
    import offchain.onion.keystore as KS
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))
    import did.keystore as DK
    monkeypatch.setattr(KS, "DEFAULT_SCRYPT_N", 2 ** 10)
    monkeypatch.setattr(DK, "DEFAULT_SCRYPT_N", 2 ** 10)


def made(tmp_path, hom_key, profile: str):
    t = orders_table(20)
    c = classify(t.schema)
    ring = Keyring()
    ds = encrypt_table(t, default_policy(t.schema, c), c, ring, hom_key=hom_key, profile=profile)
    ks = Keystore.create(tmp_path / "keys" / "provider.json", "pw", scrypt_n=2 ** 10)
    ks.add_keyring(ring)
    return t, ds, ks


@pytest.mark.parametrize("made_as, in_force", [("sm", "default"), ("default", "sm")])
def test_rotation_keeps_the_recorded_profile(tmp_path, hom_key, small_keys, monkeypatch, made_as, in_force):
    t, ds, ks = made(tmp_path, hom_key, made_as)
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", in_force)         # rotated where the other profile is configured
    new = rotate_dataset(ds, ks)
    assert new.manifest.get("crypto_profile", "default") == made_as
    ring = ks.keyring()
    assert {ring.get(k).profile for k in manifest_key_ids(new.manifest) if k.startswith(("rnd:", "det:"))} == {made_as}
    assert decrypt_dataset(new, ring).columns == t.columns
    with pytest.raises(CryptoProfileMismatch) as exc:          # and it is still refused where it does not belong
        check_profile(new.manifest)
    assert (exc.value.expected, exc.value.found) == (in_force, made_as)


def test_watched_keyring_follows_the_file(tmp_path, hom_key, small_keys, caplog):
    t, ds, ks = made(tmp_path, hom_key, "default")
    watched = WatchedKeyring(ks.path, "pw")
    assert set(watched.keys) == set(ks.entries) and watched.refresh() and watched.reloads == 0
    calls = []
    watched.on_reload(calls.append)
    other = Keystore.open(ks.path, "pw")                      # another process rotates
    new = rotate_dataset(ds, other, destroy_old=True)
    assert watched.refresh() and watched.reloads == 1 and calls == [watched]
    assert manifest_key_ids(new.manifest) <= set(watched.keys)
    assert not (manifest_key_ids(ds.manifest) - manifest_key_ids(new.manifest)) & set(watched.keys)
    assert decrypt_dataset(new, watched).columns == t.columns

    held = dict(watched.keys)
    Keystore.create(tmp_path / "other.json", "another passphrase", scrypt_n=2 ** 10).path.replace(ks.path)
    with caplog.at_level(logging.WARNING, logger="tds.keystore"):
        assert watched.refresh()                              # changed, but does not open: keys kept
    assert watched.keys == held and watched.reloads == 1 and "did not open" in caplog.text
    with pytest.raises(KeystoreLocked, match="no keystore"):
        WatchedKeyring(tmp_path / "missing.json", "pw")
    with pytest.raises(KeystoreLocked, match="wrong passphrase"):
        WatchedKeyring(ks.path, "pw")                         # now another passphrase's file


def test_key_service_follows_only_a_rotation_of_what_it_serves(tmp_path, hom_key, small_keys):
    t, ds, ks = made(tmp_path, hom_key, "default")
    objects: dict[str, bytes] = {}

    def add(blob: bytes) -> str:
        objects[f"obj{len(objects)}"] = blob
        return f"obj{len(objects) - 1}"

    index = DatasetIndex.of_keystore(ks.path)
    index.record(ds.manifest, add(ds.manifest_bytes), ds.manifest_hash)
    served = {ds.dataset_id: ds.manifest}
    anchored: list[str] = []
    listener = follow_rotated_versions(served, index.path, objects.__getitem__, lambda h: h in anchored)

    small = orders_table(5)
    c = classify(small.schema)
    stray = encrypt_table(small, default_policy(small.schema, c), c, Keyring(), hom_key=hom_key,
                          dataset_id=ds.dataset_id)           # same id, but not a rotation of the served version
    anchored.append(stray.manifest_hash)
    index.record(stray.manifest, add(stray.manifest_bytes), stray.manifest_hash)
    listener(None)  # type: ignore[arg-type]
    assert served[ds.dataset_id] is ds.manifest

    new = rotate_dataset(ds, ks)
    index.record(new.manifest, add(new.manifest_bytes), new.manifest_hash)
    listener(None)  # type: ignore[arg-type]
    assert served[ds.dataset_id] is ds.manifest              # a rotation, but nobody anchored it
    anchored.append(new.manifest_hash)
    listener(None)  # type: ignore[arg-type]
    assert manifest_hash(served[ds.dataset_id]) == new.manifest_hash
    assert json.loads(objects[index.current()[ds.dataset_id]["cid"]]) == served[ds.dataset_id]


def test_cli_rotation_without_a_reachable_chain_leaves_the_anchor_pending(tmp_path, small_keys, monkeypatch):
    from click.testing import CliRunner

    from chain.node import free_port
    from tds.cli.data import data
    monkeypatch.setenv("TDS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TDS_IPFS_API", raising=False)
    monkeypatch.setenv("TDS_RPC_URL", f"http://127.0.0.1:{free_port()}")   # nothing listens there
    monkeypatch.setenv("TDS_KEYSTORE_PASSWORD", "pw")
    f = tmp_path / "orders.csv"
    f.write_text("customer_id,amount,qty\nc1,10.50,1\nc2,3.25,2\nc3,4.00,2\n")
    runner = CliRunner()
    res = runner.invoke(data, ["encrypt", str(f), "--yes", "--processes", "1", "--min-group-size", "2"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(data, ["rotate", json.loads(res.stdout)["manifest_cid"], "--dev-account", "3"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["anchors"] == {body["rotated"][0]: "pending"} and "cannot reach the chain" in res.stderr
    index = json.loads((tmp_path / "home" / "keys" / "datasets.json").read_text())
    assert "anchors" not in next(iter(index["datasets"].values()))[-1]
