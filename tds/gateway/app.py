"""The FastAPI gateway: catalog, assets, applications, grants, jobs and audit over the chain.

``create_app(settings)`` builds the app; the chain is opened on the first request (so the app
starts even while the node does not) and re-read whenever a new block has arrived.

Reads (catalog, assets, trails, verdicts, job status) are rebuilt from public chain events.
Writes relay what users signed themselves (see :mod:`tds.gateway.relay` for who pays gas):
``POST /applications`` and ``POST /jobs`` forward a raw transaction the caller signed,
``POST /grants`` sends a holder's EIP-712 grant offer from the gateway's relayer. Writes, the
audit-log query and sealed results need a DID challenge–response (``guard``, e.g.
:class:`did.guard.ChallengeGuard`); the DID must be bound on chain to the account that signed.
With ``guard_reads`` (the default when a guard is given) the reads need it too.

Every refusal is JSON ``{"error": code, "detail": message}``: 400 malformed payload, 401
authenticate (challenge in ``WWW-Authenticate``), 403 not yours, 404 unknown, 409 the chain
refuses, 413 body too large, 422 invalid parameters, 429 rate limited (``Retry-After``), 503
chain / store / authentication unavailable. No endpoint returns dataset plaintext: results are
served only as the sealed envelope whose hash the chain recorded.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from eth_account.signers.local import LocalAccount
from fastapi import Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from audit.events import ChainReader
from chain.config import Settings, load_settings
from chain.errors import ChainConnectionError, DeploymentError, TdsError
from tds.gateway.callers import Caller, bound_account, did_of, is_privileged
from tds.gateway.errors import BadUpstream, GatewayError, NotFound, Unavailable
from tds.gateway.limits import MAX_BODY_BYTES, BodyLimit, RateLimit
from tds.gateway.models import AssetSummary, AuditEvents, Challenge, JobSummary, TrailReport, VerifyReport
from tds.gateway.page import AUDITOR_PAGE
from tds.gateway.responses import AUTH_ERRORS, READ_ERRORS, error_responses
from tds.gateway.results import consumers_result
from tds.gateway.indexed import IndexedEntities, entity_routes
from tds.gateway.writes import write_routes
from tds.gateway.collab_routes import collab_routes
from tds.gateway.explorer import explorer_routes
from tds.gateway.console import console_routes
from tds.gateway.queries import AUDIT_ACTIONS, IndexedCatalog, parse_time, query_events
from tds.gateway.relay import Relay
from chain.retry import is_transient

Guard = Callable[[Request], Any]
STATUS_CODES = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
                405: "method-not-allowed", 409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
                422: "invalid-input", 429: "rate-limited", 503: "unavailable"}




class ChainState:
    """The chain reader (opened lazily, shared by requests) and the relay on the same node."""

    def __init__(self, settings: Settings, reader: ChainReader | None = None, relayer: LocalAccount | None = None):
        self.settings = settings
        self._reader = reader
        self._relayer = relayer
        self._relay: Relay | None = None
        self._lock = threading.Lock()

    def reader(self) -> ChainReader:
        with self._lock:
            if self._reader is None:
                self._reader = ChainReader.open(self.settings)
            self._reader.refresh_if_stale()
            return self._reader

    def relay(self) -> Relay:
        r = self.reader()
        with self._lock:
            if self._relay is None:
                self._relay = Relay(r.w3, self._relayer)
            return self._relay


def _open_store(settings: Settings) -> Any:
    try:
        from offchain.store.client import open_store

        return open_store(settings.home)
    except Exception:  # no content store: results are reported as not checked, params cannot be uploaded
        return None


def create_app(settings: Settings | None = None, *, reader: ChainReader | None = None,
               logs_dir: Path | str | None = None, fetch: Callable[[str], bytes | None] | None = None,
               store: Any = None, guard: Guard | None = None, guard_reads: bool = True,
               relayer: LocalAccount | None = None, rate_limit: RateLimit | None = None,
               max_body: int = MAX_BODY_BYTES, index: Any = None, read_processes: int = 0) -> FastAPI:
    """The gateway app.

    ``reader`` (a ChainReader) skips connecting; ``logs_dir`` holds the published log batches the
    audit endpoints verify; ``store`` is the content store (job parameters go in, sealed results
    come out; default: the configured one) and ``fetch`` overrides how results are read;
    ``guard`` authenticates callers (None: reads only, writes answer 503); ``guard_reads`` also
    guards the chain-derived reads; ``relayer`` pays for relayed grant offers; ``rate_limit``
    is per caller (default 30 at once, then 5/s); ``index`` (an :class:`audit.index.EventIndex`,
    followed by whoever started it) serves the catalog and assets without a chain call;
    ``read_processes`` > 0 builds its entity answers (trails, jobs, grants, collaborations) in that
    many reader processes (:mod:`tds.gateway.read_pool`) instead of one reader thread.
    """
    settings = settings or load_settings()
    state = ChainState(settings, reader, relayer)
    logs = Path(logs_dir) if logs_dir else None
    content = store if store is not None else _open_store(settings)
    fetcher = fetch if fetch is not None else (content.cat if content is not None else None)
    limiter = rate_limit or RateLimit()
    indexed = IndexedCatalog(index) if index is not None else None
    entities = IndexedEntities(index, indexed, read_processes) if indexed is not None else None

    def client_key(request: Request) -> str:
        return "ip:" + (request.client.host if request.client else "unknown")

    def prove(request: Request) -> Any:
        """Run the guard; a refused attempt counts against the client address."""
        assert guard is not None
        try:
            return guard(request)
        except Exception:
            limiter.take(client_key(request))
            raise

    def reads(request: Request) -> Any:
        if guard is not None and guard_reads:
            request.state.caller = prove(request)
            limiter.take("did:" + did_of(request.state.caller))
        else:
            request.state.caller = None
            limiter.take(client_key(request))
        return request.state.caller

    async def open_reads(request: Request) -> Any:
        """Reads without authentication: only the rate limit, on the event loop (no thread hop)."""
        request.state.caller = None
        limiter.take(client_key(request))
        return None

    def authenticated(request: Request) -> Caller:
        if guard is None:
            limiter.take(client_key(request))
            raise Unavailable("authentication-off", "this gateway runs without authentication (read-only): write "
                                                    "endpoints, audit queries and results are off")
        proven = prove(request)
        did = did_of(proven)
        limiter.take("did:" + did)
        reader = entities.reads.base if entities is not None else state.reader()
        # who signs for a DID: its current binding on chain whose published proof verifies
        account = bound_account(reader.contracts["IdentityRegistry"], did, int(reader.deployment.get("block") or 0))
        roles = frozenset(getattr(proven, "roles", lambda: set())())
        request.state.caller = Caller(did, account, roles)
        return request.state.caller

    app = FastAPI(title="Trusted Data Space gateway", version="0.2.0",
                  description="Catalog, applications, grants, jobs and audit of the Trusted Data Space. Reads are "
                              "rebuilt from chain events; writes relay what participants signed themselves "
                              "(raw transactions: the signer pays gas; grant offers: the gateway's relayer pays). "
                              "Authenticate with a DID challenge–response: answer the challenge of a 401 (or of "
                              "GET /auth/challenge) with a presentation in the X-TDS-Presentation header. "
                              "No endpoint returns dataset plaintext.",
                  openapi_tags=[{"name": "catalog", "description": "registered data assets"},
                                {"name": "authorizations", "description": "applications and grant offers"},
                                {"name": "jobs", "description": "compute jobs and their sealed results"},
                                {"name": "collaborations", "description": "multi-party computations over several "
                                                                          "grants, run step by step by compute nodes"},
                                {"name": "audit", "description": "trails, verdicts, the audit log, the auditor page"},
                                {"name": "auth", "description": "DID challenge–response"}])
    app.add_middleware(BodyLimit, limit=max_body)
    public = [Depends(reads if guard is not None and guard_reads else open_reads)]

    def body(code: str, detail: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(GatewayError)
    async def _refused(_: Request, exc: GatewayError) -> JSONResponse:
        return body(exc.code, exc.detail, exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return body(STATUS_CODES.get(exc.status_code, "error"), str(exc.detail), exc.status_code,
                    getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _bad_input(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return body("invalid-input", "invalid input: " + "; ".join(parts), 422)

    @app.exception_handler(ChainConnectionError)
    @app.exception_handler(DeploymentError)
    async def _unavailable(_: Request, exc: TdsError) -> JSONResponse:
        return body("chain-unavailable", str(exc), 503)

    @app.exception_handler(TdsError)
    async def _tds_error(_: Request, exc: TdsError) -> JSONResponse:
        from audit.trail import UnknownAsset

        if isinstance(exc, UnknownAsset):
            return body("unknown-asset", str(exc), 404)
        return body(type(exc).__name__, str(exc), 400)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            return body("chain-unavailable", f"cannot reach the chain: {exc}", 503)
        return body("internal", f"{type(exc).__name__}: {exc} (a bug in the gateway)", 500)

    # ------------------------------------------------------------------ auth

    @app.get("/auth/challenge", tags=["auth"], response_model=Challenge, responses=error_responses(429, 503),
             summary="A fresh DID challenge to answer")
    def get_challenge(request: Request) -> dict[str, Any]:
        """The challenge a 401 also carries: sign it (with the domain) in a Verifiable Presentation
        and send it base64url in ``X-TDS-Presentation``; one answer per challenge."""
        limiter.take(client_key(request))
        verifier = getattr(guard, "verifier", None)
        if verifier is None:
            raise Unavailable("authentication-off", "this gateway issues no DID challenges")
        from did.guard import challenge_header

        c = verifier.issue()
        return {"challenge": c.nonce, "domain": c.domain, "expires": int(c.expires_at),
                "www_authenticate": challenge_header(c)}

    # ------------------------------------------------------------------ reads

    @app.get("/catalog", dependencies=public, tags=["catalog"], response_model=list[AssetSummary],
             responses=READ_ERRORS, summary="Every registered data asset")
    async def get_catalog(request: Request, offset: int = Query(default=0, ge=0, description="assets to skip"),
                          limit: int | None = Query(default=None, ge=1, le=10_000,
                                                    description="at most this many")) -> Any:
        """Every registered data asset (the AssetRegistered event stream) with its current state.
        With an event index: served from it, each asset with ``indexedBlock``, an ``ETag`` by
        indexed block (``If-None-Match`` → 304) and ``X-TDS-Indexed-Block``; a page already built
        for the indexed block is answered from memory on the event loop."""
        from starlette.concurrency import run_in_threadpool

        from audit.trail import catalog

        if indexed is not None:
            etag = request.headers.get("if-none-match")
            hit = indexed.cached_catalog(offset, limit, etag)
            if hit is not None:
                return hit
            return await run_in_threadpool(indexed.catalog, offset, limit, etag)
        found = await run_in_threadpool(lambda: catalog(state.reader()))
        return found[offset:] if limit is None else found[offset:offset + limit]

    @app.get("/assets/{asset_id}", dependencies=public, tags=["catalog"], response_model=AssetSummary,
             responses=READ_ERRORS, summary="One data asset")
    def get_asset(request: Request, asset_id: int = PathParam(ge=1, description="certificate id")) -> Any:
        """Registration (CIDs, hashes, classification), holder, state, grants, jobs, rating
        (from the event index when the gateway has one, with ``indexedBlock`` and an ``ETag``)."""
        from audit.trail import asset_summary

        if indexed is not None:
            return indexed.asset(asset_id, request.headers.get("if-none-match"))
        return asset_summary(state.reader(), asset_id)

    @app.get("/assets/{asset_id}/trail", dependencies=public, tags=["audit"], response_model=TrailReport,
             responses=READ_ERRORS, summary="An asset's audit trail")
    async def get_trail(request: Request, asset_id: int = PathParam(ge=1, description="certificate id")) -> Any:
        """Who did what to the asset, when, with what result (000 §12.3.1.2), from chain events (with an
        event index: from its events of this asset, with ``indexedBlock`` and an ``ETag``)."""
        from starlette.concurrency import run_in_threadpool

        from audit.trail import build_trail

        if entities is not None:
            return await entities.trail(asset_id, request.headers.get("if-none-match"))

        def chain() -> dict[str, Any]:
            r = state.reader()
            return {"asset": asset_id, "chainId": r.chain_id, "trail": build_trail(r, asset_id)}
        return await run_in_threadpool(chain)

    @app.get("/audit/verify", dependencies=public, tags=["audit"], response_model=VerifyReport,
             responses=READ_ERRORS, summary="Verification verdicts")
    def get_verify(asset: int | None = Query(default=None, ge=1, description="only this asset")) -> dict[str, Any]:
        """A verdict per verification step: signatures, result hashes, log batches, payments."""
        from audit.verify import overall, verify_all

        r = state.reader()
        verdicts = verify_all(None, None, reader=r, asset=asset, logs_dir=logs, fetch=fetcher)
        return {"ok": overall(verdicts), "chainId": r.chain_id, "asset": asset, "verdicts": verdicts}

    @app.get("/audit/events", tags=["audit"], response_model=AuditEvents,
             responses=error_responses(*AUTH_ERRORS, 400), summary="Query the audit log (authenticated)")
    def get_events(caller: Caller = Depends(authenticated),
                   actor: str | None = Query(default=None, max_length=256, description="address or DID"),
                   asset: int | None = Query(default=None, ge=1, description="only this asset's trail"),
                   action: str | None = Query(default=None, description="one of: " + ", ".join(AUDIT_ACTIONS)),
                   since: str | None = Query(default=None, alias="from", description="unix seconds or ISO-8601"),
                   until: str | None = Query(default=None, alias="to", description="unix seconds or ISO-8601"),
                   offset: int = Query(default=0, ge=0), limit: int = Query(default=500, ge=1, le=5000)
                   ) -> dict[str, Any]:
        """Audit entries (000 §12.3.1.2: id, actor, time, action, object, result) matching every filter.
        Operators, regulators and the monitor see all entries; other participants their own."""
        if entities is not None:
            mine = None if is_privileged(entities.reads.base, caller.account, entities.reads) else caller.account
            return entities.audit_events(actor=actor, asset=asset, action=action, since=parse_time(since, "from"),
                                         until=parse_time(until, "to"), visible_to=mine, offset=offset, limit=limit)
        r = state.reader()
        mine = None if is_privileged(r, caller.account) else caller.account
        found = query_events(r, actor=actor, asset=asset, action=action, since=parse_time(since, "from"),
                             until=parse_time(until, "to"), visible_to=mine)
        return {"chainId": r.chain_id, "total": len(found), "offset": offset, "events": found[offset:offset + limit]}

    @app.get("/jobs/{job_id}", dependencies=public, tags=["jobs"], response_model=JobSummary,
             responses=READ_ERRORS, summary="A job's status")
    async def get_job(request: Request, job_id: int = PathParam(ge=1, description="grantId << 32 | useIndex")) -> Any:
        """A job's request, progress, result reference (CID + hash, never plaintext) and history
        (with an event index: from its events, with ``indexedBlock`` and an ``ETag``)."""
        from starlette.concurrency import run_in_threadpool

        from audit.trail import job_summary

        if entities is not None:
            return await entities.job(job_id, request.headers.get("if-none-match"))
        job = await run_in_threadpool(lambda: job_summary(state.reader(), job_id))
        if job is None:
            raise NotFound("unknown-job", f"unknown job {job_id}: no JobRequested event for it")
        return job

    @app.get("/jobs/{job_id}/result", tags=["jobs"], response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}},
                              "description": "the sealed envelope (did.envelope) only the consumer opens"},
                        **error_responses(*AUTH_ERRORS, 404, 502, s404="unknown job, or no result yet")},
             summary="A job's sealed result (its consumer only)")
    def get_result(caller: Caller = Depends(authenticated),
                   job_id: int = PathParam(ge=1, description="grantId << 32 | useIndex")) -> Response:
        """The result bytes exactly as the chain's ``resultHash`` commits to them: a sealed envelope
        addressed to the job's consumer (never plaintext; the gateway cannot open it)."""
        from did.envelope import Envelope
        from did.errors import MalformedEnvelope
        cid, want, data = consumers_result(state.reader(), fetcher, job_id, caller.account)
        try:
            envelope = Envelope.from_bytes(data)
        except MalformedEnvelope as exc:
            raise BadUpstream("result-not-sealed", f"the stored result {cid} is not a sealed envelope ({exc}); "
                                                   "the gateway serves sealed results only") from None
        if envelope.recipient != caller.did:
            raise BadUpstream("result-not-sealed", f"the stored result is sealed to {envelope.recipient}, not to "
                                                   f"the consumer {caller.did}")
        return Response(data, media_type="application/octet-stream",
                        headers={"X-TDS-Result-Hash": "0x" + want.hex(), "X-TDS-Result-Cid": cid})

    app.include_router(write_routes(state, authenticated, content))
    app.include_router(collab_routes(state, authenticated, content))
    app.include_router(entity_routes(entities, public))
    app.include_router(explorer_routes(state, entities, logs, fetcher, public))
    app.include_router(console_routes(state, content, fetcher))

    # ------------------------------------------------------------------ page

    @app.get("/auditor", response_class=HTMLResponse, tags=["audit"], summary="The auditor's page",
             responses={200: {"description": "an HTML page reading /assets/{id}/trail and /audit/verify"}})
    def auditor_page() -> str:
        """The auditor's page: an asset's trail as a timeline with a ✓/✗ per verification."""
        return AUDITOR_PAGE

    app.router.on_startup.append(settle_heap)
    app.state.read_processes = entities.processes if entities is not None else None
    if app.state.read_processes is not None:
        app.router.on_shutdown.append(app.state.read_processes.close)
    return app


def settle_heap() -> None:
    """Once the app has loaded (ABIs, web3, the index's readers): collect, then move every object
    alive now out of the collector's reach (``gc.freeze``). A full collection otherwise walks those
    hundreds of thousands of long-lived objects again and again, and each walk (~200 ms measured
    at 1,000 assets) stalls every request in flight — it was the gateway's p99."""
    import gc

    gc.collect()
    gc.freeze()
