from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from offchain.errors import KeyAuthenticationError
from offchain.onion.paillier import PaillierPrivateKey, generate_keypair


@given(st.lists(st.integers(min_value=0, max_value=2 ** 200), min_size=1, max_size=8))
@settings(max_examples=25, deadline=None)
def test_homomorphic_sum(hom_key, values):
    pk = hom_key.public
    cts = [hom_key.encrypt(v) if i % 2 else pk.encrypt(v) for i, v in enumerate(values)]
    assert hom_key.decrypt(pk.sum(cts)) == sum(values) % pk.n
    assert hom_key.decrypt(pk.mul_const(cts[0], 3)) == 3 * values[0] % pk.n


def test_randomized_never_repeats(hom_key):
    cts = {int(hom_key.encrypt(7)) for _ in range(50)}
    assert len(cts) == 50
    assert all(hom_key.decrypt(c) == 7 for c in cts)


def test_crt_and_public_paths_agree(hom_key):
    pk = hom_key.public
    assert hom_key.decrypt(hom_key.encrypt(12345) * pk.encrypt(5) % pk.n2) == 12350


def test_serialisation(hom_key):
    again = PaillierPrivateKey.from_dict(hom_key.to_dict())
    c = hom_key.encrypt(99)
    assert again.decrypt(hom_key.public.from_bytes(hom_key.public.to_bytes(c))) == 99
    assert again.key_id == hom_key.key_id and hom_key.key_id.startswith("hom:")


def test_invalid_ciphertext_refused(hom_key):
    pk = hom_key.public
    for bad in (0, pk.n2, pk.n * 5):
        with pytest.raises(KeyAuthenticationError):
            hom_key.decrypt(bad)


def test_key_sizes():
    k = generate_keypair(768, exponent_bits=128)
    assert k.public.bits == 768
    assert k.decrypt(k.encrypt(5)) == 5
    with pytest.raises(ValueError):
        generate_keypair(256)


@given(st.integers(min_value=0, max_value=2 ** 500))
@settings(max_examples=25, deadline=None)
def test_bounded_decryption_uses_one_prime(hom_key, m):
    c = hom_key.encrypt(m)
    assert hom_key.decrypt(c, bound_bits=501) == m == hom_key.decrypt(c)


def test_bound_at_or_above_the_prime_falls_back_to_crt(hom_key):
    m = hom_key.public.n - 3                     # needs both halves
    c = hom_key.encrypt(m)
    assert hom_key.decrypt(c, bound_bits=hom_key.public.bits) == m
