"""The gateway's entity routes served from the event index (:mod:`audit.index_entities`): an
asset's trail, a job, a grant, a collaboration, the audit log. Every answer carries the indexed
block (``indexedBlock`` in the body, ``X-TDS-Indexed-Block`` and an ``ETag`` by indexed block in
the headers: ``If-None-Match`` with the current one → 304 before any database read); an answer
built for the current block is kept (bounded) and served from memory on the event loop; the rest
runs in the reader thread. Nothing on these paths calls the chain.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import is_dataclass
from typing import Any, Callable

from fastapi import APIRouter, Path as PathParam, Request
from fastapi.responses import Response

from audit.index_entities import EntityReads
from tds.gateway.errors import NotFound, Unavailable
from tds.gateway.models import CollaborationSummary, GrantSummary
from tds.gateway.queries import IndexedCatalog
from tds.gateway.read_pool import ReaderProcesses
from tds.gateway.responses import error_responses

CACHED_ANSWERS = 4096
READ_THREADS = 1  # measured on 2 cores: 1 reader thread ~280 trails/s, 2 threads or the default pool far fewer


def _default(value: Any) -> Any:
    if is_dataclass(value):  # a TrailEntry: flat fields, plain dicts (no deep copy needed)
        return value.__dict__
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value)


def encode(body: Any) -> bytes:
    """Compact JSON (trail entries are dataclasses)."""
    return json.dumps(body, separators=(",", ":"), default=_default).encode()


class IndexedEntities:
    """Entity answers from the index with ETags by indexed block and a per-block answer cache."""

    def __init__(self, index: Any, catalog: IndexedCatalog, read_processes: int = 0):
        self.index = index
        self.catalog = catalog  # shares the indexed block it reads at most every BLOCK_TTL_S
        self.reads = EntityReads(index.w3, index.deployment, index.engine)
        self.chain_id = index.chain_id
        self._answers: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()
        # one reader thread, not the default pool's 40: the reads are CPU-bound Python, and threads
        # contending with the event loop for the GIL answer fewer requests, later
        self._pool = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="tds-index-read")
        # or reader processes, each with its own index connection (tds.gateway.read_pool): the builds
        # run in parallel on every core instead of taking the GIL from the event loop
        self.processes = ReaderProcesses(index.engine.url.render_as_string(hide_password=False),
                                         index.deployment, read_processes) if read_processes else None

    @staticmethod
    def etag(block: int | None, kind: str, key: Any) -> str:
        return f'"idx-{block}-{kind}-{key}"'

    def _matches(self, etag: str, if_none_match: str | None) -> bool:
        return if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]

    def _respond(self, body: bytes | None, block: int | None, etag: str, if_none_match: str | None) -> Response:
        headers = {"ETag": etag, "X-TDS-Indexed-Block": "" if block is None else str(block),
                   "Cache-Control": "no-cache"}
        if body is None or self._matches(etag, if_none_match):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    async def answer(self, kind: str, key: Any, if_none_match: str | None,
                     build: Callable[[], tuple[int | None, Any]],
                     missing: Callable[[int | None], NotFound]) -> Response:
        """The answer for entity ``(kind, key)`` at the indexed block: 304 on a matching
        ``If-None-Match``, from memory when already built for this block, else ``build()`` (in a
        worker thread) returning (block, body or None → ``missing(block)`` is raised)."""
        block = self.catalog.indexed_block()
        etag = self.etag(block, kind, key)
        if self._matches(etag, if_none_match):
            return self._respond(None, block, etag, if_none_match)
        hit = self._answers.get((block, kind, key))
        if hit is not None:
            return self._respond(hit, block, etag, if_none_match)
        if self.processes is not None:
            read_block, body = await asyncio.wrap_future(self.processes.submit(kind, key))
            if body is None:
                raise missing(read_block)
        else:
            read_block, found = await asyncio.get_running_loop().run_in_executor(self._pool, build)
            if found is None:
                raise missing(read_block)
            if isinstance(found, dict):
                found = {**found, "indexedBlock": read_block}
            body = encode(found)
        with self._lock:
            self._answers[(read_block, kind, key)] = body
            while len(self._answers) > CACHED_ANSWERS:
                self._answers.popitem(last=False)
        return self._respond(body, read_block, self.etag(read_block, kind, key), if_none_match)

    def _unknown(self, code: str, what: str) -> Callable[[int | None], NotFound]:
        return lambda block: NotFound(code, f"unknown {what}: not in the event index (indexed up to block {block}); "
                                            "if it was just created, retry after the confirmation depth")

    # ------------------------------------------------------------------ the routes' bodies

    async def trail(self, asset_id: int, if_none_match: str | None) -> Response:
        def build() -> tuple[int | None, Any]:
            block, entries = self.reads.asset_trail(asset_id)
            return block, None if entries is None else {"asset": asset_id, "chainId": self.chain_id, "trail": entries}

        return await self.answer("trail", asset_id, if_none_match, build,
                                 self._unknown("unknown-asset", f"asset {asset_id}"))

    async def job(self, job_id: int, if_none_match: str | None) -> Response:
        return await self.answer("job", job_id, if_none_match, lambda: self.reads.job(job_id),
                                 self._unknown("unknown-job", f"job {job_id}"))

    async def grant(self, grant_id: int, if_none_match: str | None) -> Response:
        return await self.answer("grant", grant_id, if_none_match, lambda: self.reads.grant(grant_id),
                                 self._unknown("unknown-grant", f"grant {grant_id}"))

    async def collaboration(self, collab_id: int, if_none_match: str | None) -> Response:
        return await self.answer("collab", collab_id, if_none_match, lambda: self.reads.collaboration(collab_id),
                                 self._unknown("unknown-collaboration", f"collaboration {collab_id}"))

    def audit_events(self, *, actor: str | None, asset: int | None, action: str | None, since: int | None,
                     until: int | None, visible_to: str | None, offset: int, limit: int) -> Response:
        """The audit log from the index: filtered and paged in SQL unless an asset or a DID
        narrows it (then the narrowed entries are filtered as :func:`query_events` does)."""
        from tds.gateway.queries import check_filters, filter_entries

        by_address = check_filters(actor, action, since, until)
        if asset is None and (actor is None or by_address is not None):
            block, total, page = self.reads.audit_page(
                actors=[by_address] if by_address else None, action=action, since=since, until=until,
                visible_to=visible_to, offset=offset, limit=limit)
        else:
            if asset is not None:
                block, found = self.reads.asset_trail(asset)
                if found is None:
                    raise self._unknown("unknown-asset", f"asset {asset}")(block)
            else:
                block, _, found = self.reads.audit_page(actors=self.reads.accounts_of_did(actor or ""), action=action,
                                                        since=since, until=until, visible_to=visible_to, limit=10**9)
            matched = filter_entries(found, actor=actor, action=action, since=since, until=until,
                                     visible_to=visible_to)
            total, page = len(matched), matched[offset:offset + limit]
        body = encode({"chainId": self.chain_id, "total": total, "offset": offset, "events": page,
                       "indexedBlock": block})
        return self._respond(body, block, self.etag(block, "events", "q"), None)


def entity_routes(entities: IndexedEntities | None, public: list[Any]) -> APIRouter:
    """``GET /grants/{id}`` and ``GET /collaborations/{id}``: served from the event index only
    (a gateway without one answers 503 ``index-unavailable``)."""
    router = APIRouter()

    def need() -> IndexedEntities:
        if entities is None:
            raise Unavailable("index-unavailable", "this gateway runs without an event index; grants and "
                                                   "collaborations are served from it (start it with one)")
        return entities

    @router.get("/grants/{grant_id}", dependencies=public, tags=["authorizations"], response_model=GrantSummary,
                responses=error_responses(404, 422, 429, 503, s404="unknown grant"), summary="A grant")
    async def get_grant(request: Request, grant_id: int = PathParam(ge=1, description="grant id")) -> Any:
        """A grant's terms, state (status, frozen, uses), its jobs and collaboration uses, the
        monitor's or regulator's freezes of it (alerts) and its history, from the event index."""
        return await need().grant(grant_id, request.headers.get("if-none-match"))

    @router.get("/collaborations/{collab_id}", dependencies=public, tags=["collaborations"],
                response_model=CollaborationSummary,
                responses=error_responses(404, 422, 429, 503, s404="unknown collaboration"),
                summary="A collaboration and its steps")
    async def get_collaboration(request: Request,
                                collab_id: int = PathParam(ge=1, description="collaboration id")) -> Any:
        """A multi-party collaboration: status, every step's status, nodes and anchored result
        hash, the grant uses it consumed, what it paid or refunded, and its history."""
        return await need().collaboration(collab_id, request.headers.get("if-none-match"))

    return router
