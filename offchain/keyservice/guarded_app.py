"""The shape every DID-guarded service of a provider shares (the key service, the party node):
a FastAPI app with body-size and per-address limits, refusals as ``{"error", "kind"}`` bodies,
the challenge endpoint, and a dependency that yields the caller's DID from a presentation bound
to the request (:mod:`did.guard`, ``bind_request=True``), then applies the caller's own rate limit."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from did.challenge import ChallengeVerifier
from did.errors import AuthenticationRequired, IdentityError
from did.guard import ChallengeGuard, challenge_header
from offchain.keyservice.limits import RateLimited, RequestLimits, ServiceLimits


def guarded_app(title: str, description: str, verifier: ChallengeVerifier,
                limits: ServiceLimits | None = None, access_log: Path | None = None,
                access_source: str = "keyservice") -> tuple[FastAPI, Callable[[Request], str]]:
    """The app and its ``caller_did(request)`` dependency (401 with a fresh challenge, 403, 429).
    With ``access_log`` every request is recorded there (:mod:`offchain.keyservice.access_log`)."""
    limits = limits or ServiceLimits()
    app = FastAPI(title=title, description=description, version="1")
    app.add_middleware(RequestLimits, limit=limits.max_body_bytes, per_ip=limits.per_ip())
    if access_log is not None:
        from offchain.keyservice.access_log import install

        install(app, access_log, access_source, error_key="kind")
    per_did = limits.per_did()
    guard = ChallengeGuard(verifier, bind_request=True)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail), "kind": "HTTPError"}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_input(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid input')}", "kind": "InvalidInput"},
                            status_code=422)

    @app.get("/v1/challenge", summary="A fresh challenge to answer (also sent with every 401)")
    def get_challenge() -> dict[str, Any]:
        c = verifier.issue()
        return {"challenge": c.nonce, "domain": c.domain, "expires": int(c.expires_at),
                "www_authenticate": challenge_header(c)}

    def caller_did(request: Request) -> str:
        """The caller's DID, from a presentation bound to this request; then its own rate limit."""
        try:
            who = guard.authenticate(request)
        except IdentityError as exc:
            status = guard.status_of(exc)
            message = str(exc) if isinstance(exc, AuthenticationRequired) else f"{type(exc).__name__}: {exc}"
            raise HTTPException(status, detail={"error": message, "kind": type(exc).__name__},
                                headers=guard.challenge_headers() if status == 401 else None) from None
        try:
            request.state.did = who.did                  # for the access record
            per_did.take("did:" + who.did)
        except RateLimited as exc:
            raise HTTPException(429, detail={"error": str(exc), "kind": "RateLimited"},
                                headers={"Retry-After": str(exc.retry_after)}) from None
        return who.did

    return app, caller_did
