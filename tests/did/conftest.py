"""Fixtures of the identity tests: real keys (fast scrypt), an operator and two participants."""
from __future__ import annotations

import pytest

from did import keystore
from did.identity import Identity


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keystores in tests use a low scrypt work factor (the format is unchanged)."""
    monkeypatch.setattr(keystore, "DEFAULT_SCRYPT_N", 2 ** 10)


@pytest.fixture(scope="module")
def operator() -> Identity:
    return Identity.create("operator")


@pytest.fixture(scope="module")
def alice() -> Identity:
    return Identity.create("alice")


@pytest.fixture(scope="module")
def bob() -> Identity:
    return Identity.create("bob")
