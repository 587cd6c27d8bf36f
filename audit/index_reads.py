"""Reading the event index: the catalog and one asset as the gateway serves them (the same fields
as :func:`audit.trail.asset_summary`, plus the ``indexedBlock`` they are current at), and
:class:`IndexedReader`, a :class:`~audit.events.ChainReader` whose events come from the index
(decoded again from the stored raw logs with the published ABIs) — so the trail and the
verification built from the index can be compared with those built from the chain alone.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from web3 import Web3

from audit.events import ChainReader, UNVERIFIED, iso_time
from audit.index import CURSOR, EventIndex, stored_log
from audit.index_decode import stored_proof
from audit.index_tables import assets, blocks, cursor, events, grants, identities, jobs


def indexed_block(engine: Engine) -> int | None:
    """The block the index is complete up to (None when it is still empty)."""
    with engine.connect() as conn:
        return conn.execute(select(cursor.c.block).where(cursor.c.name == CURSOR)).scalar()


class _Names:
    """How the catalog names an account: bound DID, else contract, else deployment roles."""

    def __init__(self, conn: Connection, deployment: dict[str, Any]):
        self.bound = {r.account: (r.did if r.verified else UNVERIFIED + r.did)
                      for r in conn.execute(select(identities.c.account, identities.c.did, identities.c.verified))}
        self.contracts = {str(c["address"]).lower(): n for n, c in deployment["contracts"].items()}
        self.roles = deployment.get("roles") or {}

    def static(self, account: str) -> str | None:
        if account.lower() in self.contracts:
            return f"contract:{self.contracts[account.lower()]}"
        roles = [r for r, a in self.roles.items() if str(a).lower() == account.lower()]
        return "role:" + "+".join(sorted(roles)) if roles else None

    def now(self, account: str) -> str | None:
        return self.bound.get(account) or self.static(account)


def _summary(row: Any, names: _Names, grant_ids: list[int], job_ids: list[int], block: int | None) -> dict[str, Any]:
    count, total = row.rating_count, row.rating_sum
    return {
        "assetId": row.asset_id, "provider": row.provider,
        "provider_did": row.provider_did or names.static(row.provider),
        "holder": row.holder, "holder_did": names.now(row.holder), "state": row.state,
        "templateId": row.template_id, "classification": row.classification,
        "contentCid": row.content_cid, "metadataCid": row.metadata_cid, "manifestHash": row.manifest_hash,
        "qualityReportHash": row.quality_report_hash, "allowedOps": row.allowed_ops,
        "registered": {"block": row.registered_block, "tx": row.registered_tx, "time": iso_time(row.registered_time)},
        "grants": grant_ids, "jobs": job_ids,
        "rating": {"count": count, "sum": total, "mean": (total * 100 // count if count else 0) / 100},
        "indexedBlock": block,
    }


def catalog_page(engine: Engine, deployment: dict[str, Any], offset: int = 0,
                 limit: int | None = None) -> tuple[int | None, list[dict[str, Any]]]:
    """(indexed block, assets ``offset``.. ``offset+limit`` in id order), read in one transaction."""
    with engine.connect() as conn:
        block = conn.execute(select(cursor.c.block).where(cursor.c.name == CURSOR)).scalar()
        q = select(assets).order_by(assets.c.asset_id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        rows = conn.execute(q).all()
        if not rows:
            return block, []
        lo, hi = rows[0].asset_id, rows[-1].asset_id
        by_grant: dict[int, list[int]] = {}
        for r in conn.execute(select(grants.c.asset_id, grants.c.grant_id)
                              .where(grants.c.asset_id >= lo, grants.c.asset_id <= hi).order_by(grants.c.grant_id)):
            by_grant.setdefault(r.asset_id, []).append(r.grant_id)
        by_job: dict[int, list[int]] = {}
        for r in conn.execute(select(jobs.c.asset_id, jobs.c.job_id)
                              .where(jobs.c.asset_id >= lo, jobs.c.asset_id <= hi).order_by(jobs.c.job_id)):
            by_job.setdefault(r.asset_id, []).append(r.job_id)
        names = _Names(conn, deployment)
        return block, [_summary(r, names, by_grant.get(r.asset_id, []), by_job.get(r.asset_id, []), block)
                       for r in rows]


def asset_from_index(engine: Engine, deployment: dict[str, Any], asset_id: int) -> dict[str, Any] | None:
    """One asset as the catalog shows it, or None if the index has no such asset (yet)."""
    with engine.connect() as conn:
        block = conn.execute(select(cursor.c.block).where(cursor.c.name == CURSOR)).scalar()
        row = conn.execute(select(assets).where(assets.c.asset_id == asset_id)).first()
        if row is None:
            return None
        grant_ids = list(conn.execute(select(grants.c.grant_id).where(grants.c.asset_id == asset_id)
                                      .order_by(grants.c.grant_id)).scalars())
        job_ids = list(conn.execute(select(jobs.c.job_id).where(jobs.c.asset_id == asset_id)
                                    .order_by(jobs.c.job_id)).scalars())
        return _summary(row, _Names(conn, deployment), grant_ids, job_ids, block)


class IndexedReader(ChainReader):
    """A ChainReader over the index's events (up to its indexed block) instead of ``eth_getLogs``."""

    def __init__(self, w3: Web3, deployment: dict[str, Any], engine: Engine):
        super().__init__(w3, deployment)
        self.engine = engine

    @classmethod
    def of(cls, index: EventIndex) -> "IndexedReader":
        """The reader over ``index``'s database and deployment."""
        return cls(index.w3, index.deployment, index.engine)

    def refresh(self, *, full: bool = True) -> None:
        """(Re)load every indexed event, decoded from its stored raw log."""
        with self.engine.connect() as conn:
            head = conn.execute(select(cursor.c.block).where(cursor.c.name == CURSOR)).scalar()
            rows = conn.execute(select(events).order_by(events.c.block, events.c.log_index)).all()
            self._times.update({r.number: r.time for r in conn.execute(select(blocks.c.number, blocks.c.time))})
        out = []
        for row in rows:
            ev = self.decoder.decode(stored_log(row))
            if ev is not None:
                if ev.name == "IdentityBound":  # the proof the indexer stored: no chain call to verify it
                    ev = replace(ev, args={**ev.args, "bindingProof": stored_proof(json.loads(row.args))})
                out.append(ev)
                self._times[row.block] = row.block_time
        self._events = out
        self._head = head
        self._bindings = None

    def refresh_if_stale(self) -> None:
        """Reload if the index has advanced (or rolled back) since the last load."""
        if self._events is None or indexed_block(self.engine) != self._head:
            self.refresh()
