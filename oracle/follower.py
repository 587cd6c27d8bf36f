"""Following contract events with a confirmation depth, resuming from the journal's cursor.

Only blocks at least ``confirmations`` deep are read, so a reorg within that depth never
reaches the oracle. A deeper reorg is still detected — the hash stored for the cursor block no
longer matches the chain — and the follower rewinds to the last block whose hash matches,
forgetting jobs it had merely *seen* after that point (acted-on jobs are reconciled against the
chain by the runner). With no recorded hash to compare, it rewinds ``max_reorg`` blocks:
re-reading is harmless because journaling a job is idempotent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from web3 import Web3
from web3.exceptions import BlockNotFound

from oracle.journal import Journal
from chain.retry import with_backoff


@dataclass(frozen=True)
class Window:
    """A confirmed block range whose logs are ready to process."""

    start: int
    end: int
    end_hash: str
    logs: list[Any]


class EventFollower:
    """Reads logs of ``addresses`` with any of ``topics`` in confirmed, resumable windows."""

    def __init__(self, w3: Web3, journal: Journal, name: str, addresses: Sequence[str], topics: Sequence[bytes | str],
                 *, confirmations: int = 0, start_block: int = 0, max_range: int = 2000,
                 max_reorg: int = 128, on_reorg: Callable[[int], None] | None = None):
        self.w3 = w3
        self.journal = journal
        self.name = name
        self.addresses = [Web3.to_checksum_address(a) for a in addresses]
        self.topics = [t if isinstance(t, str) else "0x" + bytes(t).hex() for t in topics]
        self.confirmations = confirmations
        self.start_block = start_block
        self.max_range = max_range
        self.max_reorg = max_reorg
        self.on_reorg = on_reorg or (lambda ancestor: None)

    def _hash(self, number: int) -> str:
        """The block's hash, or "" if the chain has no such block (it was rolled back)."""
        try:
            return "0x" + bytes(with_backoff(lambda: self.w3.eth.get_block(number))["hash"]).hex()
        except BlockNotFound:
            return ""

    def _rewind_if_reorged(self) -> int:
        """Next block to read, after undoing any reorg below the cursor."""
        cur = self.journal.cursor(self.name)
        if cur is None:
            return self.start_block
        block, stored = cur
        if self._hash(block) == stored:
            return block + 1
        ancestor = max(self.start_block - 1, block - self.max_reorg)  # fallback: rewind a bounded depth
        for number, known in self.journal.known_blocks_below(block):
            if self._hash(number) == known:
                ancestor = number
                break
        self.journal.forget_blocks_from(ancestor + 1)
        self.journal.forget_jobs_from_block(ancestor + 1)
        self.on_reorg(ancestor)
        if ancestor >= 0:
            self.journal.set_cursor(self.name, ancestor, self._hash(ancestor))
        return ancestor + 1

    def next_window(self) -> Window | None:
        """The next confirmed range with its logs, or None if nothing new is confirmed."""
        head = with_backoff(lambda: self.w3.eth.block_number)
        safe = head - self.confirmations
        start = self._rewind_if_reorged()
        if start > safe:
            return None
        end = min(safe, start + self.max_range - 1)
        logs = with_backoff(lambda: self.w3.eth.get_logs({
            "fromBlock": start, "toBlock": end, "address": self.addresses, "topics": [self.topics],
        }))
        return Window(start, end, self._hash(end), sorted(logs, key=lambda l: (l["blockNumber"], l["logIndex"])))

    def commit(self, window: Window) -> None:
        """Record that every log in ``window`` was handled."""
        self.journal.set_cursor(self.name, window.end, window.end_hash)
