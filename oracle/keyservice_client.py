"""The oracle's side of the providers' key services: an HTTP client per provider and a router
that picks the provider of each job from the chain (job → grant → asset → holder).

Each call answers a fresh DID challenge (from ``/v1/challenge``, or from a 401) with a
presentation bound to that one request (method, path, body sha-256), so a captured request
can be neither replayed nor turned into another call. The layer keys come back sealed; they are
opened only if the provider's DID signed them — the DID the chain binds to the holder of the
job's asset (:meth:`KeyServiceRouter.provider_did_of`), anything else is
:class:`KeysNotFromProvider`. Refusals come back as the data-plane errors the pipeline maps
to ``failJob`` reason codes; an unreachable, overloaded or rate-limiting (429) key service
raises :class:`KeyServiceUnavailable` (a ``ConnectionError``: the runner retries the job on its
next pass instead of failing it).
"""
from __future__ import annotations

import base64
import json
from typing import Any

import requests
from web3.contract import Contract

from did.bound_http import BoundHttpClient, ServiceUnreachable, error_of
from did.envelope import Envelope, open_envelope
from did.errors import EnvelopeAuthError
from did.identity import Identity
from offchain.errors import GrantRefused, PolicyError, QueryError
from offchain.onion.peel import PeeledKeys
from offchain.query.engine import EncryptedResult
from offchain.query.plan import EncryptedQuery, Query
from chain.errors import TdsError
from offchain.keyservice.api import KEYS_PURPOSE


class KeyServiceUnavailable(ConnectionError):
    """The key service did not answer (down, restarting, or the provider's node is away)."""


class NoKeyService(TdsError):
    """No key-service URL is configured for a job's provider."""


class ProviderDidUnknown(TdsError):
    """The oracle cannot tell which DID must have sealed a job's layer keys (no chain directory)."""


class KeysNotFromProvider(EnvelopeAuthError):
    """Layer keys were sealed by another DID than the one the chain binds to the asset's holder."""


class HttpKeyService:
    """One provider's key service, spoken to as ``oracle`` (its identity opens the sealed keys)."""

    def __init__(self, url: str, oracle: Identity, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.oracle = oracle
        self.timeout = timeout
        self.http = BoundHttpClient(self.url, oracle, timeout)
        self.provider_did: str | None = None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            r = self.http.post(path, body)
        except ServiceUnreachable as exc:
            raise KeyServiceUnavailable(f"key service {exc}") from None
        if r.status_code == 200:
            return r.json()
        return self._refused(r)

    def _refused(self, r: requests.Response) -> Any:
        """Raise the error a refusal maps to (never returns)."""
        message, kind = error_of(r)
        if r.status_code in (502, 503, 504):
            raise KeyServiceUnavailable(f"key service {self.url}: {message}")
        if r.status_code == 429:
            raise KeyServiceUnavailable(f"key service {self.url} is rate-limiting this oracle (retry after "
                                        f"{r.headers.get('Retry-After', '?')} s): {message}")
        if r.status_code == 409 or kind == "GrantRefused":
            raise _as(GrantRefused, message)
        if kind == "PolicyError":
            raise _as(PolicyError, message)
        if r.status_code == 422:
            raise QueryError(message)
        raise GrantRefused(f"key service {self.url} refused ({r.status_code} {kind}): {message}")

    def prepare(self, job_id: int, query: Query | None, oracle: str, provider_did: str | None = None
                ) -> tuple[EncryptedQuery, PeeledKeys, dict[str, dict]]:
        """Tokens, peeled keys and manifests for ``job_id``; the keys must be sealed by
        ``provider_did`` (or the pinned :attr:`provider_did`), the DID of the asset's holder."""
        expected = provider_did or self.provider_did
        if not expected:
            raise ProviderDidUnknown(f"job {job_id}: no provider DID to check the sealed layer keys of {self.url} "
                                     "against; route through KeyServiceRouter(..., directory=ChainDirectory("
                                     "IdentityRegistry)) or pin HttpKeyService.provider_did")
        out = self._post(f"/v1/jobs/{job_id}/prepare", {"query": query.to_dict() if query else None})
        sealed = base64.b64decode(out["sealed_keys"])
        sender = Envelope.from_bytes(sealed).sender
        if sender != expected:
            raise KeysNotFromProvider(f"layer keys for job {job_id} from {self.url} are sealed by {sender}, but the "
                                      f"chain binds the asset's holder to {expected}; refusing them (is the "
                                      "key-service URL for that provider right?)")
        keys = json.loads(open_envelope(self.oracle, sealed, expected_sender=expected, purpose=KEYS_PURPOSE))
        return EncryptedQuery.from_dict(out["encrypted_query"]), PeeledKeys.from_dict(keys), out["manifests"]

    def release(self, job_id: int, query: Query | None, result: EncryptedResult, oracle: str) -> bytes:
        out = self._post(f"/v1/jobs/{job_id}/release", {"query": query.to_dict() if query else None,
                                                          "result": result.to_dict()})
        return base64.b64decode(out["sealed_answer"])


def _as(cls: type, message: str) -> Exception:
    """``cls`` carrying the key service's message verbatim (its constructor would reword it)."""
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.reason, err.operation, err.column = message, None, "?"
    return err


class KeyServiceRouter:
    """Routes each job to its provider's key service: provider address → service.

    ``default`` serves providers without an entry of their own (a single-provider space).
    ``directory`` (a :class:`did.sealing.ChainDirectory` over the IdentityRegistry) resolves the
    holder's DID, which must have sealed the layer keys an HTTP key service returns; without it
    HTTP key services are refused (:class:`ProviderDidUnknown`)."""

    def __init__(self, jobs: Contract, authorizations: Contract, assets: Contract,
                 services: dict[str, Any], default: Any | None = None, directory: Any | None = None):
        self.jobs, self.authorizations, self.assets = jobs, authorizations, assets
        self.services = {a.lower(): s for a, s in services.items()}
        self.default = default
        self.directory = directory
        self._provider_of_job: dict[int, str] = {}

    def provider_of(self, job_id: int) -> str:
        hit = self._provider_of_job.get(job_id)
        if hit is None:
            grant_id = self.jobs.functions.jobOf(job_id).call()[0][0]
            asset_id = self.authorizations.functions.grantOf(grant_id).call()[8]
            hit = self._provider_of_job[job_id] = self.assets.functions.ownerOf(asset_id).call()
        return hit

    def _service(self, job_id: int) -> Any:
        provider = self.provider_of(job_id)
        svc = self.services.get(provider.lower(), self.default)
        if svc is None:
            raise NoKeyService(f"no key service configured for provider {provider} (job {job_id}); "
                               f"pass --key-service {provider}=http://HOST:PORT to 'tds oracle run'")
        return svc

    def provider_did_of(self, job_id: int) -> str:
        """The DID the IdentityRegistry binds to the holder of ``job_id``'s asset."""
        provider = self.provider_of(job_id)
        if self.directory is None:
            raise ProviderDidUnknown(f"job {job_id}: cannot resolve the DID of provider {provider}: the key-service "
                                     "router has no chain directory (pass directory=ChainDirectory(IdentityRegistry))")
        return self.directory.resolve(provider)[0]

    def prepare(self, job_id: int, query: Query | None, oracle: str
                ) -> tuple[EncryptedQuery, PeeledKeys, dict[str, dict]]:
        svc = self._service(job_id)
        if isinstance(svc, HttpKeyService):  # keys arrive sealed: check who sealed them
            return svc.prepare(job_id, query, oracle, provider_did=self.provider_did_of(job_id))
        return svc.prepare(job_id, query, oracle)

    def release(self, job_id: int, query: Query | None, result: EncryptedResult, oracle: str) -> bytes:
        return self._service(job_id).release(job_id, query, result, oracle)
