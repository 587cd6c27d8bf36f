"""Shared fixtures: small (1024-bit) Paillier keys — correctness, not security, is tested here."""
from __future__ import annotations

import pytest

from offchain.onion.keys import new_hom


@pytest.fixture(scope="session")
def hom_key():
    return new_hom(1024)


@pytest.fixture(scope="session")
def other_hom_key():
    return new_hom(1024)
