"""Gas limits where a node cannot estimate them, and node answers that differ between clients.

``eth_estimateGas`` is asked first (:class:`chain.tx.Sender`). ethereumjs 0.10.2 on a Clique
chain fails every estimate — it builds the next block's header without the signer's
``extraData`` ("extraData must be 97 bytes on non-epoch transition blocks") — and its
``eth_call`` cannot stand in: it reports neither reverts nor running out of gas (it returns the
revert data, or ``0x``, as the result) and runs on a block with number and timestamp 0, so a
call checking a deadline reverts there (``InvalidDeadline(deadline=…, nowTs=0)``) although the
transaction would not. Such a node gets :func:`fallback_gas`: a fixed limit within the block gas
limit, unused gas refunded (gas costs nothing on the ethereumjs chain); a revert then shows as
a mined transaction with status 0 (:class:`chain.tx.TransactionFailed`), without its reason.
"""
from __future__ import annotations

from web3 import Web3

from chain.errors import TdsError

FALLBACK_GAS = 8_000_000  # above the largest deployment (Jobs: ~4.2 M gas used)


def cannot_estimate(exc: Exception) -> bool:
    """True for the error of a node that cannot estimate at all (ethereumjs on Clique), as
    opposed to one refusing this transaction (insufficient funds, …), which stays an error."""
    return "extraData must be" in str(exc)


def fallback_gas(w3: Web3) -> int:
    """The gas limit for a transaction on a node that cannot estimate: :data:`FALLBACK_GAS`,
    or the latest block's gas limit if that is lower."""
    return min(FALLBACK_GAS, int(w3.eth.get_block("latest")["gasLimit"]))


def pending_nonce(w3: Web3, address: str) -> int:
    """The account's next nonce counting transactions the node holds but has not mined.

    Asked with the lower-case address: ethereumjs keys its pool by lower-case address and,
    given a checksummed one, silently answers the mined count."""
    answer = w3.provider.make_request("eth_getTransactionCount", [address.lower(), "pending"])  # type: ignore[arg-type]
    if "error" in answer:
        raise TdsError(f"the node refused eth_getTransactionCount for {address}: {answer['error']}")
    return int(answer["result"], 16)
