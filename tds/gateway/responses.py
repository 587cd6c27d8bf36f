"""The error responses each route documents in the OpenAPI document (every refusal is an
``ErrorBody``: ``{"error": code, "detail": message}``)."""
from __future__ import annotations

from typing import Any

from tds.gateway.models import ErrorBody


def error_responses(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these status codes (``s409=\"…\"`` overrides a description)."""
    text = {400: "malformed payload", 401: "authenticate: answer the DID challenge in WWW-Authenticate",
            403: "authenticated, but not allowed (unbound DID, other signer, not a party)",
            404: "unknown asset or job", 409: "the chain refuses it (revert, nonce, deadline)",
            413: "request body too large", 422: "invalid parameters",
            429: "rate limited: retry after Retry-After seconds", 502: "stored result is not the sealed one",
            503: "chain, content store or authentication unavailable"}
    text.update({int(k.removeprefix("s")): v for k, v in described.items()})
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


READ_ERRORS = error_responses(404, 422, 429, 503)
AUTH_ERRORS = (401, 403, 422, 429, 503)
