"""Audit-log queries (000 §12.3.1.2–3): the chain's events as trail entries, filtered; and the
catalog served from the event index (:class:`IndexedCatalog`).

Each entry has the seed's fields — unique id, actor (operator subject), time, action, object
(data / grant / job ids) and result (with error code) — plus the DID bound to the actor and
the event it was read from. Who may see what: operators, regulators and the monitor see every
entry; any other authenticated participant sees the entries it is the actor of or the payee /
recipient of (its own operations), whatever filters it asks for.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any

from eth_utils import is_address, to_checksum_address
from fastapi.responses import Response

from audit.events import ChainReader
from audit.trail import ACTIONS, TrailEntry, build_trail, chain_entries

from tds.gateway.errors import BadRequest, NotFound

AUDIT_ACTIONS = sorted({action for action, _ in ACTIONS.values()})


def parse_time(value: str | None, name: str) -> int | None:
    """Unix seconds, or an ISO-8601 time (``2026-05-01``, ``2026-05-01T12:00:00Z``)."""
    if value is None or value == "":
        return None
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("invalid-time", f"{name}={value!r} is neither unix seconds nor an ISO-8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp())


def _involves(entry: TrailEntry, account: str) -> bool:
    return entry.actor == account or entry.object.get("payee") == account or entry.object.get("to") == account


def check_filters(actor: str | None, action: str | None, since: int | None, until: int | None) -> str | None:
    """Refuse malformed filters (:class:`BadRequest`); the actor's checksum address if it is one."""
    if action is not None and action not in AUDIT_ACTIONS:
        raise BadRequest("invalid-action", f"action {action!r} is not one of: {', '.join(AUDIT_ACTIONS)}")
    if since is not None and until is not None and since > until:
        raise BadRequest("invalid-time", f"from ({since}) is after to ({until})")
    if actor is not None:
        if is_address(actor):
            return to_checksum_address(actor)
        if not actor.startswith("did:"):
            raise BadRequest("invalid-actor", f"actor {actor!r} is neither an address nor a DID")
    return None


def filter_entries(entries: list[TrailEntry], *, actor: str | None = None, action: str | None = None,
                   since: int | None = None, until: int | None = None,
                   visible_to: str | None = None) -> list[TrailEntry]:
    """The entries matching every filter given (``actor``: an address or a DID)."""
    by_address = check_filters(actor, action, since, until)
    out = []
    for e in entries:
        if actor is not None and (e.actor != by_address if by_address else e.actor_did != actor):
            continue
        if action is not None and e.action != action:
            continue
        if (since is not None and e.time < since) or (until is not None and e.time > until):
            continue
        if visible_to is not None and not _involves(e, visible_to):
            continue
        out.append(e)
    return out


def query_events(reader: ChainReader, *, actor: str | None = None, asset: int | None = None,
                 action: str | None = None, since: int | None = None, until: int | None = None,
                 visible_to: str | None = None) -> list[TrailEntry]:
    """Entries matching every filter given; ``visible_to`` (an account) keeps only its own.

    ``actor`` is an address or a DID; ``asset`` narrows to that asset's trail (its grants,
    applications, jobs, settlements, anchors); ``since`` / ``until`` bound the block time.
    """
    check_filters(actor, action, since, until)
    entries = build_trail(reader, asset) if asset is not None else chain_entries(reader)
    return filter_entries(entries, actor=actor, action=action, since=since, until=until, visible_to=visible_to)


class IndexedCatalog:
    """The catalog and assets served from the event index (:mod:`audit.index`): no chain call on
    the request path. Every answer carries the indexed block (``indexedBlock`` in the body,
    ``X-TDS-Indexed-Block`` and an ``ETag`` by indexed block in the headers); a request whose
    ``If-None-Match`` names the current ETag gets 304. Catalog pages are cached per block."""

    BLOCK_TTL_S = 0.25  # how long the indexed block read from the database is reused

    def __init__(self, index: Any):
        self.index = index
        self._cache: dict[tuple[int | None, int, int | None], bytes] = {}
        self._lock = threading.Lock()
        self._block: tuple[float, int | None] | None = None   # (read at, indexed block)

    def indexed_block(self) -> int | None:
        """The indexed block, read from the database at most every BLOCK_TTL_S seconds (the
        index advances block by block; this keeps a database read off most requests)."""
        import time

        from audit.index_reads import indexed_block

        now = time.monotonic()
        hit = self._block
        if hit is None or now - hit[0] > self.BLOCK_TTL_S:
            hit = (now, indexed_block(self.index.engine))
            self._block = hit
        return hit[1]

    def cached_catalog(self, offset: int, limit: int | None, if_none_match: str | None) -> Response | None:
        """The catalog page from memory (no I/O), or None when it must be built."""
        block = self.indexed_block()
        etag = self._etag(block, offset, limit)
        if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
            return self._answer(None, block, etag, if_none_match)
        body = self._cache.get((block, offset, limit))
        return None if body is None else self._answer(body, block, etag, if_none_match)

    @staticmethod
    def _etag(block: int | None, *key: Any) -> str:
        return '"idx-' + "-".join(str(k) for k in (block, *key)) + '"'

    def _answer(self, body: bytes | None, block: int | None, etag: str, if_none_match: str | None) -> Response:
        headers = {"ETag": etag, "X-TDS-Indexed-Block": "" if block is None else str(block),
                   "Cache-Control": "no-cache"}
        if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    def catalog(self, offset: int, limit: int | None, if_none_match: str | None) -> Response:
        """A page of the catalog at the indexed block."""
        from audit.index_reads import catalog_page

        block = self.indexed_block()
        etag = self._etag(block, offset, limit)
        if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
            return self._answer(None, block, etag, if_none_match)
        key = (block, offset, limit)
        body = self._cache.get(key)
        if body is None:
            block, page = catalog_page(self.index.engine, self.index.deployment, offset, limit)
            body = json.dumps(page, separators=(",", ":")).encode()
            etag = self._etag(block, offset, limit)
            with self._lock:
                self._cache = {k: v for k, v in self._cache.items() if k[0] == block}  # drop older blocks
                self._cache[(block, offset, limit)] = body
        return self._answer(body, block, etag, if_none_match)

    def asset(self, asset_id: int, if_none_match: str | None) -> Response:
        """One asset at the indexed block; 404 if the index has not seen it (yet)."""
        from audit.index_reads import asset_from_index

        found = asset_from_index(self.index.engine, self.index.deployment, asset_id)
        if found is None:
            raise NotFound("unknown-asset", f"unknown asset {asset_id}: not in the event index (indexed up to "
                                            f"block {self.index.indexed_block()}); if it was just registered, "
                                            "retry after the confirmation depth")
        block = found["indexedBlock"]
        return self._answer(json.dumps(found, separators=(",", ":")).encode(), block, self._etag(block, "a", asset_id),
                            if_none_match)
