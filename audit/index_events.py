"""Read-only queries over the event index for readers that follow it in windows (the usage
monitor) or read a slice of its history at one indexed block (compliance scans): where the index
stands, the hash and time it stored for a block, and the stored events of some ``(contract,
event)`` kinds in a block range, decoded back with :meth:`FastLogDecoder.from_stored`.

Nothing here writes; the index itself (:mod:`audit.index`) is the only writer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from audit.events import ChainEvent
from audit.index import CURSOR
from audit.index_decode import FastLogDecoder
from audit.index_tables import blocks, cursor, events


@dataclass(frozen=True)
class IndexHead:
    """The last block the index holds every event of, and the hash it stored for it."""

    block: int
    hash: str


def index_exists(url: str) -> bool:
    """False for a SQLite file that is not there (opening it would create an empty index);
    True for any other URL (a server database is there once configured)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///"):]).exists()
    return True


def head(conn: Connection) -> IndexHead | None:
    """Where the index stands, or None before its first window."""
    row = conn.execute(select(cursor.c.block, cursor.c.block_hash).where(cursor.c.name == CURSOR)).first()
    return None if row is None else IndexHead(int(row.block), row.block_hash)


def stored_hash(conn: Connection, number: int) -> str | None:
    """The hash the index stored for block ``number`` (blocks with events, window ends and the
    cursor block), or None if it keeps none for that block."""
    found = conn.execute(select(blocks.c.hash).where(blocks.c.number == number)).scalar()
    if found is not None:
        return found
    at = head(conn)
    return at.hash if at is not None and at.block == number else None


def stored_time(conn: Connection, number: int) -> int | None:
    """The timestamp the index stored for block ``number``, or None."""
    found = conn.execute(select(blocks.c.time).where(blocks.c.number == number)).scalar()
    return None if found is None else int(found)


def stored_block_between(conn: Connection, lo: int, hi: int, *, last: bool = True) -> tuple[int, str] | None:
    """(number, hash) of the last (or first) block in ``lo..hi`` whose hash the index stored."""
    agg = func.max(blocks.c.number) if last else func.min(blocks.c.number)
    number = conn.execute(select(agg).where(blocks.c.number >= lo, blocks.c.number <= hi)).scalar()
    if number is None:
        return None
    return int(number), conn.execute(select(blocks.c.hash).where(blocks.c.number == number)).scalar_one()


def events_of(conn: Connection, decoder: FastLogDecoder, kinds: Iterable[tuple[str, str]], start: int,
              end: int) -> list[tuple[ChainEvent, int]]:
    """The stored events of ``kinds`` (contract, event name) in blocks ``start..end``, in chain
    order, each with its block time."""
    pairs = sorted(set(kinds))
    if not pairs or end < start:
        return []
    q = (select(events).where(events.c.block >= start, events.c.block <= end,
                              or_(*[and_(events.c.contract == c, events.c.name == n) for c, n in pairs]))
         .order_by(events.c.block, events.c.log_index))
    out = []
    for row in conn.execute(q):
        ev = decoder.from_stored(row)
        if ev is not None:
            out.append((ev, int(row.block_time)))
    return out
