"""The explorer tests' world: the shared audited lifecycle, plus one transaction that fails on chain
(a job requested under a closed grant, sent with a fixed gas limit so that it is mined) and a
two-step jobs workflow on the second asset, inside an anvil snapshot that is reverted afterwards so
that later modules see the lifecycle unchanged."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak
from web3.logs import DISCARD

from chain.accounts import dev_account
from chain.tx import Sender, TransactionFailed
from tests.support.lifecycle import PARTICIPANTS, PRICE, Lifecycle


@dataclass
class ExplorerWorld:
    lc: Lifecycle
    failed_tx: str
    workflow: int


def with_failed_tx(lc: Lifecycle) -> Iterator[ExplorerWorld]:
    """Yield the world with a failed transaction; revert the chain to before it afterwards."""
    w3 = lc.w3
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    consumer = next(i for i, name, _ in PARTICIPANTS if name == "consumer")
    sender = Sender(w3, dev_account(consumer))
    fn = lc.c["Jobs"].functions.requestJob(lc.grant, 4, keccak(text="after close"),
                                           w3.eth.get_block("latest")["timestamp"] + 3600)
    try:
        sender.send(fn, value=PRICE, gas=400_000)
        raise AssertionError("requesting a job under a closed grant must revert")
    except TransactionFailed as exc:
        receipt: Any = exc.receipt
    other_grant = lc.other_job >> 32
    r = sender.send(lc.c["Jobs"].functions.requestWorkflow(other_grant, [4, 4], [keccak(text="s0"), keccak(text="s1")],
                                                            3600), value=2 * PRICE)
    flow = lc.c["Jobs"].events.WorkflowRequested().process_receipt(r, errors=DISCARD)[0]["args"]["workflowId"]
    yield ExplorerWorld(lc, receipt["transactionHash"].to_0x_hex(), flow)
    w3.provider.make_request("evm_revert", [snap])
