"""The gateway's refusals: each carries its HTTP status, a stable code and the message people read.

Every one becomes a JSON body ``{"error": code, "detail": message}`` (see ``create_app``); a
user's mistake is always one of these (4xx), never a 500.
"""
from __future__ import annotations

from chain.errors import TdsError


class GatewayError(TdsError):
    """A refusal with an HTTP status; ``code`` is stable, ``detail`` says what was wrong."""

    status = 400

    def __init__(self, code: str, detail: str, *, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers


class BadRequest(GatewayError):
    """Malformed or inconsistent input (a transaction or payload that cannot be relayed)."""

    status = 400


class Forbidden(GatewayError):
    """Authenticated, but not allowed: signed by another account, not a party, no role."""

    status = 403


class NotFound(GatewayError):
    status = 404


class Conflict(GatewayError):
    """The chain refuses it now (a revert, a used nonce, a passed deadline)."""

    status = 409


class PayloadTooLarge(GatewayError):
    status = 413


class RateLimited(GatewayError):
    status = 429


class Unavailable(GatewayError):
    """The chain, the content store or a feature (writes without authentication) is not there."""

    status = 503


class BadUpstream(GatewayError):
    """What the content store holds is not what the chain recorded (or not sealed): the gateway
    refuses to pass it on."""

    status = 502
