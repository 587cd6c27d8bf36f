"""The oracle's side of the providers' key services: an HTTP client per provider and a router
that picks the provider of each job from the chain (job → grant → asset → holder).

Each call answers a fresh DID challenge (the nonce comes from the 401, or from
``/v1/challenge``), so a captured request cannot be replayed. Refusals come back as the
data-plane errors the pipeline maps to ``failJob`` reason codes; an unreachable or
overloaded key service raises :class:`KeyServiceUnavailable` (a ``ConnectionError``: the
runner retries the job on its next pass instead of failing it).
"""
from __future__ import annotations

import base64
import json
import threading
from typing import Any

import requests
from web3.contract import Contract

from did.envelope import open_envelope
from did.guard import presentation_header
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


class HttpKeyService:
    """One provider's key service, spoken to as ``oracle`` (its identity opens the sealed keys)."""

    def __init__(self, url: str, oracle: Identity, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.oracle = oracle
        self.timeout = timeout
        self._local = threading.local()
        self.provider_did: str | None = None

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":"))
        headers = {"content-type": "application/json"}
        try:
            r = self._session().post(self.url + path, data=data, headers=headers, timeout=self.timeout)
            if r.status_code == 401 and "WWW-Authenticate" in r.headers:
                headers.update(presentation_header(self.oracle, r.headers["WWW-Authenticate"]))
                r = self._session().post(self.url + path, data=data, headers=headers, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise KeyServiceUnavailable(f"key service {self.url} unreachable: {exc}") from None
        if r.status_code == 200:
            return r.json()
        try:
            err = r.json()
        except ValueError:
            err = {"error": r.text[:300], "kind": "HTTPError"}
        message, kind = str(err.get("error")), str(err.get("kind"))
        if r.status_code in (502, 503, 504):
            raise KeyServiceUnavailable(f"key service {self.url}: {message}")
        if r.status_code == 409 or kind == "GrantRefused":
            raise _as(GrantRefused, message)
        if kind == "PolicyError":
            raise _as(PolicyError, message)
        if r.status_code == 422:
            raise QueryError(message)
        raise GrantRefused(f"key service {self.url} refused ({r.status_code} {kind}): {message}")

    def prepare(self, job_id: int, query: Query, oracle: str) -> tuple[EncryptedQuery, PeeledKeys, dict[str, dict]]:
        out = self._post(f"/v1/jobs/{job_id}/prepare", {"query": query.to_dict()})
        sealed = base64.b64decode(out["sealed_keys"])
        keys = json.loads(open_envelope(self.oracle, sealed, expected_sender=self.provider_did, purpose=KEYS_PURPOSE))
        return EncryptedQuery.from_dict(out["encrypted_query"]), PeeledKeys.from_dict(keys), out["manifests"]

    def release(self, job_id: int, query: Query, result: EncryptedResult, oracle: str) -> bytes:
        out = self._post(f"/v1/jobs/{job_id}/release", {"query": query.to_dict(), "result": result.to_dict()})
        return base64.b64decode(out["sealed_answer"])


def _as(cls: type, message: str) -> Exception:
    """``cls`` carrying the key service's message verbatim (its constructor would reword it)."""
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.reason, err.operation, err.column = message, None, "?"
    return err


class KeyServiceRouter:
    """Routes each job to its provider's key service: provider address → service.

    ``default`` serves providers without an entry of their own (a single-provider space)."""

    def __init__(self, jobs: Contract, authorizations: Contract, assets: Contract,
                 services: dict[str, Any], default: Any | None = None):
        self.jobs, self.authorizations, self.assets = jobs, authorizations, assets
        self.services = {a.lower(): s for a, s in services.items()}
        self.default = default
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

    def prepare(self, job_id: int, query: Query, oracle: str) -> tuple[EncryptedQuery, PeeledKeys, dict[str, dict]]:
        return self._service(job_id).prepare(job_id, query, oracle)

    def release(self, job_id: int, query: Query, result: EncryptedResult, oracle: str) -> bytes:
        return self._service(job_id).release(job_id, query, result, oracle)
