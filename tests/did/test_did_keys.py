import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from did import _didkit
from did.errors import UnknownDid
from did.keys import (b58decode, b58encode, did_from_ed25519, ed25519_from_did, ed25519_jwk, raw_public,
                      verification_method_id, verify_ed25519)


@pytest.mark.parametrize("data", [b"", b"\0", b"\0\0abc", bytes(range(40))])
def test_base58_round_trip(data):
    assert b58decode(b58encode(data)) == data


def test_did_key_matches_didkit_and_resolves_offline():
    key = Ed25519PrivateKey.generate()
    jwk = ed25519_jwk(key)
    did = did_from_ed25519(key.public_key())
    assert did == _didkit.key_to_did(jwk)
    assert verification_method_id(did) == _didkit.verification_method(jwk)
    assert raw_public(ed25519_from_did(did)) == raw_public(key.public_key())
    doc = _didkit.resolve(did)
    assert doc["id"] == did
    assert verify_ed25519(did, key.sign(b"m"), b"m")
    assert not verify_ed25519(did, key.sign(b"m"), b"n")


@pytest.mark.parametrize("bad", ["did:web:example.com", "did:key:z6LSabc", "did:key:zO0I", 42, "did:key:z"])
def test_unresolvable_dids_refused(bad):
    with pytest.raises(UnknownDid):
        ed25519_from_did(bad)
