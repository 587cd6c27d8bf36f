"""Challenge–response authentication (002 §3.4.1.2) for the API gateway and the oracle.

The verifier issues a nonce that carries its own expiry and is MAC'd together with the
verifier's domain (``<expiry>.<random>.<mac>``), so issuing needs no state. The holder answers
with a Verifiable Presentation whose Ed25519 proof (didkit; under ``TDS_CRYPTO_PROFILE=sm`` an
SM2 ``SM2SM3`` proof, :mod:`did.proofs` — a holder of the other profile is refused by name,
:class:`did.errors.CryptoProfileMismatch`) (purpose ``authentication``) embeds the
challenge and the domain; it may carry role credentials and a :class:`RequestBinding` (HTTP
method, path and body sha-256 of the one request it authenticates, covered by the proof). The
verifier checks domain and MAC, expiry, then consumes the nonce in its replay store *before*
anything else can fail — so every attempt, refused or not, burns its nonce and a second answer
to it is :class:`ChallengeReplayed` — then the request binding, the proof (didkit) and the
credentials.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from did import proofs
from did.credentials import TDS_VOCAB, TrustContext, VerifiedCredential, verify_role_credential
from did.errors import (ChallengeExpired, ChallengeReplayed, DidkitError, DomainMismatch, RequestMismatch,
                        RequestNotBound, TamperedPresentation, UnknownChallenge, UnknownDid)
from did.keys import b64u, verification_method_id

if TYPE_CHECKING:
    from did.identity import Identity

VC_CONTEXT = "https://www.w3.org/2018/credentials/v1"
BOUND_CONTEXT = [VC_CONTEXT, {"@vocab": TDS_VOCAB}]  # maps ``tdsRequest`` into the signed graph
BINDING_FIELD = "tdsRequest"
_BINDING_KEYS = {"method", "path", "bodySha256"}


@dataclass(frozen=True)
class Challenge:
    nonce: str
    domain: str
    expires_at: float

    def to_json(self) -> dict[str, Any]:
        return {"challenge": self.nonce, "domain": self.domain, "expiresAt": self.expires_at}


class ReplayStore:
    """Nonces already answered, kept until they expire (thread-safe, in memory)."""

    def __init__(self) -> None:
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def consume(self, nonce: str, expires_at: float, now: float) -> bool:
        """Mark ``nonce`` used; False if it already was."""
        with self._lock:
            if len(self._used) > 1024:
                self._used = {n: e for n, e in self._used.items() if e > now}
            if nonce in self._used:
                return False
            self._used[nonce] = expires_at
            return True


@dataclass(frozen=True)
class RequestBinding:
    """The one HTTP request a presentation authenticates: method, path (with ``?query`` if any)
    and the hex sha-256 of the exact body bytes."""

    method: str
    path: str
    body_sha256: str

    @classmethod
    def of(cls, method: str, path: str, body: bytes = b"") -> "RequestBinding":
        """The binding of ``method path`` with ``body`` (the bytes sent, not a re-encoding)."""
        return cls(method.upper(), path, hashlib.sha256(bytes(body)).hexdigest())

    def to_json(self) -> dict[str, str]:
        return {"method": self.method, "path": self.path, "bodySha256": self.body_sha256}

    @classmethod
    def from_json(cls, raw: Any) -> "RequestBinding":
        """Parse a presentation's ``tdsRequest``; only the exact shape :func:`respond` makes."""
        if (not isinstance(raw, dict) or set(raw) != _BINDING_KEYS
                or not all(isinstance(raw[k], str) for k in _BINDING_KEYS)):
            raise TamperedPresentation(f"presentation's {BINDING_FIELD} must be an object of three strings "
                                       f"{sorted(_BINDING_KEYS)}")
        return cls(raw["method"], raw["path"], raw["bodySha256"])

    def describe(self) -> str:
        return f"{self.method} {self.path} (body sha-256 {self.body_sha256[:16]}…)"


@dataclass(frozen=True)
class Authenticated:
    """A verified presentation: who answered, and which credentials it carried."""

    did: str
    credentials: tuple[VerifiedCredential, ...] = ()

    def roles(self) -> set[str]:
        return {c.role for c in self.credentials}


@dataclass
class ChallengeVerifier:
    """Issues and checks challenges for one ``domain`` (e.g. ``gateway.tds.local``)."""

    domain: str
    ttl: float = 120.0
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    replay: ReplayStore = field(default_factory=ReplayStore)
    clock: Any = time.time

    def _mac(self, expires: str, rand: str) -> str:
        msg = f"tds-challenge/v1|{self.domain}|{expires}|{rand}".encode()
        return b64u(hmac.new(self.secret, msg, hashlib.sha256).digest()[:16])

    def issue(self) -> Challenge:
        expires = int(self.clock() + self.ttl)
        rand = b64u(os.urandom(24))
        return Challenge(f"{expires}.{rand}.{self._mac(str(expires), rand)}", self.domain, float(expires))

    def _nonce_expiry(self, nonce: Any) -> float | None:
        """The expiry a nonce of this verifier carries, or None when it is not one of ours."""
        try:
            expires, rand, mac = nonce.split(".")
            expires_at = float(int(expires))
        except (AttributeError, ValueError):
            return None
        return expires_at if hmac.compare_digest(mac, self._mac(expires, rand)) else None

    def _check_nonce(self, nonce: Any) -> float:
        expires_at = self._nonce_expiry(nonce)
        if expires_at is None:
            if not isinstance(nonce, str) or nonce.count(".") != 2:
                raise UnknownChallenge("challenge is not one this verifier issues")
            raise UnknownChallenge(f"challenge was not issued by {self.domain} (or was altered)")
        return expires_at

    def verify(self, vp: Any, trust: TrustContext | None = None, *, holder_account: str | None = None,
               role: str | None = None, request: RequestBinding | None = None,
               require_binding: bool = False) -> Authenticated:
        """Check the answer; with ``trust``, also verify each embedded role credential.

        The nonce is consumed as soon as it is known to be ours and unexpired, so a refused
        attempt cannot be retried with it. ``request`` is the request actually received: a
        presentation bound to another one is :class:`RequestMismatch`; with ``require_binding``
        an unbound presentation is :class:`RequestNotBound`."""
        if not isinstance(vp, dict) or not isinstance(vp.get("proof"), dict):
            raise TamperedPresentation("presentation must be a JSON object with a proof")
        proof, holder = vp["proof"], vp.get("holder")
        nonce = proof.get("challenge")
        now = self.clock()
        if proof.get("domain") != self.domain:
            ours = self._nonce_expiry(nonce)
            if ours is not None:  # our nonce answered for another domain: burn it all the same
                self.replay.consume(nonce, ours, now)
            raise DomainMismatch(f"presentation is for domain {proof.get('domain')!r}, not {self.domain!r}")
        expires_at = self._check_nonce(nonce)
        if now >= expires_at:
            raise ChallengeExpired(f"challenge expired {now - expires_at:.0f} s ago; request a new one")
        if not self.replay.consume(nonce, expires_at, now):
            raise ChallengeReplayed("challenge was already answered (or a refused answer used it); "
                                    "request a new one")
        self._check_binding(vp, request, require_binding)
        try:
            proofs.require_did_profile(holder, f"presentation of {holder}")
        except UnknownDid as exc:
            raise TamperedPresentation(f"presentation holder is not a did:key: {exc}") from None
        if proof.get("verificationMethod") != verification_method_id(holder) or proof.get("proofPurpose") != "authentication":
            raise TamperedPresentation("presentation proof is not an authentication proof by its holder's key")
        try:
            result = proofs.verify_presentation(vp, {"proofPurpose": "authentication", "challenge": nonce,
                                                      "domain": self.domain})
        except DidkitError as exc:
            raise TamperedPresentation(f"presentation proof does not verify: {exc}") from None
        if result.get("errors") or "proof" not in result.get("checks", []):
            raise TamperedPresentation(f"presentation proof does not verify: {'; '.join(result.get('errors') or ['no proof'])}")
        creds = vp.get("verifiableCredential") or []
        if isinstance(creds, dict):
            creds = [creds]
        verified: list[VerifiedCredential] = []
        if trust is not None:
            verified = [verify_role_credential(c, trust, holder_did=holder, holder_account=holder_account)
                        for c in creds]
            if role is not None and role.upper() not in {v.role for v in verified}:
                from did.errors import RoleMismatch
                raise RoleMismatch(f"{holder} presented no valid credential for role {role.upper()}")
        return Authenticated(holder, tuple(verified))

    @staticmethod
    def _check_binding(vp: dict[str, Any], request: RequestBinding | None, required: bool) -> None:
        """Compare the binding the presentation carries (signed with it) with the request received."""
        raw = vp.get(BINDING_FIELD)
        if raw is None:
            if required:
                raise RequestNotBound("this service accepts only presentations bound to their request: sign the "
                                      "HTTP method, path and body sha-256 (presentation_header(..., request="
                                      "RequestBinding.of(method, path, body)))")
            return
        if vp.get("@context") != BOUND_CONTEXT:
            raise TamperedPresentation(f"a presentation with {BINDING_FIELD} must use exactly the context "
                                       f"{BOUND_CONTEXT}")
        claimed = RequestBinding.from_json(raw)
        if request is None:
            raise RequestMismatch("presentation is bound to a request, but this service cannot tell which request "
                                  "it received (no body digest)")
        if claimed != request:
            raise RequestMismatch(f"presentation is bound to {claimed.describe()}, not to this request "
                                  f"{request.describe()}; answer a new challenge for this request")


def respond(holder: "Identity", challenge: Challenge | dict[str, Any] | str, domain: str | None = None,
            credentials: list[dict[str, Any]] | None = None,
            request: RequestBinding | None = None) -> dict[str, Any]:
    """The holder's signed presentation answering ``challenge`` for ``domain`` (bound to
    ``request`` when given: then it authenticates that one request only)."""
    if isinstance(challenge, Challenge):
        nonce, domain = challenge.nonce, domain or challenge.domain
    elif isinstance(challenge, dict):
        nonce, domain = challenge["challenge"], domain or challenge["domain"]
    else:
        nonce = challenge
    if not domain:
        raise UnknownChallenge("a domain is needed to answer a challenge")
    vp: dict[str, Any] = {"@context": [VC_CONTEXT], "type": ["VerifiablePresentation"], "holder": holder.did}
    if request is not None:
        vp["@context"] = [VC_CONTEXT, {"@vocab": TDS_VOCAB}]
        vp[BINDING_FIELD] = request.to_json()
    if credentials:
        vp["verifiableCredential"] = list(credentials)
    options = {"proofPurpose": "authentication", "verificationMethod": holder.verification_method,
               "challenge": nonce, "domain": domain}
    return proofs.issue_presentation(vp, options, holder)
