"""Per-caller rate limits (token buckets) and the request-body limit of the gateway.

A bucket per key — ``did:<DID>`` for an authenticated caller, ``ip:<address>`` otherwise —
holds ``burst`` tokens and refills at ``per_second``; a request takes one. An empty bucket is a
429 with ``Retry-After`` (whole seconds until a token is back). Buckets idle long enough to be
full again are dropped, so memory stays bounded by the callers of the last few seconds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from offchain.keyservice.limits import TOO_LARGE, TokenBucket, read_body, replaying
from offchain.keyservice.limits import RateLimited as BucketEmpty
from tds.gateway.errors import PayloadTooLarge, RateLimited

MAX_BODY_BYTES = 512 * 1024  # job parameters (256 KiB canonical JSON) + a raw transaction, JSON-escaped


@dataclass
class RateLimit:
    """``burst`` requests at once, then ``per_second`` on average, per caller: the key service's
    token bucket, its refusal as the gateway's 429 JSON error with ``Retry-After``."""

    per_second: float = 5.0
    burst: int = 30
    clock: Callable[[], float] = time.monotonic
    _bucket: TokenBucket = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._bucket = TokenBucket(self.per_second, self.burst, self.clock)

    def take(self, key: str) -> None:
        """Take one token for ``key`` or raise :class:`RateLimited` with ``Retry-After``."""
        try:
            self._bucket.take(key)
        except BucketEmpty as exc:
            raise RateLimited("rate-limited", f"too many requests from {key}: {self.burst} at once, then "
                                              f"{self.per_second:g}/s; retry in {exc.retry_after} s",
                              headers={"Retry-After": str(exc.retry_after)}) from None


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is a 413 JSON refusal, read no further.

    ``Content-Length`` is checked first; a chunked body is counted as it arrives and buffered
    (it is at most ``limit`` bytes), then handed to the app unchanged.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(send, f"request body of {length.decode(errors='replace')} bytes exceeds the "
                                     f"{self.limit}-byte limit")
            return
        body = await read_body(receive, self.limit)
        if body is TOO_LARGE:
            await self._refuse(send, f"request body exceeds the {self.limit}-byte limit")
            return
        if body is None:
            return
        replay = replaying(body, receive)

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Callable, detail: str) -> None:
        from fastapi.responses import JSONResponse

        exc = PayloadTooLarge("payload-too-large", detail)
        response = JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)

        async def _noop() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        await response({"type": "http"}, _noop, send)
