"""The event index: every deployed contract's events, read from the chain once, decoded with the
published ABIs and kept in a database (SQLAlchemy Core: SQLite in WAL by default, PostgreSQL by
``TDS_INDEX_URL``) for the readers that do not need the auditor's independence — the gateway's
catalog first. The auditor's own path (:class:`audit.events.ChainReader`, ``trail``, ``verify``)
never reads it; :class:`audit.index_reads.IndexedReader` lets a test show both agree.

Following: only blocks ``confirmations`` deep are read, in windows of at most ``max_range``
blocks. Each window — its raw events, the state they change and the cursor — is committed in
one transaction, so a process killed at any point resumes at the last committed window with no
gap and no duplicate. Reorgs: the hash of the cursor block (and of every block that had
events) is stored; when the chain's hash of the cursor block differs, the index rolls back to
the newest stored block whose hash still matches (at most ``max_reorg`` blocks), deletes the
events above it and rebuilds the state tables from the events it keeps, in one transaction.

The follower is the index's own rather than the oracle's (``oracle/follower.py``): the oracle
commits its cursor separately from its journal entries, while the index must commit events,
state and cursor together; sharing would mean changing the oracle's commit protocol too.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable, Iterator

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection, Engine
from web3 import Web3
from web3.exceptions import BlockNotFound

from audit.events import ChainEvent, plain, with_published_proof
from audit.index_decode import FastLogDecoder
from audit.index_keys import is_audited, keys_of
from audit.index_state import apply_event, rebuild_state
from audit.index_tables import (SCHEMA_VERSION, STATE_TABLES, blocks, cursor, event_keys, events, meta,
                                open_engine)
from chain.deploy import bind
from chain.errors import TdsError
from chain.retry import with_backoff

CURSOR = "events"


class IndexMismatch(TdsError):
    """The index database was built for another deployment."""


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def stored_log(row: Any) -> dict[str, Any]:
    """A web3-style log rebuilt from an ``events`` row (what :class:`LogDecoder` decodes)."""
    from hexbytes import HexBytes

    return {"address": row.address, "topics": [HexBytes(t) for t in json.loads(row.topics)],
            "data": HexBytes(row.data), "blockNumber": row.block, "logIndex": row.log_index,
            "transactionHash": HexBytes(row.tx), "transactionIndex": 0, "blockHash": HexBytes(b"\0" * 32)}


class EventIndex:
    """Follows one deployment's events into the database at ``url`` (or an ``engine``)."""

    def __init__(self, w3: Web3, deployment: dict[str, Any], url: str | None = None, *, engine: Engine | None = None,
                 confirmations: int = 0, max_range: int = 2000, max_reorg: int = 128):
        if (url is None) == (engine is None):
            raise ValueError("give the index a database url or an engine (one of them)")
        self.w3 = w3
        self.deployment = deployment
        self.chain_id = int(deployment.get("chainId") or w3.eth.chain_id)
        self.decoder = FastLogDecoder(w3, {n: bind(w3, deployment, n) for n in deployment["contracts"]})
        self._proofs: dict[str, bytes | None] = {}  # IdentityBound uid -> binding proof from its tx input
        self.engine = engine if engine is not None else open_engine(url)  # type: ignore[arg-type]
        self.confirmations = confirmations
        self.max_range = max_range
        self.max_reorg = max_reorg
        self.start_block = int(deployment.get("block") or 0)
        self._bind()

    @classmethod
    def open(cls, settings: Any, *, confirmations: int = 0, start: bool = False, **kw: Any) -> "EventIndex":
        """The index of the deployment ``settings`` name, in ``settings.index_database_url``."""
        from chain.connection import connect
        from chain.deploy import read_deployment

        w3 = connect(settings, start=start)
        chain_id = w3.eth.chain_id
        return cls(w3, read_deployment(settings.deployment_path(chain_id), chain_id), settings.index_database_url,
                   confirmations=confirmations, **kw)

    def _bind(self) -> None:
        """Tie the database to this chain and these contract addresses (refuse another's)."""
        addrs = ",".join(sorted(a.lower() for a in self.decoder.addresses))
        want = f"v{SCHEMA_VERSION}:{self.chain_id}:{addrs}"
        with self.engine.begin() as conn:
            have = conn.execute(select(meta.c.value).where(meta.c.key == "deployment")).scalar()
            if have is None:
                conn.execute(insert(meta).values(key="deployment", value=want))
            elif have != want:
                raise IndexMismatch(
                    f"the index at {self.engine.url!r} was built for another deployment or schema ({have[:60]}…); "
                    "delete it (it is rebuilt from the chain) or set TDS_INDEX_URL to another database")

    # ------------------------------------------------------------------ chain

    def _block(self, number: int) -> tuple[str, int] | None:
        """(hash, timestamp) of block ``number``, or None if the chain has no such block."""
        try:
            b = with_backoff(lambda: self.w3.eth.get_block(number))
        except BlockNotFound:
            return None
        return _hex(b["hash"]), int(b["timestamp"])

    def _hash(self, number: int) -> str:
        found = self._block(number)
        return found[0] if found else ""

    # ------------------------------------------------------------------ cursor and reorgs

    def indexed_block(self, conn: Connection | None = None) -> int | None:
        """The last block whose events are all in the index (None before the first window)."""
        if conn is None:
            with self.engine.connect() as c:
                return self.indexed_block(c)
        return conn.execute(select(cursor.c.block).where(cursor.c.name == CURSOR)).scalar()

    def _set_cursor(self, conn: Connection, block: int, block_hash: str) -> None:
        conn.execute(delete(cursor).where(cursor.c.name == CURSOR))
        conn.execute(insert(cursor).values(name=CURSOR, block=block, block_hash=block_hash))

    def _rewind_if_reorged(self, conn: Connection) -> int:
        """The next block to read, after rolling back whatever a reorg removed."""
        row = conn.execute(select(cursor.c.block, cursor.c.block_hash).where(cursor.c.name == CURSOR)).first()
        if row is None:
            return self.start_block
        if self._hash(row.block) == row.block_hash:
            return row.block + 1
        floor = max(self.start_block - 1, row.block - self.max_reorg)
        ancestor = floor
        known = conn.execute(select(blocks.c.number, blocks.c.hash)
                             .where(blocks.c.number < row.block, blocks.c.number > floor)
                             .order_by(blocks.c.number.desc()))
        for number, stored in known.all():
            if self._hash(number) == stored:
                ancestor = number
                break
        self.rollback(conn, ancestor)
        return ancestor + 1

    def rollback(self, conn: Connection, ancestor: int) -> None:
        """Forget every event above block ``ancestor`` and rebuild the state from the rest."""
        conn.execute(delete(events).where(events.c.block > ancestor))
        conn.execute(delete(event_keys).where(event_keys.c.block > ancestor))
        conn.execute(delete(blocks).where(blocks.c.number > ancestor))
        conn.execute(delete(cursor).where(cursor.c.name == CURSOR))
        if ancestor >= self.start_block:
            self._set_cursor(conn, ancestor, self._hash(ancestor))
        rebuild_state(conn, lambda: self.replay(conn), self.chain_id)

    def _with_proof(self, ev: ChainEvent) -> ChainEvent:
        """An ``IdentityBound`` with its binding proof from the transaction input (kept per event)."""
        if ev.name != "IdentityBound":
            return ev
        if ev.uid not in self._proofs:
            self._proofs[ev.uid] = with_published_proof(self.w3, ev).args["bindingProof"]
        return replace(ev, args={**ev.args, "bindingProof": self._proofs[ev.uid]})

    def replay(self, conn: Connection) -> Iterator[tuple[ChainEvent, int]]:
        """Every stored event, decoded again from its raw log, with its block time, in chain order."""
        rows = conn.execute(select(events).order_by(events.c.block, events.c.log_index)).all()
        for row in rows:
            ev = self.decoder.decode(stored_log(row))
            if ev is not None:
                yield self._with_proof(ev), row.block_time

    # ------------------------------------------------------------------ following

    def step(self) -> int | None:
        """Index the next confirmed window: the number of events stored, or None if nothing new
        is confirmed (or the chain changed under the window: the next step retries)."""
        head = with_backoff(lambda: self.w3.eth.block_number)
        safe = head - self.confirmations
        with self.engine.begin() as conn:
            start = self._rewind_if_reorged(conn)
        if start > safe:
            return None
        end = min(safe, start + self.max_range - 1)
        end_block = self._block(end)
        logs = with_backoff(lambda: self.w3.eth.get_logs(
            {"fromBlock": start, "toBlock": end, "address": self.decoder.addresses}))
        logs = sorted(logs, key=lambda l: (int(l["blockNumber"]), int(l["logIndex"])))
        seen: dict[int, tuple[str, int]] = {}
        for log in logs:
            number = int(log["blockNumber"])
            if number not in seen:
                found = self._block(number)
                if found is None or found[0] != _hex(log["blockHash"]):
                    return None  # a reorg between the calls: read again
                seen[number] = found
        if end_block is None or self._hash(end) != end_block[0]:
            return None
        seen[end] = end_block
        rows: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        decoded = []
        for log in logs:
            ev = self.decoder.decode(log)
            if ev is None:
                continue
            ev = self._with_proof(ev)
            when = seen[ev.block][1]
            decoded.append((ev, when))
            rows.append({"block": ev.block, "log_index": ev.log_index, "tx": ev.tx, "contract": ev.contract,
                         "name": ev.name, "address": ev.address,
                         "args": json.dumps(plain(ev.args), sort_keys=True, default=str),
                         "topics": json.dumps([_hex(t) for t in log["topics"]]), "data": _hex(log["data"]),
                         "block_time": when, "audited": is_audited(ev)})
            keys += [{"kind": k, "key": v, "block": ev.block, "log_index": ev.log_index} for k, v in keys_of(ev)]
        with self.engine.begin() as conn:
            if self.indexed_block(conn) != (start - 1 if start > self.start_block else None):
                return None  # another process indexed this window meanwhile
            if rows:
                conn.execute(insert(events), rows)
            if keys:
                conn.execute(insert(event_keys), keys)
            for ev, when in decoded:
                apply_event(conn, ev, when, self.chain_id)
            stored = len(decoded)
            conn.execute(delete(blocks).where(blocks.c.number >= start, blocks.c.number <= end))
            for number, (block_hash, when) in sorted(seen.items()):
                conn.execute(insert(blocks).values(number=number, hash=block_hash, time=when))
            self._set_cursor(conn, end, end_block[0])
        return stored

    def catch_up(self) -> int:
        """Index every confirmed window there is now; the number of events stored."""
        total = 0
        while (n := self.step()) is not None:
            total += n
        return total

    def run(self, stop: Callable[[], bool] = lambda: False, idle: float = 0.5,
            on_error: Callable[[Exception], None] | None = None) -> None:
        """Follow the chain until ``stop()``: catch up, then poll every ``idle`` seconds. Transient
        errors are reported to ``on_error`` (raised when None) and retried after ``idle``."""
        while not stop():
            try:
                if self.step() is None:
                    time.sleep(idle)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)
                time.sleep(idle)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """Indexed block, chain head, lag in blocks and row counts."""
        head = with_backoff(lambda: self.w3.eth.block_number)
        with self.engine.connect() as conn:
            block = self.indexed_block(conn)
            counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar() or 0
                      for t in (events, *STATE_TABLES)}
        return {"url": self.engine.url.render_as_string(hide_password=True), "chainId": self.chain_id,
                "indexedBlock": block, "head": head, "confirmations": self.confirmations,
                "lag": None if block is None else head - block, "counts": counts}
