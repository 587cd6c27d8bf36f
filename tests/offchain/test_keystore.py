from __future__ import annotations

import pytest

from offchain.errors import KeyNotFound, KeystoreLocked
from offchain.onion.keys import Keyring, key_from_dict, key_to_dict, new_det, new_order, new_rnd
from offchain.onion.keystore import Keystore


def test_keystore_encrypted_at_rest(tmp_path, hom_key):
    path = tmp_path / "ks.json"
    ks = Keystore.create(path, "correct horse", scrypt_n=2 ** 10)
    det = new_det()
    ids = ks.add_keyring(Keyring({k.key_id: k for k in (det, new_rnd(), new_order(), hom_key)}))
    raw = path.read_text()
    assert det.key.hex() not in raw and hex(hom_key.p)[2:] not in raw
    again = Keystore.open(path, "correct horse")
    assert set(again.entries) == set(ids)
    assert again.get(det.key_id) == det
    assert again.get(hom_key.key_id).decrypt(hom_key.encrypt(3)) == 3
    with pytest.raises(KeystoreLocked):
        Keystore.open(path, "wrong")
    with pytest.raises(FileExistsError):
        Keystore.create(path, "x")


def test_retire_and_destroy(tmp_path):
    ks = Keystore.create(tmp_path / "k.json", "pw", scrypt_n=2 ** 10)
    a, b = ks.add(new_rnd()), ks.add(new_rnd())
    ks.retire(a)
    assert ks.status(a) == "retired" and a not in ks.keyring() and a in ks.keyring(include_retired=True)
    ks.destroy(b)
    with pytest.raises(KeyNotFound):
        Keystore.open(tmp_path / "k.json", "pw").get(b)


def test_tampered_keystore(tmp_path):
    path = tmp_path / "k.json"
    Keystore.create(path, "pw", scrypt_n=2 ** 10).add(new_rnd())
    path.write_text(path.read_text().replace('"ciphertext": "', '"ciphertext": "00'))
    with pytest.raises(KeystoreLocked):
        Keystore.open(path, "pw")


def test_key_dict_roundtrip():
    for k in (new_rnd(), new_det(), new_order(32)):
        assert key_from_dict(key_to_dict(k)) == k
    ring = Keyring()
    with pytest.raises(KeyNotFound):
        ring.det(ring.add(new_rnd()))
