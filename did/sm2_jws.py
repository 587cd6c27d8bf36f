"""SM2 proofs on credentials and presentations (the ``sm`` profile): a detached compact JWS whose
algorithm is ``SM2SM3`` — SM2 signature over SM3 with the default identifier (GM/T 0003.2,
:mod:`chain.sm2`), written with ``tongsuopy``. didkit has no SM2 JWS, so this replaces its
linked-data proof for SM2 did:keys; the default profile keeps didkit's Ed25519 proofs.

The proof has the members didkit's has — ``type``, ``proofPurpose``, ``verificationMethod``,
``created``, ``jws`` (a presentation's also ``challenge`` and ``domain``) — with ``type`` =
:data:`PROOF_TYPE` and ``jws`` = ``<header>..<signature>`` (RFC 7515 detached, RFC 7797
unencoded payload). The header is ``{"alg":"SM2SM3","b64":false,"crit":["b64"]}``; the payload
signed is the canonical JSON (sorted keys, no spaces) of ``{"document": <the document without
its proof>, "proof": <the proof without jws>}``. Unlike a JSON-LD graph proof it covers the exact
JSON, so one signed document has exactly one canonical form (and one credential hash)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from chain.sm2 import Sm2Error, Sm2PrivateKey, sm2_verify
from did.document import canonical_json
from did.errors import UnknownDid
from did.keys import b64u, b64u_decode, verification_method_id
from did.sm2 import did_from_sm2, sm2_from_did

ALG = "SM2SM3"
PROOF_TYPE = "SM2SM3Signature"
HEADER = {"alg": ALG, "b64": False, "crit": ["b64"]}
__all__ = ["ALG", "PROOF_TYPE", "HEADER", "signing_input", "sign_document", "verify_document"]


def _header_b64() -> str:
    return b64u(canonical_json(HEADER))


def signing_input(document: dict[str, Any], proof_options: dict[str, Any]) -> bytes:
    """The bytes an ``SM2SM3`` proof signs: ``b64u(header) || "." || canonical{document, proof}``."""
    body = {k: v for k, v in document.items() if k != "proof"}
    return _header_b64().encode() + b"." + canonical_json({"document": body, "proof": proof_options})


def sign_document(document: dict[str, Any], key: Sm2PrivateKey, options: dict[str, Any]) -> dict[str, Any]:
    """``document`` with an SM2 proof by ``key`` (``options``: ``proofPurpose`` and, for a
    presentation, ``challenge`` and ``domain``; ``verificationMethod`` defaults to the key's)."""
    did = did_from_sm2(key.public)
    proof = {"type": PROOF_TYPE, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "verificationMethod": verification_method_id(did), **options}
    if proof["verificationMethod"] != verification_method_id(did):
        raise Sm2Error(f"verificationMethod {proof['verificationMethod']} is not the signing key's {did}")
    sig = key.sign(signing_input(document, proof))
    return {**document, "proof": {**proof, "jws": f"{_header_b64()}..{b64u(sig)}"}}


def verify_document(document: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Verify the ``SM2SM3`` proof of ``document``; the answer has didkit's shape
    ``{"checks": ["proof"] | [], "warnings": [], "errors": [...]}``. ``options`` names the
    expected ``proofPurpose`` and, for a presentation, ``challenge`` and ``domain``."""
    errors = _problems(document, options)
    return {"checks": [] if errors else ["proof"], "warnings": [], "errors": errors}


def _problems(document: Any, options: dict[str, Any]) -> list[str]:
    proof = document.get("proof") if isinstance(document, dict) else None
    if not isinstance(proof, dict) or not isinstance(proof.get("jws"), str):
        return ["no SM2SM3 proof with a jws"]
    if proof.get("type") != PROOF_TYPE:
        return [f"proof type {proof.get('type')!r} is not {PROOF_TYPE}"]
    for name in ("proofPurpose", "challenge", "domain"):
        if name in options and proof.get(name) != options[name]:
            return [f"proof {name} {proof.get(name)!r} is not {options[name]!r}"]
    header, empty, sig_text = proof["jws"].split(".") if proof["jws"].count(".") == 2 else ("", "x", "")
    if header != _header_b64() or empty:
        return [f"jws is not a detached {ALG} JWS with the unencoded-payload header"]
    vm = proof.get("verificationMethod")
    did = vm.split("#", 1)[0] if isinstance(vm, str) else ""
    try:
        public = sm2_from_did(did)
        sig = b64u_decode(sig_text)
    except (UnknownDid, ValueError) as exc:
        return [f"proof verificationMethod is not an SM2 did:key: {exc}"]
    if vm != verification_method_id(did):
        return [f"proof verificationMethod {vm} is not {did}'s key"]
    if b64u(sig) != sig_text:
        return ["jws signature is not canonical base64url"]
    opts = {k: v for k, v in proof.items() if k != "jws"}
    if not sm2_verify(public, signing_input(document, opts), sig):
        return [f"SM2 signature of {did} does not verify (altered after signing, or another key)"]
    return []
