"""A provider's party node over HTTP (``tds party serve``): the API a collaboration's coordinator
calls, so the provider's rows never leave its own host.

Every call is authenticated by DID challenge–response with the presentation bound to the request
(:mod:`did.guard`, ``bind_request=True``), and the caller must be the account the chain names as
the step's coordinator (its ``nodes[0]``). Everything else — the step's document, the grant, the
peers', compute nodes' and consumer's keys — the node reads from the chain itself
(:class:`offchain.collab.party_chain.PartyChain`).

``POST /v1/collab/{id}/steps/{step}/psi/prepare``  ``{"source", "dids"}`` → ``{"address"}``: open this party's PSI endpoint
``POST /v1/collab/{id}/steps/{step}/psi/start``    ``{"addresses"}``: run it (the leader seals from the chain's keys)
``POST /v1/collab/{id}/steps/{step}/psi/result``   ``{"wait"}`` → ``{"size", "transcript", "sealed"}``, or 202 while running
``POST /v1/collab/{id}/steps/{step}/intersection`` ``{"sealed"}``: keep an intermediate intersection
``POST /v1/collab/{id}/steps/{step}/mpc/bundles``  ``{"source"}`` → ``{"bundles"}`` sealed to the step's compute nodes
``POST /v1/collab/{id}/forget``: drop the collaboration's intermediate results (only once it has ended)

Refusals are ``{"error", "kind"}``: 401 (authenticate; new challenge in ``WWW-Authenticate``),
403 (``NotCoordinator``: not the step's coordinator on chain), 409 (``ContributionRefused``,
``PsiPeerLost`` with ``peer``, other PSI errors by class), 413/429 (limits), 422 (malformed input),
503 (chain unreachable).
"""
from __future__ import annotations

import base64
from typing import Any

from fastapi import Body, Depends, FastAPI, HTTPException, Path as PathParam, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from chain.retry import is_transient
from did.challenge import ChallengeVerifier
from did.errors import IdentityError
from offchain.collab.party_chain import PartyChain
from offchain.collab.provider_node import ContributionRefused, ProviderNode
from offchain.keyservice.guarded_app import guarded_app
from offchain.keyservice.limits import ServiceLimits
from offchain.psi.errors import PsiError, PsiPeerLost

MAX_WAIT = 30.0


class PsiPrepare(BaseModel):
    source: str = Field(min_length=1, max_length=80, description="the data source of the step document")
    dids: list[str] = Field(min_length=2, max_length=16, description="the session's parties in order (first leads)")


class PsiStart(BaseModel):
    addresses: dict[str, tuple[str, int]] = Field(description="each party's DID -> [host, port]")
    timeout: float = Field(default=120.0, gt=0, le=3600)


class PsiWait(BaseModel):
    wait: float = Field(default=10.0, ge=0, le=MAX_WAIT, description="seconds to wait for the run to end")


class Sealed(BaseModel):
    sealed: str = Field(max_length=64 * 2 ** 20, description="base64 envelope from the session's leader")


class Source(BaseModel):
    source: str = Field(min_length=1, max_length=80)


def _refusal(status: int, exc: BaseException, **extra: Any) -> HTTPException:
    return HTTPException(status, detail={"error": str(exc), "kind": type(exc).__name__, **extra})


def create_party_app(node: ProviderNode, chain: PartyChain, verifier: ChallengeVerifier,
                     limits: ServiceLimits | None = None) -> FastAPI:
    """The FastAPI app of one provider's party node."""
    app, caller_did = guarded_app("Trusted Data Space party node",
                                  "A provider's side of collaboration steps (PSI, MPC inputs); its rows stay here.",
                                  verifier, limits)

    def _chain(fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            if is_transient(exc):
                raise HTTPException(503, detail={"error": f"chain unreachable: {exc}", "kind": "Unavailable"}) from None
            raise

    def caller(request: Request) -> str:
        """The authenticated caller's account on chain."""
        did = caller_did(request)
        account = _chain(lambda: chain.account_of(did))
        if account is None:
            raise HTTPException(403, detail={"error": f"{did} is not bound to an account on chain",
                                             "kind": "UnknownParticipant"})
        return account

    def coordinator(request: Request, collab_id: int = PathParam(ge=1), step: int = PathParam(ge=0, le=15)) -> str:
        account = caller(request)
        expected = _chain(lambda: chain.coordinator(collab_id, step))
        if account != expected:
            raise HTTPException(403, detail={"error": f"{account} is not the coordinator of step {step} of "
                                                      f"collaboration {collab_id} (the chain names {expected or 'none'})",
                                             "kind": "NotCoordinator"})
        return account

    def run(fn: Any) -> Any:
        try:
            return _chain(fn)
        except HTTPException:
            raise
        except ContributionRefused as exc:
            raise _refusal(409, exc) from None
        except PsiPeerLost as exc:
            raise _refusal(409, exc, peer=exc.peer) from None
        except PsiError as exc:
            raise _refusal(409, exc) from None
        except IdentityError as exc:
            raise _refusal(409, exc) from None

    errors = {code: {"description": "refused: {error, kind}"} for code in (401, 403, 409, 413, 422, 429, 503)}
    base = "/v1/collab/{collab_id}/steps/{step}"

    @app.get("/v1/health", summary="Liveness and who this party node is")
    def health() -> dict[str, Any]:
        return {"ok": True, "did": node.did, "assets": sorted(node.tables)}

    @app.post(base + "/psi/prepare", responses=errors, summary="Open this party's PSI endpoint for the step")
    def psi_prepare(collab_id: int, step: int, body: PsiPrepare = Body(...),
                    _: str = Depends(coordinator)) -> dict[str, Any]:
        host, port = run(lambda: node.psi_prepare(collab_id, step, body.source, body.dids))
        return {"address": [host, port]}

    @app.post(base + "/psi/start", responses=errors, summary="Run this party's side of the step's PSI")
    def psi_start(collab_id: int, step: int, body: PsiStart = Body(...),
                  _: str = Depends(coordinator)) -> dict[str, Any]:
        run(lambda: node.psi_start(collab_id, step, dict(body.addresses), body.timeout))
        return {"started": True}

    @app.post(base + "/psi/result", responses=errors, summary="This party's result (202 while it runs)")
    def psi_result(collab_id: int, step: int, body: PsiWait = Body(...),
                   _: str = Depends(coordinator)) -> Any:
        try:
            out = run(lambda: node.psi_result(collab_id, step, body.wait))
        except TimeoutError:
            return JSONResponse({"running": True}, status_code=202)
        return {"size": out.size, "transcript": out.transcript.hex(),
                "sealed": {slot or "": base64.b64encode(b).decode() for slot, b in out.sealed.items()}}

    @app.post(base + "/intersection", responses=errors, summary="Keep the intersection an intermediate step sealed here")
    def intersection(collab_id: int, step: int, body: Sealed = Body(...),
                     _: str = Depends(coordinator)) -> dict[str, Any]:
        try:
            sealed = base64.b64decode(body.sealed, validate=True)
        except ValueError:
            raise HTTPException(422, detail={"error": "sealed: not base64", "kind": "InvalidInput"}) from None
        return {"kept": run(lambda: node.keep_intersection(collab_id, step, sealed))}

    @app.post(base + "/mpc/bundles", responses=errors, summary="This source's shares, sealed to the step's compute nodes")
    def mpc_bundles(collab_id: int, step: int, body: Source = Body(...),
                    _: str = Depends(coordinator)) -> dict[str, Any]:
        bundles = run(lambda: node.mpc_bundles(collab_id, step, body.source))
        return {"bundles": [base64.b64encode(b).decode() for b in bundles]}

    @app.post("/v1/collab/{collab_id}/forget", responses=errors, summary="Drop an ended collaboration's state")
    def forget(request: Request, collab_id: int = PathParam(ge=1)) -> dict[str, Any]:
        account = caller(request)
        steps = _chain(lambda: chain.coordinators(collab_id))
        if account not in steps:
            raise HTTPException(403, detail={"error": f"{account} coordinates no step of collaboration {collab_id}",
                                             "kind": "NotCoordinator"})
        if _chain(lambda: chain.running(collab_id)):
            raise HTTPException(409, detail={"error": f"collaboration {collab_id} is still running",
                                             "kind": "StillRunning"})
        node.forget(collab_id)
        return {"forgotten": collab_id}

    return app
