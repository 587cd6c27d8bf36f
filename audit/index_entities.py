"""One entity at a time from the event index, by SQL: an asset's trail, a job, a grant, a
collaboration, the audit log filtered — what the gateway serves without reading every event.

The trail and the job are not re-implemented: the events that can belong to the entity are
fetched through ``event_keys`` (the asset's, then its grants' and applications', then its jobs',
workflows', collaborations', the hashes it recorded, its payees' withdrawals, its actors' log
batches) and handed, with the identity events the DID names need, to a reader that holds only
them; :func:`audit.trail.build_trail` and :func:`audit.trail.job_summary` then pick exactly what
they pick from the whole chain — a superset in, the same answer out (a test compares both).
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.engine import Connection, Engine
from web3 import Web3

from audit.events import ChainEvent, ChainReader, plain
from audit.index import CURSOR
from audit.index_decode import FastLogDecoder
from audit.index_keys import key_text
from audit.index_tables import (alerts, collab_uses, cursor, event_keys, events, grants, jobs, participant_roles,
                                payments, workflow_steps, workflows)
from audit.trail import ACTIONS, TrailEntry, build_trail, chain_entries, job_summary

CHUNK = 500  # ids per IN (...) list
IDENTITY = ("IdentityBound",)
BATCH_EVENTS = ("BatchAnchored",)


class EntityReads:
    """Reads one entity from the index at ``engine`` for ``deployment`` (no chain call: the
    ``w3`` is only used for its ABI codec); decoded events are kept in a bounded cache."""

    def __init__(self, w3: Web3, deployment: dict[str, Any], engine: Engine, cache_events: int = 0):
        self.engine = engine
        self.base = ChainReader(w3, deployment)
        self.decoder = FastLogDecoder(w3, self.base.contracts)
        self._decoded: OrderedDict[tuple[int, int, str], ChainEvent] = OrderedDict()
        self._limit = cache_events
        self._lock = threading.Lock()
        self._identity: tuple[int | None, list[tuple[ChainEvent, int]]] | None = None

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def block(conn: Connection) -> int | None:
        """The indexed block as ``conn`` sees it."""
        return conn.execute(select(cursor.c.block).where(cursor.c.name == CURSOR)).scalar()

    def _decode(self, row: Any) -> ChainEvent | None:
        if not self._limit:  # rebuilt from the stored arguments (~35 µs): cheaper than a cache's GC cost
            return self.decoder.from_stored(row)
        key = (row.block, row.log_index, row.tx)
        ev = self._decoded.get(key)
        if ev is None:
            ev = self.decoder.from_stored(row)
            if ev is not None:
                with self._lock:
                    self._decoded[key] = ev
                    if len(self._decoded) > self._limit:
                        self._decoded.popitem(last=False)
        return ev

    def _decoded_rows(self, rows: Iterable[Any]) -> list[tuple[ChainEvent, int]]:
        out = []
        for row in rows:
            ev = self._decode(row)
            if ev is not None:
                out.append((ev, row.block_time))
        return out

    def by_keys(self, conn: Connection, wanted: dict[str, Iterable[Any]],
                names: Iterable[str] | None = None) -> list[tuple[ChainEvent, int]]:
        """The events naming any of ``wanted`` (kind → ids / accounts), optionally only ``names``:
        one query for all kinds (per CHUNK keys), as plain SQL text (building it with the
        expression language cost more than running it)."""
        pairs = [(kind, key) for kind, values in wanted.items() for key in sorted({key_text(v) for v in values})]
        out: list[tuple[ChainEvent, int]] = []
        for lo in range(0, len(pairs), CHUNK):
            by_kind: dict[str, list[str]] = {}
            for kind, key in pairs[lo:lo + CHUNK]:
                by_kind.setdefault(kind, []).append(key)
            params: dict[str, Any] = {}
            ors = []
            for i, (kind, keys) in enumerate(by_kind.items()):
                params[f"k{i}"] = kind
                params.update({f"k{i}_{j}": key for j, key in enumerate(keys)})
                ors.append(f"(kind = :k{i} AND key IN ({', '.join(f':k{i}_{j}' for j in range(len(keys)))}))")
            only = ""
            if names is not None:
                names = list(names)
                params.update({f"n{j}": n for j, n in enumerate(names)})
                only = f" WHERE e.name IN ({', '.join(f':n{j}' for j in range(len(names)))})"
            sql = (f"SELECT e.* FROM events e JOIN (SELECT DISTINCT block, log_index FROM event_keys WHERE "
                   f"{' OR '.join(ors)}) s ON e.block = s.block AND e.log_index = s.log_index{only}")
            out += self._decoded_rows(conn.execute(text(sql), params))
        return out

    def _identities(self, conn: Connection, block: int | None) -> list[tuple[ChainEvent, int]]:
        """Every identity event (the DID names need them all), re-read when the index moved."""
        hit = self._identity
        if hit is None or hit[0] != block:
            rows = conn.execute(select(events).where(events.c.contract == "IdentityRegistry",
                                                     events.c.name.in_(IDENTITY)))
            hit = (block, self._decoded_rows(rows))
            self._identity = hit
        return hit[1]

    def reader(self, conn: Connection, block: int | None, found: Iterable[tuple[ChainEvent, int]]) -> ChainReader:
        """A reader holding only ``found`` (plus the identity events), in chain order."""
        r = copy.copy(self.base)
        uniq: dict[tuple[int, int], ChainEvent] = {}
        times: dict[int, int] = {}
        for ev, when in [*found, *self._identities(conn, block)]:
            uniq[ev.position] = ev
            times[ev.block] = when
        r._events = [uniq[p] for p in sorted(uniq)]
        r._times, r._head, r._bindings = times, block, None
        return r

    # ------------------------------------------------------------------ entities

    def asset_trail(self, asset_id: int) -> tuple[int | None, list[TrailEntry] | None]:
        """(indexed block, the asset's trail), or (block, None) if the index has no such asset."""
        with self.engine.connect() as conn:
            block = self.block(conn)
            found = self.asset_events(conn, asset_id)
            return block, None if found is None else build_trail(self.reader(conn, block, found), asset_id)

    def asset_reader(self, asset_id: int) -> tuple[int | None, ChainReader | None]:
        """(indexed block, a reader holding only the events that can concern ``asset_id``): what
        ``tds audit asset|verify --asset`` need, without loading every event of the space."""
        with self.engine.connect() as conn:
            block = self.block(conn)
            found = self.asset_events(conn, asset_id)
            if found is None:
                return block, None
            # verification checks every published log batch it is given against its anchor
            found += self._decoded_rows(conn.execute(select(events).where(events.c.name.in_(BATCH_EVENTS))))
            return block, self.reader(conn, block, found)

    def asset_events(self, conn: Connection, asset_id: int) -> list[tuple[ChainEvent, int]] | None:
        """Every event that can belong to the asset's trail or its verification (None: no such asset)."""
        found = self.by_keys(conn, {"asset": [asset_id]})
        if not any(ev.name == "AssetRegistered" for ev, _ in found):
            return None
        grant_ids = {ev.args["grantId"] for ev, _ in found if ev.name == "GrantIssued"}
        apps = {ev.args["applicationId"] for ev, _ in found if ev.name == "ApplicationSubmitted"}
        found += self.by_keys(conn, {"grant": grant_ids, "application": apps})
        evs = [ev for ev, _ in found]
        job_ids = {e.args["jobId"] for e in evs if e.name == "JobRequested" and e.args["grantId"] in grant_ids}
        flows = {e.args["workflowId"] for e in evs if e.name == "WorkflowRequested"}
        collabs = {e.args["id"] for e in evs if e.name == "StepGrantConsumed"}
        hashes = {plain(e.args[k]) for e in evs for k in ("qualityReportHash", "manifestHash", "finalRecordHash",
                                                          "destructionProofHash") if k in e.args}
        found += self.by_keys(conn, {"job": job_ids, "workflow": flows, "collab": collabs})
        # anchors of a recorded hash, about a job, or an older deployment's DATASET_VERSION anchor of the asset
        found += self.by_keys(conn, {"hash": hashes, "subject": job_ids | {asset_id}}, names=["HashAnchored"])
        evs = [ev for ev, _ in found]
        payees = {e.args["payee"] for e in evs if e.name == "Credited"}
        found += self.by_keys(conn, {"payee": payees}, names=["Withdrawn"])
        actors = {ev.args.get(k) for ev, _ in found for k in ("provider", "consumer", "oracle", "by", "payee")}
        actors.discard(None)
        found += self.by_keys(conn, {"producer": actors}, names=["BatchAnchored"])
        return found

    def job(self, job_id: int) -> tuple[int | None, dict[str, Any] | None]:
        """(indexed block, the job as :func:`audit.trail.job_summary` shows it, or None)."""
        with self.engine.connect() as conn:
            block = self.block(conn)
            found = self.by_keys(conn, {"job": [job_id]})
            req = [ev for ev, _ in found if ev.name == "JobRequested"]
            if not req:
                return block, None
            found += self.by_keys(conn, {"grant": [req[0].args["grantId"]]}, names=["GrantIssued"])
            return block, job_summary(self.reader(conn, block, found), job_id)

    def _history(self, conn: Connection, block: int | None, found: list[tuple[ChainEvent, int]],
                 keep: Any) -> list[dict[str, Any]]:
        r = self.reader(conn, block, found)
        return [e.to_dict() for e in chain_entries(r, keep)]

    def grant(self, grant_id: int) -> tuple[int | None, dict[str, Any] | None]:
        """(indexed block, a grant: its terms, state, uses, jobs, collaboration uses, alerts, history)."""
        with self.engine.connect() as conn:
            block = self.block(conn)
            row = conn.execute(select(grants).where(grants.c.grant_id == grant_id)).first()
            if row is None:
                return block, None
            found = self.by_keys(conn, {"grant": [grant_id]})
            issued = next(ev for ev, _ in found if ev.name == "GrantIssued")
            job_rows = conn.execute(select(jobs.c.job_id, jobs.c.status).where(jobs.c.grant_id == grant_id)
                                    .order_by(jobs.c.job_id)).all()
            uses = conn.execute(select(collab_uses.c.collab_id, collab_uses.c.step, collab_uses.c.use_id)
                                .where(collab_uses.c.grant_id == grant_id).order_by(collab_uses.c.use_id)).all()
            alert_rows = conn.execute(select(alerts).where(alerts.c.kind == "grant-frozen",
                                                           alerts.c.subject == grant_id)
                                      .order_by(alerts.c.block, alerts.c.log_index)).all()
            history = self._history(conn, block, found, lambda ev: ev.contract == "Authorizations"
                                    and ev.args.get("grantId") == grant_id)
        return block, {
            "grantId": grant_id, "assetId": row.asset_id, "consumer": row.consumer, "provider": row.provider,
            "status": row.status, "frozen": row.frozen, "uses": row.uses, "restored": row.restored,
            "maxUses": row.max_uses,
            "terms": plain(issued.args.get("terms")), "issued": {"block": issued.block, "tx": issued.tx},
            "jobs": [{"jobId": j.job_id, "status": j.status} for j in job_rows],
            "collaborationUses": [{"collaborationId": u.collab_id, "step": u.step, "useId": u.use_id} for u in uses],
            "alerts": [_alert(a) for a in alert_rows], "history": history, "indexedBlock": block,
        }

    def collaboration(self, collab_id: int) -> tuple[int | None, dict[str, Any] | None]:
        """(indexed block, a collaboration: status, steps with result hashes, grant uses, payments, history)."""
        with self.engine.connect() as conn:
            block = self.block(conn)
            row = conn.execute(select(workflows).where(workflows.c.kind == "collaboration",
                                                       workflows.c.workflow_id == collab_id)).first()
            if row is None:
                return block, None
            steps = conn.execute(select(workflow_steps).where(workflow_steps.c.kind == "collaboration",
                                                              workflow_steps.c.workflow_id == collab_id)
                                 .order_by(workflow_steps.c.step)).all()
            uses = conn.execute(select(collab_uses).where(collab_uses.c.collab_id == collab_id)
                                .order_by(collab_uses.c.step, collab_uses.c.use_id)).all()
            use_ids = [u.use_id for u in uses]
            paid = conn.execute(select(payments).where(payments.c.contract == "Collaborations", or_(
                payments.c.job_id.in_(use_ids), and_(payments.c.job_id == collab_id, payments.c.share == "refund")))
                .order_by(payments.c.block, payments.c.log_index)).all()
            found = self.by_keys(conn, {"collab": [collab_id]})
            history = self._history(conn, block, found, lambda ev: ev.contract == "Collaborations")
        return block, {
            "collaborationId": collab_id, "initiator": row.initiator, "status": row.status,
            "stepCount": row.step_count, "paymentToken": row.payment_token, "amount": row.amount,
            "stepTimeout": row.step_timeout, "descriptionHash": row.description_hash,
            "stoppedStep": row.stopped_step, "reasonCode": row.reason_code, "refund": row.refund,
            "requested": {"block": row.requested_block, "time": row.requested_time}, "endedBlock": row.ended_block,
            "steps": [{"step": s.step, "status": s.status, "operation": s.operation, "paramsHash": s.params_hash,
                       "nodes": _json_list(s.nodes), "deadline": s.deadline, "coordinator": s.coordinator,
                       "resultHash": s.result_hash, "resultCid": s.result_cid} for s in steps],
            "grantUses": [{"step": u.step, "grantId": u.grant_id, "assetId": u.asset_id, "useId": u.use_id,
                           "price": u.price} for u in uses],
            "payments": [{"payee": p.payee, "token": p.token, "useId": p.job_id, "amount": p.amount,
                          "share": p.share, "tx": p.tx} for p in paid],
            "history": history, "indexedBlock": block,
        }

    # ------------------------------------------------------------------ the audit log

    def audit_page(self, *, actors: Iterable[str] | None = None, action: str | None = None,
                   since: int | None = None, until: int | None = None, visible_to: str | None = None,
                   offset: int = 0, limit: int = 500) -> tuple[int | None, int, list[TrailEntry]]:
        """(indexed block, how many audit entries match, the page ``offset``..``offset+limit``),
        filtered and paged in SQL: ``actors`` (accounts), ``action``, block-time bounds, and
        ``visible_to`` (an account: only entries it acted in or was paid / sent something by)."""
        q = select(events).where(events.c.audited.is_(True))
        if action is not None:
            pairs = [k for k, (act, _) in ACTIONS.items() if act == action]
            q = q.where(or_(*[and_(events.c.contract == c, events.c.name == n) for c, n in pairs]))
        if since is not None:
            q = q.where(events.c.block_time >= since)
        if until is not None:
            q = q.where(events.c.block_time <= until)
        for kinds, accounts in ((("actor",), actors), (("actor", "payee", "to"), [visible_to] if visible_to else None)):
            if accounts is None:
                continue
            keys = [key_text(a) for a in accounts]
            sub = select(event_keys.c.block, event_keys.c.log_index).where(
                event_keys.c.kind.in_(kinds), event_keys.c.key.in_(keys)).distinct().subquery()
            q = q.join(sub, and_(events.c.block == sub.c.block, events.c.log_index == sub.c.log_index))
        with self.engine.connect() as conn:
            block = self.block(conn)
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar() or 0
            rows = conn.execute(q.order_by(events.c.block, events.c.log_index).offset(offset).limit(limit))
            found = self._decoded_rows(rows)
            page = {ev.position for ev, _ in found}
            return block, total, chain_entries(self.reader(conn, block, found), lambda ev: ev.position in page)

    def holds_role(self, account: str, roles: Iterable[str], now: float) -> bool:
        """``IdentityRegistry.hasParticipantRole`` for any of ``roles`` (names), read from the index:
        granted and not revoked, not expired at ``now`` (unix seconds), its credential not revoked."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(participant_roles).where(participant_roles.c.account == account,
                                                                participant_roles.c.role.in_(list(roles)))).all()
            live = [r for r in rows if r.valid_until == 0 or r.valid_until >= now]
            if not live:
                return False
            revoked = {plain(ev.args["credentialHash"]) for ev, _ in self._decoded_rows(conn.execute(
                select(events).where(events.c.contract == "IdentityRegistry", events.c.name == "CredentialRevoked")))}
            return any(r.credential_hash not in revoked for r in live)

    def accounts_of_did(self, did: str) -> list[str]:
        """Every account ever bound to ``did`` (its ``IdentityBound`` events)."""
        with self.engine.connect() as conn:
            return sorted({ev.args["account"] for ev, _ in self.by_keys(conn, {"did": [did]})})


def _alert(row: Any) -> dict[str, Any]:
    return {"kind": row.kind, "subject": row.subject, "by": row.by, "authority": row.authority,
            "reasonCode": row.reason_code, "failures": row.failures, "block": row.block, "tx": row.tx,
            "liftedBlock": row.lifted_block}


def _json_list(text: str | None) -> list[Any]:
    import json

    return json.loads(text) if text else []
