"""Which signature a DID makes and checks, by cryptography profile: one door for credentials and
presentations. An Ed25519 did:key (multicodec 0xed01) belongs to the ``default`` profile and signs
through didkit; an SM2 did:key (0x1206) belongs to ``sm`` and signs ``SM2SM3`` JWS proofs
(:mod:`did.sm2_jws`). Signing and verifying both require the DID's profile to be the one in force
(``TDS_CRYPTO_PROFILE``); another is refused with :class:`did.errors.CryptoProfileMismatch`,
naming the thing refused and both profiles — never silently accepted."""
from __future__ import annotations

from typing import Any, Protocol

from chain.crypto_profile import DEFAULT, SM, configured_profile
from did import _didkit
from did.errors import CryptoProfileMismatch, UnknownDid
from did.keys import ED25519_CODEC, b58decode, ed25519_from_did
from did.sm2 import SM2_CODEC, sm2_from_did

__all__ = ["Signer", "did_profile", "require_did_profile", "issue_credential", "verify_credential",
           "issue_presentation", "verify_presentation", "proof_did"]


class Signer(Protocol):
    """What signs a proof: :class:`did.identity.Identity` or :class:`did.sm2_identity.Sm2Participant`."""

    profile: str

    @property
    def did(self) -> str: ...


def did_profile(did: str) -> str:
    """``default`` for an Ed25519 did:key, ``sm`` for an SM2 one (the key is decoded and checked);
    :class:`UnknownDid` for anything else."""
    if not isinstance(did, str) or not did.startswith("did:key:z"):
        raise UnknownDid(f"{did!r} is not a did:key DID")
    try:
        codec = b58decode(did[len("did:key:z"):].split("#", 1)[0])[:2]
    except ValueError as exc:
        raise UnknownDid(f"{did!r} is not valid base58btc: {exc}") from None
    if codec == ED25519_CODEC:
        ed25519_from_did(did)
        return DEFAULT
    if codec == SM2_CODEC:
        sm2_from_did(did)
        return SM
    raise UnknownDid(f"{did!r} is neither an Ed25519 nor an SM2 did:key")


def require_did_profile(did: str, subject: str, expected: str | None = None) -> str:
    """``did``'s profile, after refusing one that is not ``expected`` (default: the one in force)."""
    want = expected or configured_profile().name
    found = did_profile(did)
    if found != want:
        raise CryptoProfileMismatch(want, found, subject)
    return found


def proof_did(document: Any) -> str:
    """The DID of a document's proof's verification method ('' when there is none)."""
    proof = document.get("proof") if isinstance(document, dict) else None
    vm = proof.get("verificationMethod") if isinstance(proof, dict) else None
    return vm.split("#", 1)[0] if isinstance(vm, str) else ""


def _sign(kind: str, document: dict[str, Any], options: dict[str, Any], signer: Any) -> dict[str, Any]:
    require_did_profile(signer.did, f"{kind} signed by {signer.did}")
    if getattr(signer, "profile", DEFAULT) == SM:
        from did.sm2_jws import sign_document
        return sign_document(document, signer.signing, options)
    if kind == "credential":
        return _didkit.issue_credential(document, options, signer.jwk)
    return _didkit.issue_presentation(document, options, signer.jwk)


def _verify(kind: str, document: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    did = proof_did(document)
    try:
        profile = require_did_profile(did, f"{kind} signed by {did}")
    except UnknownDid as exc:
        return {"checks": [], "warnings": [], "errors": [f"proof is not by a did:key: {exc}"]}
    if profile == SM:
        from did.sm2_jws import verify_document
        return verify_document(document, options)
    if kind == "credential":
        return _didkit.verify_credential(document, options)
    return _didkit.verify_presentation(document, options)


def issue_credential(vc: dict[str, Any], options: dict[str, Any], signer: Any) -> dict[str, Any]:
    """``vc`` with ``signer``'s proof (didkit Ed25519, or SM2SM3 under ``sm``)."""
    return _sign("credential", vc, options, signer)


def verify_credential(vc: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """didkit-shaped verification result of a credential's proof, of the profile in force."""
    return _verify("credential", vc, options)


def issue_presentation(vp: dict[str, Any], options: dict[str, Any], signer: Any) -> dict[str, Any]:
    """``vp`` with ``signer``'s authentication proof (options carry challenge and domain)."""
    return _sign("presentation", vp, options, signer)


def verify_presentation(vp: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """didkit-shaped verification result of a presentation's proof, of the profile in force."""
    return _verify("presentation", vp, options)
