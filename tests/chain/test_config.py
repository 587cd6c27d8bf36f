"""Configuration: one environment-variable name for keystore passwords, the old one deprecated."""
from __future__ import annotations

import warnings

import pytest

from chain.config import keystore_password


def test_keystore_password_reads_the_one_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDS_KEYSTORE_PASSWORD", "new")
    monkeypatch.setenv("TDS_KEYSTORE_PASSPHRASE", "old")
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the new name alone: no warning
        assert keystore_password() == "new"


def test_former_name_still_works_with_a_deprecation_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TDS_KEYSTORE_PASSWORD", raising=False)
    monkeypatch.setenv("TDS_KEYSTORE_PASSPHRASE", "old")
    with pytest.warns(DeprecationWarning, match="set TDS_KEYSTORE_PASSWORD instead"):
        assert keystore_password() == "old"


def test_neither_name_set_means_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TDS_KEYSTORE_PASSWORD", raising=False)
    monkeypatch.delenv("TDS_KEYSTORE_PASSPHRASE", raising=False)
    assert keystore_password() is None
