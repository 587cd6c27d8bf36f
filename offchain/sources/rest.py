"""REST feeds (000 §9.2.3): pull JSON or XML from an authenticated HTTP API with httpx.

Authentication: ``bearer`` (token) or ``basic`` (user + password); secrets come from the
environment through :func:`chain.config.source_secret` (``TDS_SOURCE_<NAME>_TOKEN`` /
``..._PASSWORD``), never from the state file. 401/403 raise :class:`SourceAuthRefused` and are
not retried; 5xx and network errors are retried with backoff and fail over to the standby.

Records: a JSON array, or the list at the dot path ``items`` of a JSON object; for XML the
elements named ``items`` (default: the root's children), each element's children (or
attributes) being the fields. Pagination follows a ``next`` URL in the JSON body or an HTTP
``Link: <...>; rel="next"`` header. Incremental pulls send the committed watermark as
``?<since_param>=<value>``; the new watermark is the largest one received. Without a
watermark each pull is a full snapshot (or, with ``key``, appends records whose key is new)."""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from typing import Any, Callable
from urllib.parse import urljoin

import httpx

from chain.config import source_secret, source_secret_env
from offchain.sources.errors import SourceAuthRefused, SourceConfigError, SourceFormatError
from offchain.sources.monitor import Backoff, SourceMonitor
from offchain.sources.pipeline import Appender, BatchResult
from offchain.sources.spec import SourceSpec

MAX_PAGES = 10_000


class ServerUnavailable(Exception):
    """HTTP 5xx / 429: transient, retried."""


def parse_records(source: str, url: str, body: bytes, content_type: str, items: str | None) -> tuple[list, str | None]:
    """Records and the ``next`` page URL (if the JSON body names one)."""
    if "xml" in content_type or body.lstrip().startswith(b"<"):
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise SourceFormatError(source, url, f"not well-formed XML: {exc}") from None
        elements = root.iter(items) if items else list(root)
        return [{**el.attrib, **{c.tag: c.text for c in el}} for el in elements], None
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise SourceFormatError(source, url, f"not JSON: {exc}") from None
    nxt = doc.get("next") if isinstance(doc, dict) else None
    if items:
        for part in items.split("."):
            if not isinstance(doc, dict) or part not in doc:
                raise SourceFormatError(source, url, f"no {items!r} in the response")
            doc = doc[part]
    if not isinstance(doc, list):
        raise SourceFormatError(source, url, "expected a JSON array of records (set --items to its path)")
    return doc, nxt if isinstance(nxt, str) else None


class RestSource:
    """Pulls one REST feed into its :class:`Appender`."""

    def __init__(self, spec: SourceSpec, appender: Appender, monitor: SourceMonitor,
                 backoff: Backoff = Backoff(), progress: Callable[[int], None] | None = None,
                 timeout: float = 30.0) -> None:
        if spec.kind != "rest":
            raise SourceConfigError(spec.name, "--kind", "not a REST source")
        self.spec, self.appender, self.monitor, self.backoff = spec, appender, monitor, backoff
        self.progress = progress or (lambda n: None)
        self.http = httpx.Client(timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self.http.close()

    def _auth(self) -> dict[str, Any]:
        s = self.spec
        if s.auth is None:
            return {}
        secret = source_secret(s.name, "token" if s.auth == "bearer" else "password")
        if secret is None:
            raise SourceConfigError(s.name, source_secret_env(s.name, "token" if s.auth == "bearer" else "password"),
                                    "the secret is not set in the environment")
        if s.auth == "bearer":
            return {"headers": {"Authorization": f"Bearer {secret}"}}
        return {"auth": (s.user or "", secret)}

    def _get(self, url: str, params: dict[str, Any]) -> httpx.Response:
        r = self.http.get(url, params=params or None, **self._auth())
        if r.status_code in (401, 403):
            kind = "token" if self.spec.auth == "bearer" else "password"
            raise SourceAuthRefused(self.spec.name, url, r.status_code, source_secret_env(self.spec.name, kind))
        if r.status_code >= 500 or r.status_code == 429:
            raise ServerUnavailable(f"HTTP {r.status_code} from {url}")
        if r.status_code >= 400:
            raise SourceFormatError(self.spec.name, url, f"HTTP {r.status_code}: {r.text[:200]}")
        return r

    def pull(self, base: str, since: Any) -> list[dict]:
        """Every page from ``base`` (following next links) after watermark ``since``."""
        params: dict[str, Any] = {}
        if self.spec.watermark and since is not None:
            params[self.spec.since_param] = str(since)
        records: list = []
        url: str | None = base
        for _ in range(MAX_PAGES):
            assert url is not None
            r = self._get(url, params)
            page, nxt = parse_records(self.spec.name, url, r.content, r.headers.get("content-type", ""),
                                      self.spec.items)
            records += page
            link = r.links.get("next", {}).get("url")
            nxt = nxt or link
            if not nxt:
                return records
            url, params = urljoin(url, nxt), {}
            self.progress(len(records))
        raise SourceFormatError(self.spec.name, base, f"more than {MAX_PAGES} pages")

    def sync(self) -> list[BatchResult]:
        """One pull: appended (watermark or key) or a replacement snapshot."""
        s, started = self.spec, time.time()
        head = self.appender.state.head(s.name)
        records = self.monitor.call(s.name, s.urls(), lambda u: self.pull(u, head.watermark), self.backoff)
        origins = [f"record {i + 1}" for i in range(len(records))]
        if s.watermark:
            if not records:
                return []
            marks = [r.get(s.watermark) for r in records if isinstance(r, dict) and r.get(s.watermark) is not None]
            top = max(marks, default=head.watermark)
            if head.watermark is not None:
                top = max(top, head.watermark)
            return [self.appender.append(records, origins, watermark=top, started=started)]
        if s.key:
            keyed = [(f"k:{r.get(s.key)}" if isinstance(r, dict) else f"x:{json.dumps(r)}", r) for r in records]
            seen = self.appender.state.has_seen(s.name, [k for k, _ in keyed])
            fresh = {k: r for k, r in keyed if k not in seen}
            if not fresh:
                return []
            return [self.appender.append(list(fresh.values()), [f"{s.key}={k[2:]}" for k in fresh],
                                         keys=list(fresh), started=started)]
        builder = self.appender.snapshot()
        builder.add(records, origins)
        return [builder.finish()]
