"""Putting users' signed actions on chain, and who pays for it.

Gas:

* **A signed raw transaction** (``POST /applications``, ``POST /jobs``) is paid by its signer —
  the consumer's own account, as in any wallet: the gateway only forwards the bytes
  (``eth_sendRawTransaction``), so it spends nothing and cannot alter them.
* **A grant offer** (``POST /grants``, EIP-712 signed by the certificate holder for
  ``grantBySignature``) is sent by the gateway's **relayer account**, which pays the gas
  (``grantBySignature`` accepts any sender: the signature is the authority). The operator
  funds the relayer; the cost is bounded because only authenticated holders bound on chain
  may ask, per DID rate limits apply, every relay is **simulated against the latest block right
  before it is sent** (under the relay's lock, so no other relay can change the chain in
  between: an offer that would revert — ``OfferOutdated``, ``InvalidAccountNonce``,
  ``ConsumerNotRegistered``, ``ProviderNotRegistered``, … — is a 409 whose code names the
  contract error, e.g. ``offer-outdated``, and is never paid for), its gas is capped
  (:data:`RELAY_GAS_CAP`), and each holder has a **relay budget** (:class:`RelayBudget`: relayed
  offers and gas per sliding window; a 429 ``relay-budget-offers`` / ``relay-budget-gas`` with
  ``Retry-After`` when spent). Without a relayer configured, ``POST /grants`` is a 503 and the
  holder (or the consumer) submits ``grantBySignature`` from its own wallet instead.

A signed raw transaction is simulated, then handed to the node (:meth:`Relay.submit_raw`), and
only then does the caller store anything that goes with it (``POST /jobs``: the parameters).

Every refusal is a :class:`tds.gateway.errors.GatewayError` with the chain's reason
(custom errors decoded to ``Name(arg=value)``), so the caller learns what to fix.
"""
from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, TransactionNotFound

from chain.revert import describe_revert
from chain.tx import Sender, TransactionDropped, TransactionFailed
from tds.gateway.errors import Conflict, RateLimited, Unavailable
from tds.gateway.signed import RawTransaction
from chain.retry import is_transient

RELAY_GAS_CAP = 600_000  # grantBySignature costs ~200k; anything far above is not a grant
RECEIPT_TIMEOUT = 60.0


def _revert_reason(exc: Exception) -> tuple[str | None, str]:
    """(custom error name or None, readable reason) of a reverted call."""
    data = getattr(exc, "data", None)
    if isinstance(data, (str, bytes)) and data:
        reason = describe_revert(data)
        name = reason.split("(", 1)[0] if "(" in reason and not reason.startswith("0x") else None
        return name, reason
    return None, str(exc)


def _reverted(exc: Exception) -> Conflict:
    return Conflict("reverted", f"the chain refuses it: {_revert_reason(exc)[1]}")


def error_code(name: str) -> str:
    """A contract error's name as a gateway error code: ``OfferOutdated`` → ``offer-outdated``."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", name)).lower()


def _offer_refused(exc: Exception) -> Conflict:
    """The 409 for a relayed offer the chain would refuse: its code names the contract error."""
    name, reason = _revert_reason(exc)
    return Conflict(error_code(name) if name else "reverted",
                    f"the chain would refuse this grant offer now: {reason}; the relayer does not send it")


@dataclass
class RelayBudget:
    """What the relayer pays for each certificate holder: at most ``max_offers`` relayed offers
    and ``max_gas`` gas within any ``window`` seconds (sliding). Spending is recorded per relayed
    offer (its receipt's gas, the estimate when no receipt came back); offers refused before
    sending cost nothing. Over budget is a 429 with ``Retry-After``."""

    max_offers: int = 20
    max_gas: int = 5_000_000
    window: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _spent: dict[str, deque[tuple[float, int]]] = field(default_factory=dict, repr=False)  # holder → (at, gas)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.max_offers < 1 or self.max_gas < 1 or self.window <= 0:
            raise ValueError("a relay budget needs max_offers >= 1, max_gas >= 1 and window > 0")

    def _live(self, holder: str, now: float) -> deque[tuple[float, int]]:
        spent = self._spent.setdefault(holder, deque())
        while spent and now - spent[0][0] >= self.window:
            spent.popleft()
        if len(self._spent) > 4096:  # drop holders with nothing left in their window
            self._spent = {h: d for h, d in self._spent.items() if d and now - d[-1][0] < self.window}
            spent = self._spent.setdefault(holder, spent)
        return spent

    def check(self, holder: str, gas: int = 0) -> None:
        """Refuse (:class:`RateLimited`) if one more offer of ``gas`` gas would exceed ``holder``'s budget."""
        with self._lock:
            now = self.clock()
            spent = self._live(holder, now)
            if len(spent) >= self.max_offers:
                wait = spent[len(spent) - self.max_offers][0] + self.window - now
                raise self._refused("relay-budget-offers", holder, wait,
                                    f"{len(spent)} offers relayed for {holder} in the last {self.window:g} s; "
                                    f"the budget is {self.max_offers}")
            used = sum(g for _, g in spent)
            if used + gas > self.max_gas:
                if gas > self.max_gas:
                    wait = self.window
                else:
                    freed, wait = 0, 0.0
                    for at, g in spent:  # the oldest spending leaves the window first
                        freed += g
                        if used - freed + gas <= self.max_gas:
                            wait = at + self.window - now
                            break
                raise self._refused("relay-budget-gas", holder, wait,
                                    f"the relayer paid {used} gas for {holder} in the last {self.window:g} s; "
                                    f"this offer needs {gas} more and the budget is {self.max_gas}")

    def charge(self, holder: str, gas: int) -> None:
        """Record one relayed offer of ``gas`` gas for ``holder``."""
        with self._lock:
            now = self.clock()
            self._live(holder, now).append((now, int(gas)))

    @staticmethod
    def _refused(code: str, holder: str, wait: float, detail: str) -> RateLimited:
        seconds = max(1, math.ceil(wait))
        return RateLimited(code, f"relay budget spent: {detail}; retry in {seconds} s, or submit "
                                 f"grantBySignature from your own wallet", headers={"Retry-After": str(seconds)})


@dataclass(frozen=True)
class Relayer:
    """The account that pays for relayed grant offers, with its per-holder :class:`RelayBudget`
    (``create_app(relayer=Relayer(account, RelayBudget(...)))``; a bare account gets the default)."""

    account: LocalAccount
    budget: RelayBudget = field(default_factory=RelayBudget)

    @property
    def address(self) -> str:
        return self.account.address


def _node_refusal(exc: Exception) -> Exception:
    if is_transient(exc):
        return Unavailable("chain-unavailable", f"cannot reach the chain: {exc}")
    message = exc.args[0] if exc.args else exc
    if isinstance(message, dict):
        message = message.get("message", message)
    return Conflict("rejected-by-node", f"the node rejects the transaction: {message}")


class Relay:
    """Simulates, sends and waits for relayed transactions on one chain."""

    def __init__(self, w3: Web3, relayer: LocalAccount | Relayer | None = None, *,
                 budget: RelayBudget | None = None, receipt_timeout: float = RECEIPT_TIMEOUT):
        if isinstance(relayer, Relayer):
            budget = budget or relayer.budget
            relayer = relayer.account
        self.w3 = w3
        self.relayer = relayer
        self.budget = budget or RelayBudget()
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

    def known(self, tx: RawTransaction) -> bool:
        """True if the node already has this very signed transaction (sent earlier)."""
        try:
            self.w3.eth.get_transaction(tx.hash)
        except TransactionNotFound:
            return False
        except Exception as exc:
            raise _node_refusal(exc) from None
        return True

    def submit_raw(self, tx: RawTransaction) -> bytes:
        """Simulate at the head, then hand the signer's bytes to the node; return the transaction
        hash once the node has accepted them (a refusal is a 409, or a 503 when unreachable)."""
        self.simulate(tx)
        try:
            return bytes(self.w3.eth.send_raw_transaction(tx.raw))
        except Exception as exc:  # nonce too low, underpriced, insufficient funds …
            raise _node_refusal(exc) from None

    def send_raw(self, tx: RawTransaction) -> dict[str, Any]:
        """Simulate, forward the signer's bytes, wait for the receipt (None if not mined in time)."""
        return self.wait(self.submit_raw(tx))

    def send_as_relayer(self, fn: Any, holder: str) -> dict[str, Any]:
        """Send ``fn`` (a holder's signed offer) from the relayer account, which pays the gas.

        Under the relay's lock, so nothing this gateway relays changes the chain in between:
        ``holder``'s budget is checked, ``fn`` is simulated against the latest block (a revert is
        a 409 naming the contract error, and nothing is sent), its gas is capped and checked
        against the budget, then it is sent and its gas charged to ``holder``."""
        if self._sender is None or self.relayer is None:
            raise Unavailable("no-relayer", "this gateway has no relayer account to pay for grant offers: submit "
                                            "grantBySignature from your own wallet, or start the gateway with one")
        with self._lock:
            self.budget.check(holder)
            try:
                gas = fn.estimate_gas({"from": self.relayer.address}, block_identifier="latest")
            except (ContractCustomError, ContractLogicError) as exc:
                raise _offer_refused(exc) from None
            except Exception as exc:
                raise _node_refusal(exc) from None
            if gas > RELAY_GAS_CAP:
                raise Conflict("gas-cap", f"the relayed call needs {gas} gas; the relayer pays at most "
                                          f"{RELAY_GAS_CAP}")
            self.budget.check(holder, gas)
            try:
                receipt = self._sender.send(fn, gas=int(gas * 1.2) + 20_000)
            except TransactionFailed as exc:
                if exc.receipt is not None:
                    self.budget.charge(holder, exc.receipt["gasUsed"])
                raise Conflict("reverted", f"the relayed transaction failed: {exc}") from None
            except (TimeExhausted, TransactionDropped) as exc:  # sent, maybe paid: count the estimate
                self.budget.charge(holder, gas)
                raise _node_refusal(exc) from None
            except Exception as exc:
                raise _node_refusal(exc) from None
            self.budget.charge(holder, receipt["gasUsed"])
        return dict(receipt)

    def wait(self, tx_hash: bytes) -> dict[str, Any]:
        """The receipt of a forwarded transaction ({status: None} if not mined in time); a mined
        revert is a 409 :class:`Conflict` (``reverted``)."""
        return self._wait(tx_hash)

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
