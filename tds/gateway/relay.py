"""Putting users' signed actions on chain, and who pays for it.

Gas:

* **A signed raw transaction** (``POST /applications``, ``POST /jobs``) is paid by its signer —
  the consumer's own account, as in any wallet: the gateway only forwards the bytes
  (``eth_sendRawTransaction``), so it spends nothing and cannot alter them.
* **A grant offer** (``POST /grants``, EIP-712 signed by the certificate holder for
  ``grantBySignature``) is sent by the gateway's **relayer account**, which pays the gas
  (``grantBySignature`` accepts any sender: the signature is the authority). The operator
  funds the relayer; the cost is bounded because only authenticated holders bound on chain
  may ask, per DID rate limits apply, every relay is simulated first (a transaction that
  would revert is refused, never paid for) and its gas is capped (:data:`RELAY_GAS_CAP`).
  Without a relayer configured, ``POST /grants`` is a 503 and the holder (or the consumer)
  submits ``grantBySignature`` from its own wallet instead.

Every refusal is a :class:`tds.gateway.errors.GatewayError` with the chain's reason
(custom errors decoded to ``Name(arg=value)``), so the caller learns what to fix.
"""
from __future__ import annotations

import threading
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted

from chain.revert import describe_revert
from chain.tx import Sender, TransactionFailed
from tds.gateway.errors import Conflict, Unavailable
from tds.gateway.signed import RawTransaction
from chain.retry import is_transient

RELAY_GAS_CAP = 600_000  # grantBySignature costs ~200k; anything far above is not a grant
RECEIPT_TIMEOUT = 60.0


def _reverted(exc: Exception) -> Conflict:
    data = getattr(exc, "data", None)
    reason = describe_revert(data) if isinstance(data, (str, bytes)) and data else str(exc)
    return Conflict("reverted", f"the chain refuses it: {reason}")


def _node_refusal(exc: Exception) -> Exception:
    if is_transient(exc):
        return Unavailable("chain-unavailable", f"cannot reach the chain: {exc}")
    message = exc.args[0] if exc.args else exc
    if isinstance(message, dict):
        message = message.get("message", message)
    return Conflict("rejected-by-node", f"the node rejects the transaction: {message}")


class Relay:
    """Simulates, sends and waits for relayed transactions on one chain."""

    def __init__(self, w3: Web3, relayer: LocalAccount | None = None, *, receipt_timeout: float = RECEIPT_TIMEOUT):
        self.w3 = w3
        self.relayer = relayer
        self.receipt_timeout = receipt_timeout
        self._sender = Sender(w3, relayer) if relayer is not None else None
        self._lock = threading.Lock()

    def simulate(self, tx: RawTransaction) -> None:
        """``eth_call`` the transaction as its signer at the head; a revert is a :class:`Conflict`."""
        try:
            self.w3.eth.call({"from": tx.sender, "to": tx.to, "data": tx.data, "value": tx.value})
        except (ContractCustomError, ContractLogicError) as exc:
            raise _reverted(exc) from None
        except Exception as exc:
            raise _node_refusal(exc) from None

    def send_raw(self, tx: RawTransaction) -> dict[str, Any]:
        """Simulate, forward the signer's bytes, wait for the receipt (None if not mined in time)."""
        self.simulate(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(tx.raw)
        except Exception as exc:  # nonce too low, underpriced, insufficient funds …
            raise _node_refusal(exc) from None
        return self._wait(tx_hash)

    def send_as_relayer(self, fn: Any) -> dict[str, Any]:
        """Send ``fn`` from the relayer account (it pays the gas), after a capped simulation."""
        if self._sender is None or self.relayer is None:
            raise Unavailable("no-relayer", "this gateway has no relayer account to pay for grant offers: submit "
                                            "grantBySignature from your own wallet, or start the gateway with one")
        try:
            gas = fn.estimate_gas({"from": self.relayer.address})
        except (ContractCustomError, ContractLogicError) as exc:
            raise _reverted(exc) from None
        except Exception as exc:
            raise _node_refusal(exc) from None
        if gas > RELAY_GAS_CAP:
            raise Conflict("gas-cap", f"the relayed call needs {gas} gas; the relayer pays at most {RELAY_GAS_CAP}")
        with self._lock:
            try:
                receipt = self._sender.send(fn, gas=int(gas * 1.2) + 20_000)
            except TransactionFailed as exc:
                raise Conflict("reverted", f"the relayed transaction failed: {exc}") from None
            except Exception as exc:
                raise _node_refusal(exc) from None
        return dict(receipt)

    def _wait(self, tx_hash: bytes) -> dict[str, Any]:
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout,
                                                               poll_latency=0.05)
        except TimeExhausted:
            return {"transactionHash": tx_hash, "status": None}
        receipt = dict(receipt)
        if receipt["status"] != 1:
            raise Conflict("reverted", f"transaction {Web3.to_hex(tx_hash)} was mined but reverted "
                                       "(the chain changed between the check and the inclusion)")
        return receipt
