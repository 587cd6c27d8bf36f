"""Challenge–response over HTTP: a guard for ``tds.gateway.create_app(guard=...)`` and its client half.

One round trip per request, no server-side session:

1. A request without the header (or with a refused answer) gets ``401`` and a fresh challenge in
   ``WWW-Authenticate: TDS-Challenge challenge="<nonce>", domain="<domain>", expires="<unix s>"``.
2. The caller answers with :func:`presentation_header` — a didkit presentation signed by its DID
   key over that nonce and domain (optionally carrying role credentials), base64url JSON in
   ``X-TDS-Presentation`` — and repeats the request.
3. The guard runs :meth:`did.challenge.ChallengeVerifier.verify` (domain, MAC, expiry, proof,
   credentials, replay) and returns :class:`did.challenge.Authenticated`, which the gateway
   stores at ``request.state.caller``.

A missing or refused answer is ``401`` (with a new challenge); a verified caller without the
required role is ``403``. The message always names the reason (the refusal's class and text).
Every answer burns its nonce, accepted or refused.

**Binding to the request.** ``presentation_header(..., request=RequestBinding.of(method, path,
body))`` signs the HTTP method, the path and the sha-256 of the exact body bytes into the
presentation. The guard always checks a binding a presentation carries against the request it
received (:class:`did.errors.RequestMismatch`); with ``bind_request=True`` (the key service) it
also refuses an unbound presentation (:class:`did.errors.RequestNotBound`). The body's digest
comes from ``scope[BODY_SHA256_SCOPE]``, set by a middleware that reads the body (the key
service's :class:`offchain.keyservice.limits.RequestLimits`); a request that declares no body
hashes as empty. The gateway keeps ``bind_request=False``: its clients send unbound answers.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from did.challenge import Authenticated, Challenge, ChallengeVerifier, RequestBinding, respond
from did.credentials import TrustContext
from did.errors import AuthenticationRequired, IdentityError, RoleMismatch, UnknownChallenge
from did.keys import b64u, b64u_decode

if TYPE_CHECKING:
    from did.identity import Identity

HEADER = "X-TDS-Presentation"
SCHEME = "TDS-Challenge"
MAX_HEADER_BYTES = 32 * 1024  # a presentation with a few credentials is 2-8 KiB
BODY_SHA256_SCOPE = "tds.body_sha256"  # ASGI scope key: hex sha-256 of the body as read
_NO_BODY_METHODS = {"GET", "HEAD", "OPTIONS", "DELETE"}
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def challenge_header(challenge: Challenge) -> str:
    """The ``WWW-Authenticate`` value announcing ``challenge``."""
    return (f'{SCHEME} challenge="{challenge.nonce}", domain="{challenge.domain}", '
            f'expires="{int(challenge.expires_at)}"')


def parse_challenge_header(value: str) -> Challenge:
    """The challenge a ``WWW-Authenticate`` value announces. Raises :class:`UnknownChallenge`."""
    if not isinstance(value, str) or not value.strip().startswith(SCHEME + " "):
        raise UnknownChallenge(f"WWW-Authenticate is not a {SCHEME} challenge: {value!r}")
    params = dict(_PARAM.findall(value))
    try:
        return Challenge(params["challenge"], params["domain"], float(params["expires"]))
    except (KeyError, ValueError):
        raise UnknownChallenge(f"{SCHEME} challenge lacks challenge/domain/expires: {value!r}") from None


def presentation_header(holder: "Identity", www_authenticate: str,
                        credentials: list[dict[str, Any]] | None = None, *,
                        request: RequestBinding | None = None) -> dict[str, str]:
    """Client half: the header answering the challenge in ``www_authenticate`` (valid for
    ``request`` only when given: ``RequestBinding.of(method, path, body_bytes)``)."""
    vp = respond(holder, parse_challenge_header(www_authenticate), credentials=credentials, request=request)
    return {HEADER: encode_presentation(vp)}


def request_binding(request: Any) -> RequestBinding | None:
    """The binding of the request received: method, path (``?query`` included) and the body's
    sha-256 from ``scope[BODY_SHA256_SCOPE]``. None when the body was not digested on the way in
    (and the request may have one): a binding then cannot be checked."""
    scope = request.scope
    path = scope.get("path", "")
    if scope.get("query_string"):
        path += "?" + scope["query_string"].decode("latin-1")
    method = str(scope.get("method", "")).upper()
    digest = scope.get(BODY_SHA256_SCOPE)
    if digest is None:
        length = request.headers.get("content-length")
        if "transfer-encoding" in request.headers or (length not in (None, "0")) or (
                length is None and method not in _NO_BODY_METHODS):
            return None
        digest = hashlib.sha256(b"").hexdigest()
    return RequestBinding(method, path, digest)


def encode_presentation(vp: dict[str, Any]) -> str:
    return b64u(json.dumps(vp, separators=(",", ":")).encode())


def decode_presentation(value: str) -> dict[str, Any]:
    if len(value) > MAX_HEADER_BYTES:
        raise UnknownChallenge(f"{HEADER} is larger than {MAX_HEADER_BYTES} bytes")
    try:
        vp = json.loads(b64u_decode(value))
    except (ValueError, UnicodeDecodeError):
        raise UnknownChallenge(f"{HEADER} is not base64url JSON") from None
    if not isinstance(vp, dict):
        raise UnknownChallenge(f"{HEADER} is not a JSON presentation object")
    return vp


class ChallengeGuard:
    """``guard(request) -> Authenticated`` for the gateway; raises ``HTTPException(401 | 403)``.

    ``trust`` (e.g. :class:`did.registry.ChainTrust`) verifies the role credentials a caller
    presents; ``role`` additionally requires one of them to grant that role; ``bind_request``
    admits only presentations bound to the request they arrive with.
    :meth:`authenticate` is the same check raising the identity refusal itself, for services
    that shape their own error bodies.
    """

    def __init__(self, verifier: ChallengeVerifier, trust: TrustContext | None = None, role: str | None = None,
                 *, bind_request: bool = False):
        if role is not None and trust is None:
            raise ValueError("requiring a role needs a trust context to verify credentials with")
        self.verifier = verifier
        self.trust = trust
        self.role = role
        self.bind_request = bind_request

    def authenticate(self, request: Any) -> Authenticated:
        """The verified caller of ``request``; raises :class:`did.errors.IdentityError` (the
        refusal) — :meth:`status_of` gives its HTTP status."""
        value = request.headers.get(HEADER)
        if not value:
            raise AuthenticationRequired(f"authenticate: answer the {SCHEME} challenge with a signed presentation "
                                         f"in the {HEADER} header")
        return self.verifier.verify(decode_presentation(value), self.trust, role=self.role,
                                    request=request_binding(request), require_binding=self.bind_request)

    @staticmethod
    def status_of(exc: IdentityError) -> int:
        """403 for a verified caller lacking the role, 401 (answer a new challenge) otherwise."""
        return 403 if isinstance(exc, RoleMismatch) else 401

    def challenge_headers(self) -> dict[str, str]:
        """``WWW-Authenticate`` with a fresh challenge (sent with every 401)."""
        return {"WWW-Authenticate": challenge_header(self.verifier.issue())}

    def __call__(self, request: Any) -> Authenticated:
        try:
            return self.authenticate(request)
        except AuthenticationRequired as exc:
            raise self._refuse(401, str(exc)) from None
        except IdentityError as exc:
            raise self._refuse(self.status_of(exc), f"{type(exc).__name__}: {exc}") from None

    def _refuse(self, status: int, message: str) -> Exception:
        from fastapi import HTTPException  # the gateway's framework; imported only when guarding

        headers = self.challenge_headers() if status == 401 else None
        return HTTPException(status_code=status, detail=message, headers=headers)
