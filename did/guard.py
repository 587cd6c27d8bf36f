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
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from did.challenge import Authenticated, Challenge, ChallengeVerifier, respond
from did.credentials import TrustContext
from did.errors import IdentityError, RoleMismatch, UnknownChallenge
from did.keys import b64u, b64u_decode

if TYPE_CHECKING:
    from did.identity import Identity

HEADER = "X-TDS-Presentation"
SCHEME = "TDS-Challenge"
MAX_HEADER_BYTES = 32 * 1024  # a presentation with a few credentials is 2-8 KiB
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
                        credentials: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """Client half: the header answering the challenge in ``www_authenticate``."""
    vp = respond(holder, parse_challenge_header(www_authenticate), credentials=credentials)
    return {HEADER: encode_presentation(vp)}


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
    presents; ``role`` additionally requires one of them to grant that role.
    """

    def __init__(self, verifier: ChallengeVerifier, trust: TrustContext | None = None, role: str | None = None):
        if role is not None and trust is None:
            raise ValueError("requiring a role needs a trust context to verify credentials with")
        self.verifier = verifier
        self.trust = trust
        self.role = role

    def __call__(self, request: Any) -> Authenticated:
        value = request.headers.get(HEADER)
        if not value:
            raise self._refuse(401, f"authenticate: answer the {SCHEME} challenge with a signed presentation "
                                    f"in the {HEADER} header")
        try:
            return self.verifier.verify(decode_presentation(value), self.trust, role=self.role)
        except RoleMismatch as exc:
            raise self._refuse(403, f"{type(exc).__name__}: {exc}") from None
        except IdentityError as exc:
            raise self._refuse(401, f"{type(exc).__name__}: {exc}") from None

    def _refuse(self, status: int, message: str) -> Exception:
        from fastapi import HTTPException  # the gateway's framework; imported only when guarding

        headers = {"WWW-Authenticate": challenge_header(self.verifier.issue())} if status == 401 else None
        return HTTPException(status_code=status, detail=message, headers=headers)
