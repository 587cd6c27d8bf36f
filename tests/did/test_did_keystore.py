import json

import pytest
from eth_account import Account

from did.errors import IdentityExists, IdentityNotFound, KeystoreCorrupt, WrongPassword
from did.identity import ETH_FILE, KEYS_FILE, Identity, list_identities, read_public
from did.keystore import decrypt_secrets, encrypt_secrets


def test_save_and_load_round_trip(tmp_path):
    ident = Identity.create("carol")
    ident.binding_proof(31337)
    ident.save(tmp_path, "pw")
    back = Identity.load(tmp_path, "carol", "pw")
    assert (back.did, back.address, back.x25519_public) == (ident.did, ident.address, ident.x25519_public)
    assert back.binding == ident.binding
    assert list_identities(tmp_path) == ["carol"]
    assert read_public(tmp_path, "carol")["did"] == ident.did


def test_ethereum_keystore_is_standard_v3(tmp_path):
    ident = Identity.create("dave")
    ident.save(tmp_path, "pw")
    ks = json.loads((tmp_path / "dave" / ETH_FILE).read_text())
    assert ks["version"] == 3 and ks["crypto"]["kdf"] == "scrypt"
    assert ks["address"].lower() == ident.address[2:].lower()
    assert Account.from_key(Account.decrypt(ks, "pw")).address == ident.address  # any v3 reader opens it
    assert (tmp_path / "dave" / KEYS_FILE).stat().st_mode & 0o077 == 0
    assert ident.jwk.split('"d":')[1][:10] not in (tmp_path / "dave" / KEYS_FILE).read_text()


def test_wrong_password_refused(tmp_path):
    Identity.create("erin").save(tmp_path, "right")
    with pytest.raises(WrongPassword):
        Identity.load(tmp_path, "erin", "wrong")


def test_did_keys_wrong_password_and_tamper():
    blob = encrypt_secrets({"k": b"secret"}, "pw", label="x")
    assert decrypt_secrets(blob, "pw") == {"k": b"secret"}
    with pytest.raises(WrongPassword):
        decrypt_secrets(blob, "nope")
    with pytest.raises(WrongPassword):  # header is authenticated: relabelling breaks the tag
        decrypt_secrets({**blob, "label": "y"}, "pw")
    with pytest.raises(KeystoreCorrupt):
        decrypt_secrets({**blob, "n": 2 ** 30}, "pw")
    with pytest.raises(KeystoreCorrupt):
        decrypt_secrets({"format": "x"}, "pw")


def test_existing_and_missing_identities(tmp_path):
    Identity.create("frank").save(tmp_path, "pw")
    with pytest.raises(IdentityExists):
        Identity.create("frank").save(tmp_path, "pw")
    with pytest.raises(IdentityNotFound):
        Identity.load(tmp_path, "nobody", "pw")
    with pytest.raises(IdentityNotFound):
        Identity.create("../evil")


def test_mixed_up_files_detected(tmp_path):
    Identity.create("g1").save(tmp_path, "pw")
    Identity.create("g2").save(tmp_path, "pw")
    (tmp_path / "g1" / KEYS_FILE).write_text((tmp_path / "g2" / KEYS_FILE).read_text())
    with pytest.raises(KeystoreCorrupt):
        Identity.load(tmp_path, "g1", "pw")
