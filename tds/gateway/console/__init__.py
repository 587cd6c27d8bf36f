"""The participant console: a page where participants act from their own browser wallet.

``console_routes`` serves, under ``/console``:

* ``GET /console`` — the page (static HTML, ES modules from ``/console/static/``; nothing from
  another origin: a Content-Security-Policy of ``'self'`` says so to the browser);
* ``GET /console/config`` — what the page needs to talk to the chain through the wallet: chain id,
  deployment block, the system contracts' addresses and ABIs, the role and operation names;
* ``POST /console/nonce`` — a fresh nonce for one wallet proof (consumed by the proof that uses it);
* ``POST /console/params`` — a job's sealed parameter block, stored in the content store once the
  wallet-proven consumer's ``requestJob`` simulates (the page sends the transaction itself next);
  blocks no job names are swept (:mod:`tds.gateway.console.sweep`), a few per account at most;
* ``GET /console/jobs/{id}/result`` — the sealed answer of a job, for its consumer, proven by a
  wallet signature (``X-TDS-Wallet-Proof``, :mod:`tds.gateway.console.proof`);
* ``GET /console/collaborations/{id}/steps/{step}/result`` — an output step's sealed result, for
  the collaboration's initiator (wallet-proven);
* ``GET /console/assets/{id}/quality`` — an asset's quality report, checked against the chain's
  hash (:mod:`tds.gateway.console.documents`).

Every transaction is built, simulated and sent by the page through the participant's wallet; the
gateway signs and pays nothing here, and the page opens sealed answers itself (WebCrypto).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from eth_utils import keccak
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from web3.exceptions import ContractCustomError, ContractLogicError

from tds.gateway.console.documents import collaboration_output, quality_report
from tds.gateway.console.ledger import MAX_NONCES_PER_CLIENT, NONCE_LIFETIME, ConsoleLedger
from tds.gateway.console.proof import HEADER, check_proof
from tds.gateway.console.sweep import check_room, sweep
from tds.gateway.results import consumers_result
from tds.gateway.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
)
from tds.gateway.limits import RateLimit
from tds.gateway.relay import _revert_reason, error_code

CONTRACTS = ("AssetRegistry", "Authorizations", "Jobs", "IdentityRegistry", "QualityRatings", "CertificateTemplates",
             "Credits", "Collaborations")
ROLES = ("PROVIDER", "CONSUMER", "OPERATOR", "REGULATOR", "DEVELOPER", "ALGORITHM_PROVIDER", "COMPUTE_PROVIDER",
         "MONITOR")
STATIC = {**{name: "text/javascript" for name in ("app.js", "wallet.js", "chain.js", "consumer.js", "provider.js",
                                                 "crypto.js", "ui.js", "job.js", "reads.js", "collab.js", "vendor.js")},
          "console.css": "text/css"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class ParamsIn(BaseModel):
    """A sealed parameter block and the job request it belongs to (simulated before storing)."""

    params: dict[str, Any] = Field(description="the sealed block (format tds-params/1), as the page built it")
    grantId: int = Field(ge=1)
    operation: int = Field(ge=1, lt=2 ** 16)
    deadline: int = Field(ge=0, lt=2 ** 40)
    value: int = Field(ge=0, description="the wei the request pays (the grant's price, native coin)")


def _static(name: str) -> bytes:
    return resources.files("tds.gateway.console").joinpath("static", name).read_bytes()


def console_config(reader: Any) -> dict[str, Any]:
    """The page's configuration: chain id, deployment block, contracts (address + ABI), names, and
    the cryptography profile in force (the page cannot seal job parameters under ``sm``: WebCrypto
    has no SM2; it says so instead of making X25519 blocks)."""
    from chain.crypto_profile import configured_profile
    from chain.ops import NAMES

    contracts = {name: {"address": c.address, "abi": c.abi} for name, c in reader.contracts.items()
                 if name in CONTRACTS}
    return {"chainId": reader.chain_id, "chainIdHex": hex(reader.chain_id),
            "deploymentBlock": int(reader.deployment.get("block") or 0), "contracts": contracts,
            "roles": {name: "0x" + keccak(text=name).hex() for name in ROLES},
            "operations": {str(bit): name for bit, name in NAMES.items()}, "proofHeader": HEADER,
            "cryptoProfile": configured_profile().name}


def default_ledger(state: Any) -> ConsoleLedger:
    """The ledger file under the gateway's home (``<home>/console/ledger.sqlite``), else in memory."""
    settings = getattr(state, "settings", None)
    return ConsoleLedger(settings.home / "console" / "ledger.sqlite" if settings is not None else None)


def console_routes(state: Any, content: Any, fetcher: Callable[[str], bytes | None] | None,
                   limiter: RateLimit | None = None, ledger: ConsoleLedger | None = None) -> APIRouter:
    """The console's routes over ``state`` (the chain), ``content`` (store) and ``fetcher`` (results);
    ``limiter`` (default 30 at once, then 5/s) bounds the document and wallet-proven endpoints per
    address (nonces are bounded by the unused ones an address holds); ``ledger`` keeps nonces and pending parameter blocks (default: :func:`default_ledger`)."""
    limits = limiter or RateLimit()
    opened: list[ConsoleLedger] = [ledger] if ledger is not None else []
    opening = threading.Lock()

    def book() -> ConsoleLedger:
        """The ledger, opened on first use (a gateway whose console is never used writes no file)."""
        with opening:
            if not opened:
                opened.append(default_ledger(state))
            return opened[0]

    def take(request: Request) -> None:
        limits.take("console:" + (request.client.host if request.client else "unknown"))
    # the page's own API: kept out of /openapi.json (docs/console.md describes it)
    router = APIRouter(tags=["console"], include_in_schema=False)

    @router.get("/console", response_class=HTMLResponse, summary="The participant console",
                responses={200: {"description": "the page; it talks to the chain through the browser wallet"}})
    def console_page() -> Response:
        """The participant console (HTML; its scripts are served from /console/static)."""
        return Response(_static("index.html"), media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "no-referrer"})

    @router.get("/console/static/{name}", summary="The console's scripts and styles")
    def console_static(name: str) -> Response:
        if name not in STATIC:
            raise NotFound("unknown-file", f"the console serves no file named {name!r}")
        return Response(_static(name), media_type=STATIC[name],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @router.get("/console/config", summary="Chain id, contracts and ABIs for the console")
    def get_config() -> dict[str, Any]:
        """What the page needs to build, simulate and decode transactions through the wallet."""
        return console_config(state.reader())

    @router.post("/console/nonce", summary="A nonce for one wallet proof")
    def post_nonce(request: Request) -> dict[str, Any]:
        """A fresh nonce to sign in the next wallet proof; the proof that names it consumes it (a
        replay is refused), and it expires after its lifetime. Bounded per client address by the
        unused nonces it holds (not by the rate limit: a proof then costs one token, its request's)."""
        issued = book().issue_nonce(request.client.host if request.client else "unknown")
        if issued == "client":
            raise RateLimited("too-many-nonces", f"this address holds {MAX_NONCES_PER_CLIENT} unused wallet-proof "
                                                 "nonces; use them or let them expire", headers={"Retry-After": "60"})
        if issued == "all":
            raise Unavailable("nonces-exhausted", "too many wallet-proof nonces are outstanding; retry in a minute",
                              headers={"Retry-After": "60"})
        return {"nonce": issued[0], "expires": issued[1], "lifetime": NONCE_LIFETIME}

    @router.post("/console/params", status_code=201, summary="Store a job's sealed parameters (wallet-proven)")
    def post_params(payload: ParamsIn, request: Request) -> dict[str, Any]:
        """Store the sealed parameter block of a job the wallet-proven consumer is about to request:
        its hash must be the one signed in the proof, and ``requestJob`` with it must simulate
        from that account (else 409 naming the contract error). The page then sends the
        transaction itself."""
        from chain.crypto_profile import configured_profile
        from chain.params import (
            ParamsError,
            canonical_params,
            is_sealed,
            params_cid,
            params_hash,
            params_profile,
        )

        take(request)
        r = state.reader()
        try:
            data = canonical_params(payload.params)
        except ParamsError as exc:
            raise PayloadTooLarge("params-too-large", str(exc)) from None
        if not is_sealed(payload.params):
            raise BadRequest("params-not-sealed", "job parameters must be sealed to the provider's key service "
                                                  "(format tds-params/1)")
        try:
            found, in_force = params_profile(payload.params), configured_profile().name
        except ParamsError as exc:
            raise BadRequest("params-malformed", str(exc)) from None
        if found != in_force:   # e.g. a browser's X25519 block where the provider's key service is SM2
            raise BadRequest("params-profile-mismatch", f"CryptoProfileMismatch: these job parameters are sealed "
                             f"under the {found!r} cryptography profile; this deployment uses {in_force!r} "
                             f"(TDS_CRYPTO_PROFILE). Under 'sm' seal them with 'tds job request' (SM2), not in "
                             "the browser")
        digest = params_hash(data)
        proof = check_proof(request.headers.get(HEADER), "store-params", "0x" + digest.hex(), r.chain_id, book())
        jobs = r.contracts["Jobs"]
        fn = jobs.functions.requestJob(payload.grantId, payload.operation, digest, payload.deadline)
        try:
            fn.call({"from": proof.signer, "value": payload.value})
        except (ContractCustomError, ContractLogicError) as exc:
            name, reason = _revert_reason(exc)
            raise Conflict(error_code(name) if name else "reverted", f"the chain would refuse this job: {reason}"
                           ) from None
        if content is None:
            raise Unavailable("store-unavailable", "this gateway has no content store for job parameters")
        sweep(book(), r, content, int(r.w3.eth.get_block("latest")["timestamp"]), int(time.time()))  # everyone's
        check_room(book(), proof.signer)
        cid = params_cid(digest)
        try:
            stored = content.add_bytes(data, cid_version=1)
        except Exception as exc:
            raise Unavailable("store-unavailable", f"the content store refused the parameters: {exc}") from None
        if stored != cid:
            raise Unavailable("store-unavailable", f"the content store answered CID {stored}, expected {cid}")
        book().record_params(cid, "0x" + digest.hex(), proof.signer, payload.deadline)
        return {"paramsHash": "0x" + digest.hex(), "paramsCid": cid, "consumer": proof.signer}

    @router.get("/console/jobs/{job_id}/result", response_class=Response, summary="A job's sealed answer "
                "(its consumer, wallet-proven)", responses={200: {"content": {"application/octet-stream": {}}}})
    def get_result(request: Request, job_id: int = PathParam(ge=1)) -> Response:
        """The sealed envelope whose hash the chain recorded for the job, for the job's consumer
        (who proves the account with a wallet signature); the page opens it with the key file."""
        take(request)
        r = state.reader()
        proof = check_proof(request.headers.get(HEADER), "read-result", f"job {job_id}", r.chain_id, book())
        cid, want, data = consumers_result(r, fetcher, job_id, proof.signer, "answer")
        return Response(data, media_type="application/octet-stream",
                        headers={"X-TDS-Result-Hash": "0x" + want.hex(), "X-TDS-Result-Cid": cid,
                                 "Content-Disposition": f'attachment; filename="job-{job_id}.sealed.json"'})

    @router.get("/console/collaborations/{collab_id}/steps/{step}/result", response_class=Response,
                summary="A collaboration output's sealed result (its initiator, wallet-proven)")
    def get_output(request: Request, collab_id: int = PathParam(ge=1),
                   step: int = PathParam(ge=0, lt=16)) -> Response:
        """The sealed output of an output step, as its ``StepCompleted`` named and hashed it, for the
        collaboration's initiator (wallet proof ``read-output`` on ``collaboration <id> step <n>``)."""
        take(request)
        r = state.reader()
        proof = check_proof(request.headers.get(HEADER), "read-output", f"collaboration {collab_id} step {step}",
                            r.chain_id, book())
        cid, want, data = collaboration_output(r, fetcher, collab_id, step, proof.signer)
        return Response(data, media_type="application/octet-stream",
                        headers={"X-TDS-Result-Hash": "0x" + want.hex(), "X-TDS-Result-Cid": cid,
                                 "Content-Disposition":
                                     f'attachment; filename="collaboration-{collab_id}-step-{step}.sealed.json"'})

    @router.get("/console/assets/{asset_id}/quality", response_class=Response,
                summary="An asset's quality report, checked against the chain")
    def get_quality(request: Request, asset_id: int = PathParam(ge=1)) -> Response:
        """The quality report the asset's manifest names, served only if it hashes to the
        ``qualityReportHash`` on chain (502 ``quality-report-mismatch``; 503 when unavailable)."""
        take(request)
        cid, want, data = quality_report(state.reader(), fetcher, asset_id)
        return Response(data, media_type="application/json",
                        headers={"X-TDS-Quality-Hash": "0x" + want.hex(), "X-TDS-Quality-Cid": cid,
                                 "Cache-Control": "no-cache"})

    return router
