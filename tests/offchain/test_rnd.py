import secrets

import pytest

from offchain.errors import KeyAuthenticationError
from offchain.onion.rnd import RndKey


def test_rnd_is_randomised_and_bound_to_aad():
    k = RndKey(secrets.token_bytes(32))
    a, b = k.seal(b"chunk", b"hdr"), k.seal(b"chunk", b"hdr")
    assert a != b and k.open(a, b"hdr") == b"chunk"
    with pytest.raises(KeyAuthenticationError):
        k.open(a, b"other header")
    with pytest.raises(KeyAuthenticationError):
        RndKey(secrets.token_bytes(32)).open(a, b"hdr")
