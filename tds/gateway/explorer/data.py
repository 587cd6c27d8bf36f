"""What the explorer reads: the event index's tables by SQL (catalog, totals, participants,
grants, jobs, payments, batches, workflows), ``audit.index_entities`` for trails and histories,
the node for verification, tokens and everything about transactions and blocks.

A gateway started with an index shares it; one without gets a private SQLite index beside its
home (``$TDS_HOME/explorer/index-<chainId>.sqlite``), caught up at most once a second on reads."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select

from audit.index_entities import EntityReads
from audit.index_tables import (
    alerts,
    anchors,
    assets,
    dataset_versions,
    grants,
    identities,
    jobs,
    log_batches,
    nodes,
    participant_roles,
    payments,
    workflow_steps,
    workflows,
)
from tds.gateway.explorer.abis import PublishedAbis
from tds.gateway.explorer.units import ZERO_ADDRESS, wei_text
from tds.gateway.explorer.verification import Verifier

ERC20 = [{"name": "decimals", "type": "function", "stateMutability": "view", "inputs": [],
          "outputs": [{"name": "", "type": "uint8"}]},
         {"name": "symbol", "type": "function", "stateMutability": "view", "inputs": [],
          "outputs": [{"name": "", "type": "string"}]}]
CATCH_UP_EVERY_S = 1.0


def _rows(conn: Any, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


class ExplorerData:
    """The explorer's reads over one gateway's chain state and (shared or private) event index."""

    def __init__(self, state: Any, entities: Any, logs_dir: Path | None, fetch: Callable[[str], bytes | None] | None):
        self.state, self.entities, self.logs_dir, self.fetch = state, entities, logs_dir, fetch
        self._own: Any = None
        self._own_reads: EntityReads | None = None
        self._caught_up = 0.0
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[int, str]] = {}
        self.verifier = Verifier(self.reads, logs_dir, fetch)
        self._abis: PublishedAbis | None = None
        self.contract_verdicts: dict[tuple[str, str], Any] = {}  # (name, address) → audit.contracts verdict

    # ------------------------------------------------------------------ sources

    def index(self) -> Any:
        """The event index (the gateway's, or this explorer's own, caught up)."""
        if self.entities is not None:
            return self.entities.index
        with self._lock:
            if self._own is None:
                from audit.index import EventIndex, IndexMismatch

                r = self.state.reader()
                folder = Path(self.state.settings.home) / "explorer"
                path = folder / f"index-{r.chain_id}.sqlite"
                try:
                    self._own = EventIndex(r.w3, r.deployment, f"sqlite:///{path}")
                except IndexMismatch:  # another deployment on this chain id: rebuilt from the chain
                    for p in folder.glob(path.name + "*"):
                        p.unlink()
                    self._own = EventIndex(r.w3, r.deployment, f"sqlite:///{path}")
                self._own_reads = EntityReads(r.w3, r.deployment, self._own.engine)
            if time.monotonic() - self._caught_up > CATCH_UP_EVERY_S:
                self._own.catch_up()
                self._caught_up = time.monotonic()
            return self._own

    def reads(self) -> EntityReads:
        """Entity reads (trail, job, grant, collaboration, audit pages) over the index."""
        if self.entities is not None:
            return self.entities.reads
        self.index()
        assert self._own_reads is not None
        return self._own_reads

    @property
    def engine(self) -> Any:
        """The index's SQLAlchemy engine."""
        return self.index().engine

    @property
    def base(self) -> Any:
        """A ChainReader bound to the deployment's contracts (its ABIs, its w3)."""
        return self.reads().base

    @property
    def w3(self) -> Any:
        """The node (web3)."""
        return self.base.w3

    def abis(self) -> PublishedAbis:
        """The published and governance ABIs (loaded once): decoding beyond the system contracts."""
        if self._abis is None:
            from chain.sources import sources_folder

            settings = getattr(self.state, "settings", None)
            folder = None
            try:
                folder = sources_folder(Path(settings.deployment_path(self.base.chain_id))) if settings else None
            except Exception:  # noqa: BLE001 - no deployment file configured: nothing published
                folder = None
            self._abis = PublishedAbis.load(folder, Path(settings.artifacts_dir) if settings else None)
        return self._abis

    def indexed_block(self) -> int | None:
        """The last block the index holds completely."""
        return self.index().indexed_block()

    # ------------------------------------------------------------------ units

    def token(self, address: str | None) -> tuple[int, str]:
        """(decimals, symbol) of a payment token; the native coin is (18, ETH)."""
        if not address or address.lower() == ZERO_ADDRESS:
            return 18, "ETH"
        if address not in self._tokens:
            try:
                c = self.w3.eth.contract(address=self.w3.to_checksum_address(address), abi=ERC20)
                self._tokens[address] = (int(c.functions.decimals().call()), str(c.functions.symbol().call()))
            except Exception:  # noqa: BLE001 - not an ERC-20 the node answers for: raw units
                self._tokens[address] = (0, "units of " + address)
        return self._tokens[address]

    def amount(self, value: int | str | None, token: str | None) -> str:
        """``value`` of ``token`` in its own units (``0.001 ETH``, ``12.5 CRD``)."""
        decimals, symbol = self.token(token)
        return wei_text(value, decimals, symbol)

    def did_of(self, account: str | None) -> str | None:
        """The DID bound to ``account`` (``unverified:`` when its proof did not verify), a contract's name, or None."""
        if not account:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(identities).where(identities.c.account == account)).first()
        if row is not None:
            return row.did if row.verified else "unverified:" + row.did
        name = self.base.names_by_address.get(account.lower())
        if name:
            return f"contract:{name}"
        roles = [r for r, a in (self.base.deployment.get("roles") or {}).items() if str(a).lower() == account.lower()]
        return "role:" + "+".join(sorted(roles)) if roles else None

    def accounts_of_did(self, did: str) -> list[str]:
        """Every account ever bound to ``did``."""
        return self.reads().accounts_of_did(did)

    # ------------------------------------------------------------------ the space

    def catalog(self) -> list[dict[str, Any]]:
        """Every asset with holder, classification, state, rating, grants and job (use) counts."""
        with self.engine.connect() as conn:
            rows = _rows(conn, select(assets).order_by(assets.c.asset_id))
            g = dict(conn.execute(select(grants.c.asset_id, func.count()).group_by(grants.c.asset_id)).all())
            j = dict(conn.execute(select(jobs.c.asset_id, func.count()).group_by(jobs.c.asset_id)).all())
        for r in rows:
            r["grants"], r["uses"] = g.get(r["asset_id"], 0), j.get(r["asset_id"], 0)
            r["rating"] = r["rating_sum"] / r["rating_count"] if r["rating_count"] else None
        return rows

    def totals(self) -> dict[str, Any]:
        """Counts of assets, grants, jobs, workflows, frozen assets and grants, open alerts; paid per token."""
        with self.engine.connect() as conn:
            def count(t: Any, *where: Any) -> int:
                return conn.execute(select(func.count()).select_from(t).where(*where)).scalar() or 0
            paid: dict[str, int] = {}
            for token, amount in conn.execute(select(payments.c.token, payments.c.amount).where(
                    payments.c.kind == "credit", or_(payments.c.share.is_(None), payments.c.share != "refund"))):
                paid[token] = paid.get(token, 0) + int(amount)
            return {"assets": count(assets), "grants": count(grants), "jobs": count(jobs),
                    "collaborations": count(workflows, workflows.c.kind == "collaboration"),
                    "frozen": count(assets, assets.c.state == "frozen") + count(grants, grants.c.frozen.is_(True)),
                    "alerts": count(alerts), "open_alerts": count(alerts, alerts.c.lifted_block.is_(None)),
                    "paid": paid, "batches": count(log_batches)}

    def latest(self, n: int = 15, actors: list[str] | None = None) -> list[Any]:
        """The ``n`` latest audit entries (of ``actors`` only, when given), newest first."""
        reads = self.reads()
        _, total, _ = reads.audit_page(actors=actors, limit=1)
        _, _, page = reads.audit_page(actors=actors, offset=max(0, total - n), limit=n)
        return list(reversed(page))

    # ------------------------------------------------------------------ entities

    def asset(self, asset_id: int) -> dict[str, Any] | None:
        """An asset's state row with its dataset versions, grants and jobs, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(assets).where(assets.c.asset_id == asset_id)).first()
            if row is None:
                return None
            out = dict(row._mapping)
            out["grants"] = _rows(conn, select(grants).where(grants.c.asset_id == asset_id).order_by(grants.c.grant_id))
            out["jobs"] = _rows(conn, select(jobs).where(jobs.c.asset_id == asset_id).order_by(jobs.c.job_id))
            out["versions"] = _rows(conn, select(dataset_versions).where(dataset_versions.c.asset_id == asset_id)
                                    .order_by(dataset_versions.c.version))
        return out

    def job_row(self, job_id: int) -> dict[str, Any] | None:
        """A job's state row with its payments, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.job_id == job_id)).first()
            if row is None:
                return None
            out = dict(row._mapping)
            out["payments"] = _rows(conn, select(payments).where(payments.c.job_id == job_id)
                                    .order_by(payments.c.block, payments.c.log_index))
        return out

    def assets_of_jobs(self, job_ids: set[int]) -> set[int]:
        """The assets ``job_ids`` ran on."""
        if not job_ids:
            return set()
        with self.engine.connect() as conn:
            return {r.asset_id for r in conn.execute(select(jobs.c.asset_id).where(jobs.c.job_id.in_(sorted(job_ids))))}

    def grant_price(self, grant_id: int) -> tuple[str | None, str | None]:
        """(payment token, price per use) of a grant, from its GrantIssued terms."""
        _, g = self.reads().grant(grant_id)
        terms = (g or {}).get("terms") or {}
        return terms.get("paymentToken"), terms.get("pricePerUse")

    def workflow(self, kind: str, flow_id: int) -> dict[str, Any] | None:
        """A workflow or collaboration (``kind`` jobs | collaboration) with its steps, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(workflows).where(workflows.c.kind == kind,
                                                       workflows.c.workflow_id == flow_id)).first()
            if row is None:
                return None
            out = dict(row._mapping)
            out["steps"] = _rows(conn, select(workflow_steps).where(workflow_steps.c.kind == kind,
                                                                    workflow_steps.c.workflow_id == flow_id)
                                 .order_by(workflow_steps.c.step))
        return out

    def workflow_history(self, flow_id: int) -> list[Any]:
        """The Jobs workflow's audit entries (requested, steps opened, completed or stopped)."""
        from audit.trail import chain_entries

        reads = self.reads()
        with self.engine.connect() as conn:
            block = reads.block(conn)
            found = reads.by_keys(conn, {"workflow": [flow_id]})
            return chain_entries(reads.reader(conn, block, found),
                                 lambda ev: ev.contract == "Jobs" and ev.args.get("workflowId") == flow_id)

    def batch(self, batch_id: int) -> dict[str, Any] | None:
        """An anchored log batch, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(log_batches).where(log_batches.c.batch_id == batch_id)).first()
        return dict(row._mapping) if row is not None else None

    def participant(self, account: str) -> dict[str, Any]:
        """What the index knows of an account: identity, roles, assets, grants, jobs, payments, node."""
        with self.engine.connect() as conn:
            ident = conn.execute(select(identities).where(identities.c.account == account)).first()
            return {
                "account": account, "did": ident.did if ident else None, "verified": bool(ident and ident.verified),
                "roles": _rows(conn, select(participant_roles).where(participant_roles.c.account == account)),
                "assets": _rows(conn, select(assets).where(or_(assets.c.holder == account,
                                                               assets.c.provider == account))
                                .order_by(assets.c.asset_id)),
                "grants": _rows(conn, select(grants).where(or_(grants.c.consumer == account,
                                                               grants.c.provider == account))
                                .order_by(grants.c.grant_id)),
                "jobs": _rows(conn, select(jobs).where(or_(jobs.c.consumer == account, jobs.c.oracle == account))
                              .order_by(jobs.c.job_id)),
                "payments": _rows(conn, select(payments).where(payments.c.payee == account)
                                  .order_by(payments.c.block, payments.c.log_index)),
                "batches": _rows(conn, select(log_batches).where(log_batches.c.producer == account)
                                 .order_by(log_batches.c.batch_id)),
                "node": _rows(conn, select(nodes).where(nodes.c.address == account)),
            }

    def find_number(self, n: int) -> list[tuple[str, int]]:
        """Every entity numbered ``n``: (page kind, id) for asset, grant, job, batch, workflows, block."""
        found: list[tuple[str, int]] = []
        with self.engine.connect() as conn:
            for kind, table, col in (("asset", assets, assets.c.asset_id), ("grant", grants, grants.c.grant_id),
                                     ("batch", log_batches, log_batches.c.batch_id)):
                if n < 2**63 and conn.execute(select(col).where(col == n)).first() is not None:
                    found.append((kind, n))
            if conn.execute(select(jobs.c.job_id).where(jobs.c.job_id == n)).first() is not None:
                found.append(("job", n))
            for kind in ("jobs", "collaboration"):
                if conn.execute(select(workflows.c.workflow_id).where(workflows.c.kind == kind,
                                                                       workflows.c.workflow_id == n)).first():
                    found.append((f"workflow/{kind}", n))
        if n <= self.w3.eth.block_number:
            found.append(("block", n))
        return found

    def find_hash(self, value: str) -> list[tuple[str, str]]:
        """What the index records with this 32-byte hash: anchors (their tx), assets (a manifest of any
        version, a quality report), jobs, batches."""
        v = value.lower()
        out: list[tuple[str, str]] = []
        with self.engine.connect() as conn:
            for r in conn.execute(select(anchors.c.tx).where(func.lower(anchors.c.hash) == v)):
                out.append(("tx", r.tx))
            for r in conn.execute(select(assets.c.asset_id).where(or_(func.lower(assets.c.manifest_hash) == v,
                                                                       func.lower(assets.c.quality_report_hash) == v))):
                out.append(("asset", str(r.asset_id)))
            for r in conn.execute(select(dataset_versions.c.asset_id).distinct()   # a later version's manifest
                                  .where(func.lower(dataset_versions.c.manifest_hash) == v)):
                if ("asset", str(r.asset_id)) not in out:
                    out.append(("asset", str(r.asset_id)))
            for r in conn.execute(select(jobs.c.job_id).where(or_(func.lower(jobs.c.result_hash) == v,
                                                                   func.lower(jobs.c.params_hash) == v))):
                out.append(("job", str(r.job_id)))
            for r in conn.execute(select(log_batches.c.batch_id).where(func.lower(log_batches.c.root) == v)):
                out.append(("batch", str(r.batch_id)))
        return out

    # ------------------------------------------------------------------ verification

    def verdicts(self, asset: int | None = None) -> list[dict[str, Any]]:
        """``audit.verify`` verdicts of one asset (every indexed asset and batch when None), over the
        index at its indexed block (computed once per block: :mod:`tds.gateway.explorer.verification`)."""
        if asset is not None:
            return self.verifier.asset(asset) or []
        with self.engine.connect() as conn:
            ids = [r.asset_id for r in conn.execute(select(assets.c.asset_id))]
            batches = [r.batch_id for r in conn.execute(select(log_batches.c.batch_id))]
        return self.verifier.scope(ids, batches)
