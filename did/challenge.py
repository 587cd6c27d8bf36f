"""Challenge–response authentication (002 §3.4.1.2) for the API gateway and the oracle.

The verifier issues a nonce that carries its own expiry and is MAC'd together with the
verifier's domain (``<expiry>.<random>.<mac>``), so issuing needs no state. The holder answers
with a Verifiable Presentation whose Ed25519 proof (purpose ``authentication``) embeds the
challenge and the domain; it may carry role credentials. The verifier checks domain, MAC,
expiry, the proof (didkit), then consumes the nonce in its replay store — a second answer to
the same nonce is refused until the nonce would have expired anyway.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from did import _didkit
from did.credentials import TrustContext, VerifiedCredential, verify_role_credential
from did.errors import (ChallengeExpired, ChallengeReplayed, DidkitError, DomainMismatch, TamperedPresentation,
                        UnknownChallenge, UnknownDid)
from did.keys import b64u, b64u_decode, ed25519_from_did, verification_method_id

if TYPE_CHECKING:
    from did.identity import Identity

VC_CONTEXT = "https://www.w3.org/2018/credentials/v1"


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

    def _check_nonce(self, nonce: Any) -> float:
        try:
            expires, rand, mac = nonce.split(".")
            expires_at = float(int(expires))
        except (AttributeError, ValueError):
            raise UnknownChallenge("challenge is not one this verifier issues") from None
        if not hmac.compare_digest(mac, self._mac(expires, rand)):
            raise UnknownChallenge(f"challenge was not issued by {self.domain} (or was altered)")
        return expires_at

    def verify(self, vp: Any, trust: TrustContext | None = None, *, holder_account: str | None = None,
               role: str | None = None) -> Authenticated:
        """Check the answer; with ``trust``, also verify each embedded role credential."""
        if not isinstance(vp, dict) or not isinstance(vp.get("proof"), dict):
            raise TamperedPresentation("presentation must be a JSON object with a proof")
        proof, holder = vp["proof"], vp.get("holder")
        if proof.get("domain") != self.domain:
            raise DomainMismatch(f"presentation is for domain {proof.get('domain')!r}, not {self.domain!r}")
        nonce = proof.get("challenge")
        expires_at = self._check_nonce(nonce)
        now = self.clock()
        if now >= expires_at:
            raise ChallengeExpired(f"challenge expired {now - expires_at:.0f} s ago; request a new one")
        try:
            ed25519_from_did(holder)
        except UnknownDid as exc:
            raise TamperedPresentation(f"presentation holder is not a did:key: {exc}") from None
        if proof.get("verificationMethod") != verification_method_id(holder) or proof.get("proofPurpose") != "authentication":
            raise TamperedPresentation("presentation proof is not an authentication proof by its holder's key")
        try:
            result = _didkit.verify_presentation(vp, {"proofPurpose": "authentication", "challenge": nonce,
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
        if not self.replay.consume(nonce, expires_at, now):
            raise ChallengeReplayed("challenge was already answered; request a new one")
        return Authenticated(holder, tuple(verified))


def respond(holder: "Identity", challenge: Challenge | dict[str, Any] | str, domain: str | None = None,
            credentials: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The holder's signed presentation answering ``challenge`` for ``domain``."""
    if isinstance(challenge, Challenge):
        nonce, domain = challenge.nonce, domain or challenge.domain
    elif isinstance(challenge, dict):
        nonce, domain = challenge["challenge"], domain or challenge["domain"]
    else:
        nonce = challenge
    if not domain:
        raise UnknownChallenge("a domain is needed to answer a challenge")
    vp: dict[str, Any] = {"@context": [VC_CONTEXT], "type": ["VerifiablePresentation"], "holder": holder.did}
    if credentials:
        vp["verifiableCredential"] = list(credentials)
    options = {"proofPurpose": "authentication", "verificationMethod": holder.verification_method,
               "challenge": nonce, "domain": domain}
    return _didkit.issue_presentation(vp, options, holder.jwk)
