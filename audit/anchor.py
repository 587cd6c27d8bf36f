"""Anchoring operation logs: each closed batch's Merkle root goes on chain through Evidence."""
from __future__ import annotations

import logging

from web3 import Web3
from web3.contract import Contract

from audit.oplog import Batch, OpLog
from chain.tx import Sender

log = logging.getLogger("tds.audit")


class Anchorer:
    """Anchors the Merkle root of each closed operation-log batch through the Evidence contract.

    Idempotent across crashes: a batch file is anchored unless a ``BatchAnchored`` event of this
    producer with its root is already on chain (a crash after closing the batch but before the
    anchoring transaction leaves a file that the next call anchors; one after the transaction
    leaves a file that is recognised)."""

    def __init__(self, oplog: OpLog, evidence: Contract, sender: Sender, w3: Web3, from_block: int = 0):
        self.oplog, self.evidence, self.sender, self.w3 = oplog, evidence, sender, w3
        self.from_block = from_block
        self._on_chain: set[bytes] | None = None
        self.anchored = 0

    def _anchored_roots(self) -> set[bytes]:
        if self._on_chain is None:
            logs = self.evidence.events.BatchAnchored().get_logs(
                from_block=self.from_block, argument_filters={"producer": self.sender.account.address})
            self._on_chain = {bytes(e["args"]["root"]) for e in logs}
        return self._on_chain

    def anchor(self) -> int:
        """Close the open records into a batch and anchor every batch not yet on chain; returns
        the number of records anchored by this call."""
        self.oplog.close_batch()
        done = self._anchored_roots()
        count = 0
        for path in sorted(self.oplog.folder.glob("batch-*.jsonl")):
            batch = Batch.from_jsonl(self.oplog.producer, path.read_bytes(), str(path))
            if not batch.records or batch.root in done:
                continue
            now = self.w3.eth.get_block("latest")["timestamp"]
            hi = min(batch.period[1], now)       # a period may not end after the anchoring block
            lo = min(batch.period[0], hi)
            self.sender.send(self.evidence.functions.anchorBatch(batch.root, len(batch.records), lo, hi,
                                                                 path.name.encode()))
            done.add(batch.root)
            count += len(batch.records)
            log.info("anchored %d log records (root %s, %s)", len(batch.records), batch.root.hex()[:16], path.name)
        self.anchored += count
        return count
