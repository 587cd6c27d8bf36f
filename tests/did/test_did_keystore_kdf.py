"""KDF cost of the identity keystores (issue 12, item 21): a floor when creating, a ceiling when
opening, checked before any key is derived, with errors that name the file and the parameter."""
from __future__ import annotations

import json

import pytest
from eth_account import Account

from did import keystore
from did.errors import KdfParametersRefused, KeystoreCorrupt
from did.identity import ETH_FILE, KEYS_FILE, Identity
from did.keystore import InsecureKdfWarning, decrypt_eth_key, decrypt_secrets, encrypt_eth_key, encrypt_secrets


@pytest.fixture
def no_work(monkeypatch):
    """``no_work()`` makes deriving a key fail the test: refusals must come before any scrypt/PBKDF2 work."""
    def boom(*_a, **_k):
        raise AssertionError("a key was derived before the parameters were checked")

    def arm() -> None:
        monkeypatch.setattr(keystore, "_kdf", boom)
        monkeypatch.setattr(keystore.Account, "decrypt", boom)

    return arm


def test_new_keystores_cost_at_least_the_floor(monkeypatch):
    monkeypatch.undo()  # drop this folder's fast-scrypt fixture: the real default is under test
    assert keystore.DEFAULT_SCRYPT_N == keystore.MIN_SCRYPT_N == 2 ** 17
    assert encrypt_secrets({"k": b"s"}, "pw", label="x")["n"] == 2 ** 17
    account = Account.create()
    assert encrypt_eth_key(account, "pw")["crypto"]["kdfparams"]["n"] == 2 ** 17


def test_a_low_cost_is_an_explicit_test_only_override():
    with pytest.warns(InsecureKdfWarning, match="test-only"):
        blob = encrypt_secrets({"k": b"s"}, "pw", label="x", scrypt_n=2 ** 10)
    assert blob["n"] == 2 ** 10
    for bad in (2 ** 9, 3000, 2 ** 23):
        with pytest.raises(ValueError, match="power of two"):
            encrypt_secrets({"k": b"s"}, "pw", label="x", scrypt_n=bad)


def _secrets_blob() -> dict:
    with pytest.warns(InsecureKdfWarning):
        return encrypt_secrets({"k": b"secret"}, "pw", label="did:key:zX", scrypt_n=2 ** 10)


def _eth_keystore(**kdfparams) -> dict:
    with pytest.warns(InsecureKdfWarning):
        ks = encrypt_eth_key(Account.create(), "pw", scrypt_n=2 ** 10)
    ks["crypto"]["kdfparams"].update(kdfparams)
    return ks


@pytest.mark.parametrize("change, parameter", [
    ({"n": 2 ** 23}, "n"), ({"n": 3000}, "n"), ({"n": "1024"}, "n"), ({"r": 16, "p": 8}, "r*p"),
    ({"n": 2 ** 21, "r": 8, "p": 1}, "n*r"), ({"kdf": "argon2id"}, "kdf"), ({"salt": "AAAA"}, "salt"),
])
def test_absurd_did_key_file_refused_before_any_work(no_work, change, parameter):
    blob = {**_secrets_blob(), **change}
    no_work()
    with pytest.raises(KdfParametersRefused) as info:
        decrypt_secrets(blob, "pw", source="/home/u/.tds/identities/x/did-keys.json")
    err = info.value
    assert err.parameter == parameter and err.source == "/home/u/.tds/identities/x/did-keys.json"
    assert "/home/u/.tds/identities/x/did-keys.json" in str(err) and parameter in str(err)
    assert isinstance(err, KeystoreCorrupt)  # callers catching the old error still catch it


@pytest.mark.parametrize("change, parameter", [
    ({"n": 2 ** 30}, "n"), ({"n": 2 ** 22, "r": 8}, "n*r"), ({"dklen": 64}, "dklen"), ({"p": 65, "r": 1}, "r*p"),
    ({"salt": "zz"}, "salt"),
])
def test_absurd_ethereum_keystore_refused_before_any_work(no_work, change, parameter):
    ks = _eth_keystore(**change)
    no_work()
    with pytest.raises(KdfParametersRefused) as info:
        decrypt_eth_key(ks, "pw", source="wallet.json")
    assert info.value.parameter == parameter and str(info.value).startswith("wallet.json: ")


def test_unknown_kdf_cipher_and_pbkdf2_ceiling_refused(no_work):
    unknown, cipher, rounds = _eth_keystore(), _eth_keystore(), _eth_keystore()
    no_work()
    unknown["crypto"]["kdf"] = "argon2id"
    with pytest.raises(KdfParametersRefused, match="kdf='argon2id'"):
        decrypt_eth_key(unknown, "pw")
    cipher["crypto"]["cipher"] = "aes-256-cbc"
    with pytest.raises(KdfParametersRefused, match="cipher"):
        decrypt_eth_key(cipher, "pw")
    ks = rounds
    ks["crypto"]["kdf"] = "pbkdf2"
    ks["crypto"]["kdfparams"] = {"c": 10 ** 9, "dklen": 32, "prf": "hmac-sha256", "salt": "ab" * 16}
    with pytest.raises(KdfParametersRefused, match="c=1000000000"):
        decrypt_eth_key(ks, "pw")


def test_below_the_floor_opens_with_a_warning():
    """geth's light wallets use N=2^12: such a file still opens (its owner is not locked out), with a warning."""
    account = Account.create()
    with pytest.warns(InsecureKdfWarning):
        light = encrypt_eth_key(account, "pw", scrypt_n=2 ** 12)
    with pytest.warns(InsecureKdfWarning, match="below the floor"):
        assert decrypt_eth_key(light, "pw").address == account.address
    pbkdf2 = Account.encrypt(account.key, "pw", kdf="pbkdf2", iterations=1000)
    with pytest.warns(InsecureKdfWarning, match="PBKDF2"):
        assert decrypt_eth_key(pbkdf2, "pw").address == account.address
    with pytest.warns(InsecureKdfWarning, match="below the floor"):
        assert decrypt_secrets(_secrets_blob(), "pw") == {"k": b"secret"}


def test_identity_with_an_absurd_key_file_is_refused(tmp_path, no_work):
    with pytest.warns(InsecureKdfWarning):
        Identity.create("mallet").save(tmp_path, "pw")
    path = tmp_path / "mallet" / ETH_FILE
    ks = json.loads(path.read_text())
    ks["crypto"]["kdfparams"]["n"] = 2 ** 40
    path.write_text(json.dumps(ks))
    no_work()
    with pytest.raises(KdfParametersRefused, match="Ethereum keystore of 0x"):
        Identity.load(tmp_path, "mallet", "pw")
    assert (tmp_path / "mallet" / KEYS_FILE).exists()
