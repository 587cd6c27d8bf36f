"""Compliance facts from the shared event index (:mod:`audit.index`) instead of the node: the
stored events (decoded back with the published ABIs) and the index's state tables — assets
(holder, state), grants (status), jobs (status), nodes, participants' roles — answer what
:class:`oversight.compliance.history.ChainHistory` asks the node with ``eth_getLogs`` and contract
views. :func:`gather_indexed` builds the same :class:`~oversight.compliance.facts.Facts` from them,
as of the indexed block (tests/oversight/test_compliance.py compares both on a world with planted
violations).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from audit.index import EventIndex
from audit.index_events import IndexHead, events_of, head, stored_time
from audit.index_tables import assets, grants, jobs, nodes, participant_roles
from did.identity import Identity
from oversight.compliance.facts import Facts, Fetch, gather_from
from oversight.compliance.history import ZERO32, Logged, NodeState
from oversight.index_source import IndexUnavailable

NODE_KIND_NAMES = {"compute": "compute node", "party": "party node"}
ATTEMPTS = 3       # re-read when the index moved (or rolled back) while the facts were gathered


class IndexHistory:
    """What a scan reads, answered by the event index at the block it stands at when created."""

    def __init__(self, index: EventIndex, from_block: int | None = None):
        self.index, self.engine = index, index.engine
        self.from_block = index.start_block if from_block is None else from_block
        url = self.engine.url.render_as_string(hide_password=True)
        with self.engine.connect() as conn:
            at = head(conn)
            if at is None:
                raise IndexUnavailable(url, "it has indexed nothing of this deployment yet")
            when = stored_time(conn, at.block)
        self.at: IndexHead = at
        self._time = when if when is not None else int(index.w3.eth.get_block(at.block)["timestamp"])
        self._logs: dict[tuple[str, str], list[Logged]] = {}

    def unchanged(self) -> bool:
        """True if the index still stands where it stood when this history was created."""
        with self.engine.connect() as conn:
            return head(conn) == self.at

    def head(self) -> tuple[int, int]:
        return self.at.block, self._time

    def logs(self, contract: str, event: str, **match: Any) -> list[Logged]:
        key = (contract, event)
        if key not in self._logs:
            with self.engine.connect() as conn:
                found = events_of(conn, self.index.decoder, [key], self.from_block, self.at.block)
            self._logs[key] = [Logged(ev.args, ev.uid) for ev, _ in found]
        return [e for e in self._logs[key] if all(e.args.get(k) == v for k, v in match.items())]

    def _one(self, query: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def asset(self, asset_id: int) -> tuple[str, str | None]:
        row = self._one(select(assets.c.state, assets.c.holder).where(assets.c.asset_id == asset_id))
        return ("none", None) if row is None else (row.state, row.holder)

    def grant_status(self, grant_id: int) -> str:
        row = self._one(select(grants.c.status).where(grants.c.grant_id == grant_id))
        return "none" if row is None else row.status

    def job_status(self, job_id: int) -> str:
        row = self._one(select(jobs.c.status).where(jobs.c.job_id == job_id))
        return "none" if row is None else row.status

    def node(self, address: str) -> NodeState | None:
        row = self._one(select(nodes).where(nodes.c.address == address))
        if row is None or row.state == "removed":
            return None
        return NodeState(NODE_KIND_NAMES.get(row.kind, row.kind), row.state == "active", row.name, row.endpoint)

    def consumer_credential(self, address: str) -> str | None:
        row = self._one(select(participant_roles.c.credential_hash)
                        .where(participant_roles.c.account == address, participant_roles.c.role == "CONSUMER"))
        if row is None or row.credential_hash == "0x" + ZERO32.hex():
            return None
        return row.credential_hash


def gather_indexed(index: EventIndex, fetch: Fetch, *, from_block: int | None = None, oplogs: Iterable[Path] = (),
                   credentials: dict[str, dict[str, Any]] | None = None, reader: Identity | None = None,
                   reader_role: str = "regulator") -> Facts:
    """All facts of one scan from the index, as of its indexed block (read again, up to
    ``ATTEMPTS`` times, if the index moved meanwhile, so events and state tables agree)."""
    for _ in range(ATTEMPTS):
        h = IndexHistory(index, from_block)
        facts = gather_from(h, fetch, oplogs=oplogs, credentials=credentials, reader=reader,
                            reader_role=reader_role)
        if h.unchanged():
            break
    return facts
