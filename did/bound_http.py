"""The client half of a DID-guarded HTTP service (:mod:`did.guard` with ``bind_request=True``):
every call fetches a fresh challenge (``GET /v1/challenge``) and answers it with a presentation
bound to that one request — method, path and the sha-256 of the exact body — so a captured call
can be neither replayed nor turned into another. A 401 carrying a new challenge (e.g. the first
expired) is answered once more. Used by the oracle towards key services and by a collaboration's
coordinator towards the providers' party nodes."""
from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from did.challenge import RequestBinding
from did.guard import presentation_header

if TYPE_CHECKING:
    from did.identity import Identity


class ServiceUnreachable(ConnectionError):
    """The service did not answer (down, restarting, unreachable)."""


class BoundHttpClient:
    """Calls ``url`` as ``caller`` (its DID key signs each presentation); one session per thread."""

    def __init__(self, url: str, caller: Identity, timeout: float = 30.0):
        self.url, self.caller, self.timeout = url.rstrip("/"), caller, timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def challenge(self) -> requests.Response:
        """``GET /v1/challenge`` (the response: its JSON carries ``www_authenticate``)."""
        try:
            return self._session().get(self.url + "/v1/challenge", timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServiceUnreachable(f"{self.url} unreachable: {exc}") from None

    def post(self, path: str, body: dict[str, Any], timeout: float | None = None) -> requests.Response:
        """POST ``body`` (JSON) to ``path`` with a bound presentation; the response, whatever its status
        (a non-200 answer to the challenge itself is returned as is)."""
        data = json.dumps(body, separators=(",", ":")).encode()
        binding = RequestBinding.of("POST", urlsplit(self.url).path + path, data)  # the path the server sees
        first = self.challenge()
        if first.status_code != 200:
            return first
        www = first.json()["www_authenticate"]
        try:
            for attempt in (1, 2):
                headers = {"content-type": "application/json",
                           **presentation_header(self.caller, www, request=binding)}
                r = self._session().post(self.url + path, data=data, headers=headers,
                                         timeout=timeout or self.timeout)
                if r.status_code != 401 or attempt == 2 or "WWW-Authenticate" not in r.headers:
                    return r
                www = r.headers["WWW-Authenticate"]
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServiceUnreachable(f"{self.url} unreachable: {exc}") from None
        return r


def error_of(r: requests.Response) -> tuple[str, str]:
    """``(message, kind)`` of a refusal body ``{"error": …, "kind": …}`` (or its text)."""
    try:
        err = r.json()
        if isinstance(err, dict) and isinstance(err.get("detail"), dict):
            err = err["detail"]
    except ValueError:
        err = {"error": r.text[:300], "kind": "HTTPError"}
    return str(err.get("error", err)), str(err.get("kind", "HTTPError"))
