"""How a participant command signs: from the participant's own key, on this machine.

One of

* ``--identity NAME`` — a ``tds id`` identity (its Ethereum keystore, and its DID keys when the
  command needs them, e.g. to open a sealed result);
* ``--keystore FILE`` — any Ethereum keystore v3 JSON (geth, MetaMask export, ``tds id``);
* ``--dev-account N`` — funded dev account N of the embedded chain (refused on any other chain).

The password comes from ``$TDS_KEYSTORE_PASSWORD`` or an interactive prompt, never from the
command line. Keys are decrypted only when a command is about to sign, after its other checks.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
from eth_account.signers.local import LocalAccount

from chain.config import KEYSTORE_PASSWORD_ENV, keystore_password
from tds.cli.refusals import WalletError

PASSWORD_ENV = KEYSTORE_PASSWORD_ENV
DEV_CHAIN_ID = 31337  # anvil's chain id: the only chain where the well-known dev keys may sign
DEV_ACCOUNTS = 10


@dataclass(frozen=True)
class WalletChoice:
    """The signing key a command was told to use (not yet decrypted)."""

    identity: str | None = None
    keystore: Path | None = None
    dev_account: int | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.identity, self.keystore, self.dev_account))

    def describe(self) -> str:
        if self.identity is not None:
            return f"identity {self.identity!r}"
        if self.keystore is not None:
            return f"keystore {self.keystore}"
        return f"dev account {self.dev_account}"

    def address(self) -> str | None:
        """The account's address without decrypting anything (None for a keystore without one)."""
        from eth_utils import is_address, to_checksum_address

        if self.dev_account is not None:
            from chain.accounts import dev_account

            return dev_account(self.dev_account).address
        path = self._keystore_path()
        raw = _read_json(path).get("address")
        return to_checksum_address(raw) if isinstance(raw, str) and is_address(raw) else None

    def _keystore_path(self) -> Path:
        if self.identity is not None:
            from did.identity import ETH_FILE, check_name

            return _identities_root() / check_name(self.identity) / ETH_FILE
        assert self.keystore is not None
        return self.keystore

    def account(self, chain_id: int) -> LocalAccount:
        """Decrypt the key (asking for the password if the environment has none)."""
        if not self.given:
            raise WalletError("this command signs a transaction: choose a wallet with --identity NAME, "
                              "--keystore FILE or (embedded chain only) --dev-account N")
        if self.dev_account is not None:
            return dev_key(self.dev_account, chain_id)
        from did.errors import KeystoreCorrupt, WrongPassword
        from did.keystore import decrypt_eth_key

        path = self._keystore_path()
        keystore = _read_json(path)
        try:
            return decrypt_eth_key(keystore, password(f"password for {self.describe()}"))
        except WrongPassword:
            raise WalletError(f"wrong password for {self.describe()} ({path}); set {PASSWORD_ENV} to the right "
                              f"one or type it at the prompt") from None
        except KeystoreCorrupt as exc:
            raise WalletError(f"{path} is not a usable Ethereum keystore: {exc}") from None

    def identity_keys(self) -> Any:
        """The full DID identity (needs --identity): DID and key-agreement keys as well."""
        if self.identity is None:
            raise WalletError("this needs your DID keys, not only a wallet: pass --identity NAME "
                              "(a 'tds id new' identity)")
        from did.errors import WrongPassword
        from did.identity import Identity

        try:
            return Identity.load(_identities_root(), self.identity, password(f"password for {self.describe()}"))
        except WrongPassword:
            raise WalletError(f"wrong password for {self.describe()}; set {PASSWORD_ENV} to the right one or "
                              f"type it at the prompt") from None


def dev_key(index: int, chain_id: int) -> LocalAccount:
    if chain_id != DEV_CHAIN_ID:
        raise WalletError(f"--dev-account signs with anvil's public test keys; refused on chain {chain_id} "
                          f"(use --identity or --keystore)")
    if not 0 <= index < DEV_ACCOUNTS:
        raise WalletError(f"--dev-account {index}: the embedded chain has dev accounts 0 to {DEV_ACCOUNTS - 1}")
    from chain.accounts import dev_account

    return dev_account(index)


def password(prompt: str) -> str:
    value = keystore_password()
    if value is not None:
        return value
    return click.prompt(prompt, hide_input=True, err=True)


def _identities_root() -> Path:
    from chain.config import load_settings

    return load_settings().home / "identities"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise WalletError(f"no keystore at {path}; create one with 'tds id new NAME' or pass --keystore FILE") \
            from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WalletError(f"{path} is not a keystore JSON file: {exc}") from None
    if not isinstance(obj, dict):
        raise WalletError(f"{path} is not a keystore JSON file")
    return obj


def wallet_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--identity / --keystore / --dev-account``; the command receives ``wallet: WalletChoice``."""

    options = [
        click.option("--identity", "w_identity", metavar="NAME", default=None,
                     help="Sign as the 'tds id' identity NAME (password: $TDS_KEYSTORE_PASSWORD or prompt)."),
        click.option("--keystore", "w_keystore", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Sign with this Ethereum keystore v3 file."),
        click.option("--dev-account", "w_dev", type=int, default=None, metavar="N",
                     help="Sign with funded dev account N (embedded chain only)."),
    ]

    def wrapper(*args: Any, w_identity: str | None, w_keystore: Path | None, w_dev: int | None, **kwargs: Any) -> Any:
        chosen = [n for n, v in (("--identity", w_identity), ("--keystore", w_keystore), ("--dev-account", w_dev))
                  if v is not None]
        if len(chosen) > 1:
            raise WalletError(f"choose one wallet, not {' and '.join(chosen)}")
        return fn(*args, wallet=WalletChoice(w_identity, w_keystore, w_dev), **kwargs)

    wrapper = functools.wraps(fn)(wrapper)
    for opt in reversed(options):
        wrapper = opt(wrapper)
    return wrapper
