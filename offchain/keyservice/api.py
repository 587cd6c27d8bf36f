"""The provider's key service over HTTP (``tds provider serve``).

Two calls per job, both authenticated by DID challenge–response (:mod:`did.guard`): the caller's
DID must be bound on chain to an account that holds the COMPUTE_PROVIDER role, and that account
must be the oracle that accepted the job (checked by :class:`offchain.keyservice.provider.ProviderKeyService`
against the chain on every call).

``POST /v1/jobs/{job}/prepare``  ``{"query": …}`` → the encrypted query (tokens only), the
    dataset manifests, and the peeled RND layer keys **sealed to the oracle's key-agreement
    key** (:mod:`did.envelope`, purpose ``tds/layer-keys``): nobody else can read them, not even
    a proxy in between.
``POST /v1/jobs/{job}/release``  ``{"query": …, "result": <EncryptedResult>}`` → the answer,
    opened by the provider and sealed to the consumer (base64). One release per job.

Every presentation must be bound to its request (method, path, body sha-256: see
:mod:`did.guard`) and burns its challenge whether it is accepted or refused.

Refusals are JSON ``{"error": message, "kind": ErrorClass}`` with 401 (authenticate: kind
``AuthenticationRequired``, ``ChallengeReplayed``, ``ChallengeExpired``, ``RequestNotBound``,
``RequestMismatch``, ``TamperedPresentation``, … with a new challenge in ``WWW-Authenticate``),
403 (not the job's oracle / no role), 404 (unknown job), 409 (grant or policy refusal), 413
(``PayloadTooLarge``: body over the limit, counted as read), 422 (malformed input), 429
(``RateLimited``, with ``Retry-After``: per client address before authentication, per DID
after — :mod:`offchain.keyservice.limits`); 503 when the chain is unreachable (the oracle retries).
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi import Body, Depends, FastAPI, HTTPException, Path as PathParam, Request
from pydantic import BaseModel, Field

from did.challenge import ChallengeVerifier
from did.envelope import seal
from did.identity import Identity
from did.registry import IdentityRegistryClient
from offchain.errors import DataPlaneError, GrantRefused, PolicyError, QueryError
from offchain.query.engine import EncryptedResult
from offchain.query.plan import Query
from offchain.keyservice.guarded_app import guarded_app
from offchain.keyservice.limits import MAX_BODY_BYTES, ServiceLimits
from offchain.keyservice.provider import ProviderKeyService
from chain.retry import is_transient
from did.sealing import ChainDirectory, canonical

KEYS_PURPOSE = "tds/layer-keys"
__all__ = ["KEYS_PURPOSE", "MAX_BODY_BYTES", "ServiceLimits", "create_key_service_app"]


class PrepareRequest(BaseModel):
    query: dict[str, Any] | None = Field(default=None, description=(
        "optional: the query the oracle believes was committed (it must equal the one the key service opens "
        "from the sealed parameters whose hash is on chain); sealed parameters are read by the key service only"))


class PrepareResponse(BaseModel):
    encrypted_query: dict[str, Any] = Field(description="tokens for the query's constants; no plaintext")
    manifests: dict[str, dict[str, Any]] = Field(description="dataset id -> manifest")
    sealed_keys: str = Field(description="base64 envelope with the peeled RND keys, sealed to the caller")
    layers: list[dict[str, Any]] = Field(description="which layers were released (no key material)")


class ReleaseRequest(BaseModel):
    query: dict[str, Any] | None = None
    result: dict[str, Any] = Field(description="the worker's EncryptedResult")


class ReleaseResponse(BaseModel):
    sealed_answer: str = Field(description="base64 envelope only the job's consumer can open")


class ErrorBody(BaseModel):
    error: str
    kind: str


def _refusal(status: int, exc: BaseException) -> HTTPException:
    return HTTPException(status, detail={"error": str(exc), "kind": type(exc).__name__})


def create_key_service_app(service: ProviderKeyService, provider: Identity, registry: IdentityRegistryClient,
                           directory: ChainDirectory, verifier: ChallengeVerifier,
                           limits: ServiceLimits | None = None, access_log: Path | None = None) -> FastAPI:
    """The FastAPI app of one provider's key service (``limits``: body size and request rates;
    ``access_log``: the JSON-lines file each request is recorded in, for the oversight monitor)."""
    app, authenticated = guarded_app("Trusted Data Space key service",
                                     "Releases layer keys and opens aggregates for accepted jobs only.", verifier,
                                     limits, access_log)

    def oracle_of(request: Request) -> str:
        """The on-chain account of the authenticated caller; it must hold COMPUTE_PROVIDER.
        A dependency, so it runs before the body is validated: strangers learn nothing of it."""
        did = authenticated(request)
        try:
            account = registry.account_of_did(did)
            request.state.account = account              # for the access record (None if unbound)
            if account is None:
                raise HTTPException(403, detail={"error": f"{did} is not bound to an account on chain; "
                                                          "run 'tds id bind' for it", "kind": "UnknownParticipant"})
            if not registry.has_participant_role(account, "COMPUTE_PROVIDER"):
                raise HTTPException(403, detail={"error": f"{account} ({did}) does not hold COMPUTE_PROVIDER "
                                                          "on chain", "kind": "RoleMismatch"})
        except HTTPException:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise HTTPException(503, detail={"error": f"chain unreachable: {exc}", "kind": "Unavailable"})
            raise
        return account

    def _run(fn: Any) -> Any:
        try:
            return fn()
        except GrantRefused as exc:
            raise _refusal(409, exc) from None
        except (PolicyError, QueryError, DataPlaneError) as exc:
            raise _refusal(422, exc) from None
        except Exception as exc:
            if is_transient(exc):
                raise HTTPException(503, detail={"error": f"chain unreachable: {exc}", "kind": "Unavailable"})
            raise

    def _query(raw: dict[str, Any]) -> Query:
        try:
            return Query.from_dict(raw)
        except (QueryError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise _refusal(422, QueryError(f"malformed query: {exc}")) from None

    errors = {code: {"model": ErrorBody} for code in (401, 403, 409, 413, 422, 429, 503)}

    @app.get("/v1/health", summary="Liveness and who this key service is")
    def health() -> dict[str, Any]:
        return {"ok": True, "provider": service.provider, "did": provider.did,
                "assets": sorted(service.datasets_by_asset)}

    @app.post("/v1/jobs/{job_id}/prepare", response_model=PrepareResponse, responses=errors,
              summary="Tokens and the sealed layer keys an accepted job needs")
    def prepare(job_id: int = PathParam(ge=1), body: PrepareRequest = Body(...),
                oracle: str = Depends(oracle_of)) -> dict[str, Any]:
        query = _query(body.query) if body.query is not None else None if body.query is not None else None
        enc, peeled, manifests = _run(lambda: service.prepare(job_id, query, oracle))
        did, key = _run(lambda: directory.resolve(oracle))
        envelope = seal(provider, did, key, canonical(peeled.to_dict()), KEYS_PURPOSE)
        return {"encrypted_query": enc.to_dict(), "manifests": manifests,
                "sealed_keys": base64.b64encode(envelope.to_bytes()).decode(), "layers": peeled.describe()}

    @app.post("/v1/jobs/{job_id}/release", response_model=ReleaseResponse, responses=errors,
              summary="Open the job's aggregate and seal the answer to its consumer")
    def release(job_id: int = PathParam(ge=1), body: ReleaseRequest = Body(...),
                oracle: str = Depends(oracle_of)) -> dict[str, Any]:
        query = _query(body.query) if body.query is not None else None if body.query is not None else None
        try:
            result = EncryptedResult.from_dict(body.result)
        except QueryError as exc:
            raise _refusal(422, exc) from None
        sealed = _run(lambda: service.release(job_id, query, result, oracle))
        return {"sealed_answer": base64.b64encode(sealed).decode()}

    return app

