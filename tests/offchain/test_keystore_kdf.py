"""KDF cost of the provider's data keystore (issue 12, item 21): scrypt N = 2^17 by default, lower only
as a warned test-only override; absurd parameters in a file refused before any key is derived,
naming the file and the parameter; a file below the floor opens with a warning and is raised to
the default cost when next saved."""
from __future__ import annotations

import json

import pytest

from did.keystore import InsecureKdfWarning
from offchain.errors import KeystoreLocked
from offchain.onion import keystore as data_keystore
from offchain.onion.keys import new_rnd
from offchain.onion.keystore import KdfParametersRefused, Keystore


def _weak(path) -> Keystore:
    with pytest.warns(InsecureKdfWarning, match="test-only"):
        return Keystore.create(path, "pw", scrypt_n=2 ** 10)


def test_default_cost_is_the_floor(tmp_path):
    ks = Keystore.create(tmp_path / "ks.json", "pw")
    assert ks.scrypt_n == 2 ** 17
    assert json.loads((tmp_path / "ks.json").read_text())["kdf"]["n"] == 2 ** 17
    with pytest.raises(ValueError, match="power of two"):
        Keystore.create(tmp_path / "other.json", "pw", scrypt_n=2 ** 9)


@pytest.mark.parametrize("change, parameter", [
    ({"n": 2 ** 23}, "n"), ({"n": 1000}, "n"), ({"r": 64, "p": 2}, "r*p"), ({"n": 2 ** 21, "r": 8}, "n*r"),
    ({"name": "argon2id"}, "kdf"), ({"salt": "00"}, "salt"), ({"n": True}, "n"),
])
def test_absurd_parameters_refused_before_any_work(tmp_path, monkeypatch, change, parameter):
    path = tmp_path / "ks.json"
    _weak(path).add(new_rnd())
    doc = json.loads(path.read_text())
    doc["kdf"].update(change)
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(data_keystore, "_kek", lambda *a: pytest.fail("a key was derived before the check"))
    with pytest.raises(KdfParametersRefused) as info:
        Keystore.open(path, "pw")
    err = info.value
    assert err.parameter == parameter and err.path == path and str(path) in str(err)
    assert isinstance(err, KeystoreLocked)  # callers handling a locked keystore still catch it


def test_below_the_floor_opens_with_a_warning_and_is_raised_on_save(tmp_path):
    path = tmp_path / "ks.json"
    key_id = _weak(path).add(new_rnd())
    with pytest.warns(InsecureKdfWarning, match="below the floor"):
        ks = Keystore.open(path, "pw")
    assert ks.get(key_id) and json.loads(path.read_text())["kdf"]["n"] == 2 ** 10  # opening changes nothing
    ks.retire(key_id)  # the next save re-encrypts at the default cost
    assert json.loads(path.read_text())["kdf"]["n"] == 2 ** 17
    assert Keystore.open(path, "pw").status(key_id) == "retired"
