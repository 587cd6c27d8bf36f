"""The FastAPI gateway: catalog, assets, jobs and audit queries, all read from chain events.

``create_app(settings)`` builds the app; the chain is opened on the first request (so the app
starts even while the node does not) and re-read whenever a new block has arrived.

Errors are JSON ``{"error": message}``: 404 for an unknown asset or job, 422 for malformed
input, 503 when the chain or the deployment file is unavailable; a 500 means a bug.

Extension point for authentication and rate limits: ``create_app(..., guard=fn)``. ``guard``
is called with the :class:`fastapi.Request` before every API endpoint; it returns the caller
(e.g. the DID proven by a challenge–response session) or raises
``fastapi.HTTPException(401 / 429, ...)``. The returned caller is at ``request.state.caller``.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from oracle.config import Settings, load_settings
from oracle.errors import ChainConnectionError, DeploymentError, TdsError
from oracle.gateway.page import AUDITOR_PAGE

Guard = Callable[[Request], Any]


class ErrorBody(BaseModel):
    error: str


class Verdict(BaseModel):
    step: str
    subject: str
    ok: bool
    status: str
    detail: str
    refs: dict[str, Any] = {}


class VerifyReport(BaseModel):
    ok: bool
    chainId: int
    asset: int | None
    verdicts: list[Verdict]


class TrailEntryModel(BaseModel):
    id: str
    actor: str
    actor_did: str | None
    time: int
    time_iso: str
    action: str
    object: dict[str, Any]
    result: str
    error_code: int | None = None
    event: str
    contract: str
    block: int
    tx: str
    detail: dict[str, Any]


class TrailReport(BaseModel):
    asset: int
    chainId: int
    trail: list[TrailEntryModel]


NOT_FOUND = {404: {"model": ErrorBody, "description": "unknown asset or job"},
             503: {"model": ErrorBody, "description": "chain or deployment unavailable"}}


class ChainState:
    """The chain reader, opened lazily and shared by requests."""

    def __init__(self, settings: Settings, reader: Any = None):
        self.settings = settings
        self._reader = reader
        self._lock = threading.Lock()

    def reader(self):
        with self._lock:
            if self._reader is None:
                from oracle.audit.events import ChainReader
                from oracle.chain.connection import connect
                from oracle.chain.deploy import read_deployment

                w3 = connect(self.settings, start=False)
                chain_id = w3.eth.chain_id
                self._reader = ChainReader(w3, read_deployment(self.settings.deployment_path(chain_id), chain_id))
            self._reader.refresh_if_stale()
            return self._reader


def _default_fetch(settings: Settings) -> Callable[[str], bytes | None] | None:
    try:
        from offchain.store.client import open_store

        return open_store(settings.home).cat
    except Exception:  # no content store: result bytes are reported as not checked
        return None


def create_app(settings: Settings | None = None, *, reader: Any = None, logs_dir: Path | str | None = None,
               fetch: Callable[[str], bytes | None] | None = None, guard: Guard | None = None) -> FastAPI:
    """The gateway app. ``reader`` (a ChainReader) skips connecting; ``logs_dir`` holds the published
    log batches the auditor endpoints verify; ``fetch`` reads results from a content store."""
    settings = settings or load_settings()
    state = ChainState(settings, reader)
    logs = Path(logs_dir) if logs_dir else None
    fetcher = fetch if fetch is not None else _default_fetch(settings)

    def caller(request: Request) -> Any:
        request.state.caller = guard(request) if guard else None
        return request.state.caller

    app = FastAPI(title="Trusted Data Space gateway", version="0.1.0",
                  description="Catalog, jobs and audit of the Trusted Data Space, read from chain events. "
                              "No endpoint returns dataset plaintext.")
    api = [Depends(caller)]

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_input(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"error": "invalid input: " + "; ".join(parts)}, status_code=422)

    @app.exception_handler(ChainConnectionError)
    @app.exception_handler(DeploymentError)
    async def _unavailable(_: Request, exc: TdsError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.exception_handler(TdsError)
    async def _tds_error(_: Request, exc: TdsError) -> JSONResponse:
        from oracle.audit.trail import UnknownAsset

        return JSONResponse({"error": str(exc)}, status_code=404 if isinstance(exc, UnknownAsset) else 400)

    @app.get("/catalog", dependencies=api, tags=["catalog"], responses=NOT_FOUND)
    def get_catalog() -> list[dict[str, Any]]:
        """Every registered data asset (the AssetRegistered event stream) with its current state."""
        from oracle.audit.trail import catalog

        return catalog(state.reader())

    @app.get("/assets/{asset_id}", dependencies=api, tags=["catalog"], responses=NOT_FOUND)
    def get_asset(asset_id: int = PathParam(ge=1, description="certificate id")) -> dict[str, Any]:
        """One asset: registration (CIDs, hashes, classification), holder, state, grants, jobs, rating."""
        from oracle.audit.trail import asset_summary

        return asset_summary(state.reader(), asset_id)

    @app.get("/assets/{asset_id}/trail", dependencies=api, tags=["audit"], response_model=TrailReport,
             responses=NOT_FOUND)
    def get_trail(asset_id: int = PathParam(ge=1)) -> dict[str, Any]:
        """Who did what to the asset, when, with what result (000 §12.3.1.2), from chain events alone."""
        from oracle.audit.trail import build_trail

        r = state.reader()
        return {"asset": asset_id, "chainId": r.chain_id, "trail": [e.to_dict() for e in build_trail(r, asset_id)]}

    @app.get("/audit/verify", dependencies=api, tags=["audit"], response_model=VerifyReport, responses=NOT_FOUND)
    def get_verify(asset: int | None = Query(default=None, ge=1, description="only this asset")) -> dict[str, Any]:
        """A verdict per verification step: signatures, result hashes, log batches, payments."""
        from oracle.audit.verify import overall, verify_all

        r = state.reader()
        verdicts = verify_all(None, None, reader=r, asset=asset, logs_dir=logs, fetch=fetcher)
        return {"ok": overall(verdicts), "chainId": r.chain_id, "asset": asset, "verdicts": verdicts}

    @app.get("/jobs/{job_id}", dependencies=api, tags=["jobs"], responses=NOT_FOUND)
    def get_job(job_id: int = PathParam(ge=1, description="grantId << 32 | useIndex")) -> dict[str, Any]:
        """A job's request, progress, result reference (CID + hash, never plaintext) and history."""
        from oracle.audit.trail import job_summary

        job = job_summary(state.reader(), job_id)
        if job is None:
            raise HTTPException(404, f"unknown job {job_id}: no JobRequested event for it")
        return job

    @app.get("/auditor", response_class=HTMLResponse, tags=["audit"])
    def auditor_page() -> str:
        """The auditor's page: an asset's trail as a timeline with a ✓/✗ per verification."""
        return AUDITOR_PAGE

    return app
