"""Limits of the key service's HTTP API: per-caller token buckets and the request-body limit.

* :class:`TokenBucket` — ``burst`` requests at once, then ``per_second`` on average, per key;
  an empty bucket raises :class:`RateLimited` (``retry_after`` whole seconds). Buckets idle
  long enough to be full again are dropped, so memory is bounded by recent callers.
* :class:`RequestLimits` — a pure-ASGI middleware in front of the whole app. Per request it
  (1) takes a token from the client address's bucket *before* anything else is read or
  verified (``429 {"kind": "RateLimited"}`` with ``Retry-After``), (2) refuses a declared
  ``Content-Length`` over the limit without reading, (3) counts the body bytes actually
  received — chunked bodies and bodies longer than their header say included — and stops
  reading at the limit (``413 {"kind": "PayloadTooLarge"}``), and (4) records the body's
  sha-256 under :data:`did.guard.BODY_SHA256_SCOPE`, which the DID guard compares with the
  request binding a presentation signs. The per-DID bucket is taken by the API after the
  caller is authenticated.

The client address is the TCP peer (``scope["client"]``); behind a reverse proxy all callers
share the proxy's bucket, so size ``ip_burst`` for it or rate-limit at the proxy.
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from did.guard import BODY_SHA256_SCOPE
from offchain.errors import DataPlaneError

MAX_BODY_BYTES = 8 * 1024 * 1024  # an encrypted result of many groups is a few hundred KiB


class RateLimited(DataPlaneError):
    """A caller exceeded its request rate; ``retry_after`` says when a request is allowed again."""

    def __init__(self, key: str, retry_after: int, detail: str) -> None:
        self.key, self.retry_after = key, retry_after
        super().__init__(f"too many requests from {key}: {detail}; retry in {retry_after} s")


@dataclass
class TokenBucket:
    """``burst`` requests at once, then ``per_second`` on average, for each key (thread-safe)."""

    per_second: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 4096
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)  # key → (tokens, at)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs per_second > 0 and burst >= 1, not {self.per_second}/{self.burst}")

    def take(self, key: str) -> None:
        """Take one token for ``key`` or raise :class:`RateLimited`."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / self.per_second))
                raise RateLimited(key, wait, f"{self.burst} at once, then {self.per_second:g}/s")
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_keys:
                refill = self.burst / self.per_second
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}


@dataclass(frozen=True)
class ServiceLimits:
    """The key service's limits. The defaults fit one oracle draining 40 jobs/s per address: a job
    is two authenticated calls (prepare, release), each after a challenge request, so an oracle at
    the 20 jobs/s target (issue 14) makes 40 calls/s under its DID and 80 requests/s from its
    address (the earlier 20/s and 10/s throttled an oracle to 5 jobs/s)."""

    max_body_bytes: int = MAX_BODY_BYTES
    ip_per_second: float = 160.0
    ip_burst: int = 320
    did_per_second: float = 80.0
    did_burst: int = 160

    def per_ip(self, clock: Callable[[], float] = time.monotonic) -> TokenBucket:
        return TokenBucket(self.ip_per_second, self.ip_burst, clock)

    def per_did(self, clock: Callable[[], float] = time.monotonic) -> TokenBucket:
        return TokenBucket(self.did_per_second, self.did_burst, clock)


def refusal(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Any:
    """The API's JSON refusal ``{"error": message, "kind": kind}`` as a response."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "kind": kind}, status_code=status, headers=headers)


def rate_limited(exc: RateLimited) -> Any:
    """429 with ``Retry-After`` for a :class:`RateLimited`."""
    return refusal(429, "RateLimited", str(exc), {"Retry-After": str(exc.retry_after)})


TOO_LARGE = b"\0too-large"  # sentinel of read_body (compared by identity)


async def read_body(receive: Callable, limit: int) -> bytes | None:
    """A request's body, counted as it arrives (chunked bodies and lying Content-Length headers
    included): the bytes, :data:`TOO_LARGE` once more than ``limit`` arrived, or None if the
    client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return TOO_LARGE
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def replaying(body: bytes, receive: Callable) -> Callable:
    """An ASGI ``receive`` that hands the already-read ``body`` to the app once, then defers."""
    delivered = False

    async def replay() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class RequestLimits:
    """ASGI middleware: per-address rate limit, body limit on the bytes read, body digest."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES, per_ip: TokenBucket | None = None):
        self.app = app
        self.limit = limit
        self.per_ip = per_ip

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.per_ip is not None:
            client = scope.get("client")
            try:
                self.per_ip.take("ip:" + (client[0] if client else "unknown"))
            except RateLimited as exc:
                await self._send(rate_limited(exc), scope, send)
                return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await self._send(refusal(400, "InvalidInput", f"Content-Length {length[:40]!r} is not a "
                                                              "byte count"), scope, send)
                return
            if int(length) > self.limit:
                await self._send(self._too_large(f"a body of {int(length)} bytes"), scope, send)
                return
        body = await read_body(receive, self.limit)
        if body is TOO_LARGE:  # counted on what arrives, whatever the header said
            await self._send(self._too_large(f"more than {self.limit} bytes of body"), scope, send)
            return
        if body is None:
            return
        digest = hashlib.sha256(body)
        replay = replaying(body, receive)
        await self.app({**scope, BODY_SHA256_SCOPE: digest.hexdigest()}, replay, send)

    def _too_large(self, what: str) -> Any:
        return refusal(413, "PayloadTooLarge", f"request body refused: {what} exceeds the key service's "
                                               f"{self.limit}-byte limit (ask for fewer groups per job)")

    @staticmethod
    async def _send(response: Any, scope: dict[str, Any], send: Callable) -> None:
        async def _gone() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        await response(scope, _gone, send)
