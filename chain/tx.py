"""Sign locally, send, wait for the receipt: every participant transacts from its own key."""
from __future__ import annotations

import threading
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import TxReceipt

from web3.exceptions import ContractCustomError, TimeExhausted, TransactionNotFound, Web3RPCError

from chain.gas import cannot_estimate, fallback_gas, pending_nonce
from chain.revert import describe_revert
from chain.errors import TdsError


class TransactionFailed(TdsError):
    """A mined transaction reverted, or one could not be sent."""

    def __init__(self, message: str, receipt: TxReceipt | None = None):
        super().__init__(message)
        self.receipt = receipt


DROP_CHECK_S = 2.0  # how often a transaction still without a receipt is looked up
MAX_POLL_S = 0.25  # receipt polls start at ``poll`` and back off to this while a block is awaited


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
        self._estimates = True  # False once the node shows it cannot estimate at all (chain.gas)

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = pending_nonce(self.w3, self.address)
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
                gas = self._gas_limit(fn, params)  # reverts surface here
            params["gas"] = gas
            params.update(self._fees())
            for attempt in (1, 2):
                params["nonce"] = self._next_nonce()
                tx = fn.build_transaction(params)
                signed = self.account.sign_transaction(tx)
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                    nonce = params["nonce"]
                    break
                except Exception as exc:
                    self._nonce = None
                    # another process sent from this account (the same provider's CLI and key
                    # service): re-read the nonce once and send again
                    if attempt == 1 and "nonce too low" in str(exc).lower():
                        continue
                    raise
        receipt = self._wait(tx_hash, nonce)
        if receipt["status"] != 1:
            raise TransactionFailed(f"transaction {tx_hash.hex()} reverted", receipt)
        return receipt

    def _gas_limit(self, fn: ContractFunction | ContractConstructor, params: dict[str, Any]) -> int:
        """``eth_estimateGas`` + 20 % + 20,000; where the node cannot estimate (ethereumjs on
        Clique) a fixed limit (:func:`chain.gas.fallback_gas`), remembered for this sender."""
        if self._estimates:
            try:
                return int(fn.estimate_gas(params) * 1.2) + 20_000
            except ContractCustomError as exc:
                raise Reverted(describe_revert(exc.data), exc.data) from None
            except Web3RPCError as exc:
                if not cannot_estimate(exc):
                    raise
                self._estimates = False
        return fallback_gas(self.w3)

    def transfer(self, to: str, value: int) -> TxReceipt:
        """Send ``value`` wei of the native coin to ``to`` (funding a new participant's account)."""
        with self._lock:
            if self._chain_id is None:
                self._chain_id = self.w3.eth.chain_id
            tx = {"to": to, "value": value, "gas": 21_000, "chainId": self._chain_id, "nonce": self._next_nonce(),
                  **self._fees()}
            tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        receipt = self._wait(tx_hash, tx["nonce"])
        if receipt["status"] != 1:
            raise TransactionFailed(f"transfer {tx_hash.hex()} failed", receipt)
        return receipt

    def _wait(self, tx_hash: bytes, nonce: int) -> TxReceipt:
        """The receipt of ``tx_hash`` (sent with ``nonce``). Blocks may take seconds (a PoA chain):
        polls back off from ``poll`` to :data:`MAX_POLL_S`. A transaction the node no longer
        holds (dropped when it restarted, stuck behind a nonce gap, or replaced) raises
        :class:`TransactionDropped` within seconds instead of waiting out the timeout: the
        caller re-reads the chain and decides again."""
        deadline = time.monotonic() + self.timeout
        next_check = time.monotonic() + DROP_CHECK_S
        delay = self.poll
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                pass
            except Web3RPCError as exc:
                # ethereumjs indexes a receipt a moment before it stores its block, and answers
                # "value for 0x… not found in DB" (-32603) in between: ask again
                if "not found in DB" not in str(exc):
                    raise
            now = time.monotonic()
            if now >= deadline:
                raise TimeExhausted(f"transaction {tx_hash.hex()} not mined after {self.timeout:.0f} s")
            if now >= next_check:
                next_check = now + DROP_CHECK_S
                receipt = self._check_dropped(tx_hash, nonce)
                if receipt is not None:
                    return receipt
            time.sleep(delay)
            delay = min(delay * 1.5, MAX_POLL_S)

    def _check_dropped(self, tx_hash: bytes, nonce: int) -> TxReceipt | None:
        """Raise :class:`TransactionDropped` if the node no longer holds ``tx_hash``; its receipt
        if it was mined meanwhile; None while it is still pending.

        Judged by nonces, not ``eth_getTransactionByHash``: ethereumjs answers that only for
        mined transactions, so a pending one would look dropped."""
        if pending_nonce(self.w3, self.address) <= nonce:
            # the node holds nothing with our nonce (it restarted without it), or only behind a gap
            self.resync()
            raise TransactionDropped(f"transaction {tx_hash.hex()} (nonce {nonce}) was dropped by the node "
                                     "or is stuck behind a nonce gap")
        if self.w3.eth.get_transaction_count(self.address, "latest") <= nonce:
            return None  # still pending
        try:  # the nonce is used: ours was mined, or another transaction replaced it
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            self.resync()
            raise TransactionDropped(f"transaction {tx_hash.hex()} was replaced: nonce {nonce} is used "
                                     "by another transaction") from None

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
