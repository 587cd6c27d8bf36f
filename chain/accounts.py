"""Local signing accounts. On the embedded chain, the ten funded dev accounts of anvil's
well-known mnemonic stand in for participants' wallets; never use them on a real network."""
from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.node import DEV_MNEMONIC

Account.enable_unaudited_hdwallet_features()


def dev_account(index: int) -> LocalAccount:
    """The ``index``-th funded account of the embedded node (m/44'/60'/0'/0/index)."""
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def dev_accounts(count: int = 10) -> list[LocalAccount]:
    return [dev_account(i) for i in range(count)]
