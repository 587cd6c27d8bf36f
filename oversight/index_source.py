"""The monitor's chain events read from the shared event index (:mod:`audit.index`) instead of the
node: :class:`IndexFollower` has :class:`oversight.sources.ChainFollower`'s contract — windows of
decoded events with their block times and a ``(block, hash)`` cursor the caller keeps — over the
rows ``tds index run`` (or the gateway's index thread) stored.

Reorg safety: the index only holds blocks its confirmation depth made final, and the monitor adds
its own ``confirmations`` on top. If the index was rolled back below the monitor's cursor (a reorg
deeper than its depth, or a rebuild), the follower waits until the index is past the cursor again,
then compares the hash the index stored for the cursor block with the cursor's: a different hash
flags the window ``reorged`` exactly as a chain reorg does (alerts already raised stand, events of
the new branch are read from the cursor on). The journal and the on-chain check before each freeze
are untouched, so no freeze is ever sent twice whatever the index does.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from sqlalchemy import select
from web3 import Web3
from web3.exceptions import BlockNotFound

from audit.index import EventIndex, IndexMismatch
from audit.index_events import events_of, head, index_exists, stored_block_between, stored_hash
from audit.index_tables import assets, grants
from chain.errors import TdsError
from chain.retry import with_backoff
from oversight.sources import WATCHED, ChainWindow

log = logging.getLogger("tds.oversight")
HOW = "start it with `tds index run` (or `tds gateway`, which runs it), or pass --from-chain to read the node"


class IndexUnavailable(TdsError):
    """The event index a reader was pointed at cannot serve it (missing, empty, another deployment)."""

    def __init__(self, url: str, why: str):
        self.url, self.why = url, why
        super().__init__(f"event index {url}: {why}; {HOW}")


def configured_index(settings: Any) -> str | None:
    """The index the monitor and compliance scans read by default — the one the gateway and
    ``tds index run`` write (``TDS_INDEX_URL``, else ``$TDS_HOME/index/events.sqlite``): its URL
    when ``TDS_INDEX_URL`` is set or the default file exists, else None (read the node)."""
    url = settings.index_database_url
    return url if settings.index_url or index_exists(url) else None


def open_index(w3: Web3, deployment: dict[str, Any], url: str, *, require_data: bool = True) -> EventIndex:
    """The index at ``url`` for ``deployment`` (a handle to read; nothing is followed). Raises
    :class:`IndexUnavailable` if the database is not there, belongs to another deployment or (with
    ``require_data``) has indexed nothing yet."""
    if not index_exists(url):
        raise IndexUnavailable(url, "there is no index database")
    try:
        index = EventIndex(w3, deployment, url)
    except IndexMismatch as exc:
        raise IndexUnavailable(url, str(exc)) from None
    if require_data and index.indexed_block() is None:
        raise IndexUnavailable(url, "it has indexed nothing of this deployment yet")
    return index


def index_lookup(index: EventIndex) -> Callable[[str, int], Any]:
    """Context lookups (grant → [asset, consumer], asset → holder) answered by the index's tables."""
    def lookup(what: str, ident: int) -> Any:
        with index.engine.connect() as conn:
            if what == "grant":
                row = conn.execute(select(grants.c.asset_id, grants.c.consumer)
                                   .where(grants.c.grant_id == ident)).first()
                return None if row is None else [int(row.asset_id), row.consumer]
            return conn.execute(select(assets.c.holder).where(assets.c.asset_id == ident)).scalar()
    return lookup


class IndexFollower:
    """Reads the watched events in confirmed windows from the event index (same contract as
    :class:`ChainFollower`); the node is asked only for its head (the monitor's own confirmation
    depth) and, after an index rebuild, for the hash of the cursor block."""

    def __init__(self, index: EventIndex, w3: Web3, *, confirmations: int = 1, max_range: int = 2000):
        self.engine, self.decoder, self.w3 = index.engine, index.decoder, w3
        self.url = index.engine.url.render_as_string(hide_password=True)
        self.confirmations = confirmations
        self.max_range = max_range
        self.kinds = [(n, e) for n, names in WATCHED.items() for e in names]
        self._waiting: tuple[int, int] | None = None   # (index block, cursor block) last warned about

    def _chain_head(self) -> int:
        return int(with_backoff(lambda: self.w3.eth.block_number))

    def _chain_hash(self, number: int) -> str:
        try:
            return "0x" + bytes(with_backoff(lambda: self.w3.eth.get_block(number))["hash"]).hex()
        except BlockNotFound:
            return ""

    def confirmed_head(self) -> int:
        """The last block a window may end at now: the index's, at most ``confirmations`` below the node's head."""
        with self.engine.connect() as conn:
            at = head(conn)
        return -1 if at is None else min(at.block, self._chain_head() - self.confirmations)

    def _wait(self, index_block: int | None, cursor_block: int) -> None:
        if self._waiting != (index_block or -1, cursor_block):
            self._waiting = (index_block or -1, cursor_block)
            log.warning("the event index %s is at block %s, below the monitor's cursor (block %d): it was rolled "
                        "back or rebuilt; waiting for it to pass the cursor", self.url, index_block, cursor_block)

    def next_window(self, cursor: tuple[int, str] | None, start_block: int) -> ChainWindow | None:
        """The next window after ``cursor`` (block, hash) the index holds, or None if there is none yet."""
        with self.engine.connect() as conn:
            at = head(conn)
            if at is None or (cursor is not None and at.block < cursor[0]):
                if cursor is not None:
                    self._wait(None if at is None else at.block, cursor[0])
                return None
            self._waiting = None
            reorged = False
            start = start_block if cursor is None else cursor[0] + 1
            if cursor is not None and cursor[1]:
                have = stored_hash(conn, cursor[0])
                if have is None:          # a rebuilt index keeps other window ends: ask the node
                    have = self._chain_hash(cursor[0])
                reorged = have != cursor[1]
                if reorged:
                    log.warning("block %d changed below the cursor (its hash is now %s, the cursor's %s): a reorg "
                                "deeper than the index's confirmations", cursor[0], have or "gone", cursor[1])
            limit = min(at.block, self._chain_head() - self.confirmations)
            if start > limit:
                return None
            if limit == at.block and limit - start < self.max_range:
                end, end_hash = at.block, at.hash
            else:   # end on a block whose hash the index stored (blocks with events, window ends)
                found = (stored_block_between(conn, start, min(limit, start + self.max_range - 1))
                         or stored_block_between(conn, start, limit, last=False))
                if found is None and limit == at.block:
                    found = (at.block, at.hash)
                if found is None:
                    return None
                end, end_hash = found
            rows = events_of(conn, self.decoder, self.kinds, start, end)
            if stored_hash(conn, end) != end_hash:
                return None               # rolled back while we read: the next step reads again
        times = {ev.block: when for ev, when in rows}
        return ChainWindow(start, end, end_hash, [ev for ev, _ in rows], times, reorged)
