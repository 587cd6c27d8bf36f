"""Sign locally, send, wait for the receipt: every participant transacts from its own key."""
from __future__ import annotations

import threading
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import TxReceipt

from web3.exceptions import ContractCustomError, TimeExhausted, TransactionNotFound

from chain.revert import describe_revert
from chain.errors import TdsError


class TransactionFailed(TdsError):
    """A mined transaction reverted, or one could not be sent."""

    def __init__(self, message: str, receipt: TxReceipt | None = None):
        super().__init__(message)
        self.receipt = receipt


DROP_CHECK_S = 2.0  # how often a transaction still without a receipt is looked up


class TransactionDropped(TdsError, ConnectionError):
    """A sent transaction vanished from the node (it restarted without it): re-read the chain
    and decide again. A ``ConnectionError``, so retry loops treat it as transient."""


class Reverted(TransactionFailed):
    """The contract refused the call with a custom error (``ErrorName(arg=value, ...)``)."""

    def __init__(self, description: str, data: str):
        super().__init__(f"reverted: {description}")
        self.error = description.split("(", 1)[0]
        self.data = data


class Sender:
    """Sends transactions for one account, tracking its nonce locally (safe across threads)."""

    def __init__(self, w3: Web3, account: LocalAccount, *, poll: float = 0.02, timeout: float = 120.0):
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.poll = poll
        self.timeout = timeout
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._chain_id: int | None = None
        self._fee_cache: tuple[float, dict[str, int]] | None = None

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")
        n = self._nonce
        self._nonce += 1
        return n

    def resync(self) -> None:
        """Forget the cached nonce (after an external transaction or a node restart)."""
        with self._lock:
            self._nonce = None

    def send(self, fn: ContractFunction | ContractConstructor, *, value: int = 0, gas: int | None = None) -> TxReceipt:
        """Build, sign and send ``fn``; return its receipt or raise :class:`TransactionFailed`."""
        with self._lock:
            if self._chain_id is None:
                self._chain_id = self.w3.eth.chain_id
            params: dict[str, Any] = {"from": self.address, "value": value, "chainId": self._chain_id}
            if gas is None:
                try:
                    gas = int(fn.estimate_gas(params) * 1.2) + 20_000  # reverts surface here
                except ContractCustomError as exc:
                    raise Reverted(describe_revert(exc.data), exc.data) from None
            params["gas"] = gas
            params.update(self._fees())
            for attempt in (1, 2):
                params["nonce"] = self._next_nonce()
                tx = fn.build_transaction(params)
                signed = self.account.sign_transaction(tx)
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                    break
                except Exception as exc:
                    self._nonce = None
                    # another process sent from this account (the same provider's CLI and key
                    # service): re-read the nonce once and send again
                    if attempt == 1 and "nonce too low" in str(exc).lower():
                        continue
                    raise
        receipt = self._wait(tx_hash)
        if receipt["status"] != 1:
            raise TransactionFailed(f"transaction {tx_hash.hex()} reverted", receipt)
        return receipt

    def transfer(self, to: str, value: int) -> TxReceipt:
        """Send ``value`` wei of the native coin to ``to`` (funding a new participant's account)."""
        with self._lock:
            if self._chain_id is None:
                self._chain_id = self.w3.eth.chain_id
            tx = {"to": to, "value": value, "gas": 21_000, "chainId": self._chain_id, "nonce": self._next_nonce(),
                  **self._fees()}
            tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        receipt = self._wait(tx_hash)
        if receipt["status"] != 1:
            raise TransactionFailed(f"transfer {tx_hash.hex()} failed", receipt)
        return receipt

    def _wait(self, tx_hash: bytes) -> TxReceipt:
        """The receipt of ``tx_hash``. A transaction the node no longer knows (dropped when it
        restarted) raises :class:`TransactionDropped` within seconds instead of waiting out the
        timeout: the caller re-reads the chain and decides again."""
        deadline = time.monotonic() + self.timeout
        next_check = time.monotonic() + DROP_CHECK_S
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                pass
            now = time.monotonic()
            if now >= deadline:
                raise TimeExhausted(f"transaction {tx_hash.hex()} not mined after {self.timeout:.0f} s")
            if now >= next_check:
                next_check = now + DROP_CHECK_S
                try:
                    pending = self.w3.eth.get_transaction(tx_hash)
                except TransactionNotFound:
                    self.resync()
                    raise TransactionDropped(f"transaction {tx_hash.hex()} was dropped by the node") from None
                # queued behind a nonce gap (the node restarted without an earlier transaction of
                # ours): it would wait forever; re-read the nonce and let the caller decide again
                if pending.get("blockNumber") is None and \
                        self.w3.eth.get_transaction_count(self.address, "pending") <= pending["nonce"]:
                    self.resync()
                    raise TransactionDropped(f"transaction {tx_hash.hex()} is stuck behind a nonce gap "
                                             f"(nonce {pending['nonce']})")
            time.sleep(self.poll)

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fees from the latest base fee, re-read at most once a second."""
        now = time.monotonic()
        if self._fee_cache is not None and now - self._fee_cache[0] < 1.0:
            return self._fee_cache[1]
        fees = self._read_fees()
        self._fee_cache = (now, fees)
        return fees

    def _read_fees(self) -> dict[str, int]:
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": self.w3.eth.gas_price}
        tip = 0 if base == 0 else self.w3.to_wei(1, "gwei")
        return {"maxFeePerGas": base * 2 + tip, "maxPriorityFeePerGas": tip}
