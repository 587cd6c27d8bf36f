"""Operator-issued role credentials (W3C VC data model 1.1, Ed25519 linked-data proof via didkit;
under ``TDS_CRYPTO_PROFILE=sm`` an ``SM2SM3`` JWS proof, :mod:`did.sm2_jws`, through :mod:`did.proofs`,
which refuses a credential of the other profile with :class:`did.errors.CryptoProfileMismatch`).

Format (all contexts resolve offline: ``credentials/v1`` is bundled in didkit, ours is inline)::

    {"@context": ["https://www.w3.org/2018/credentials/v1", {"@vocab": "https://tds.example/vocab#"}],
     "id": "urn:uuid:…", "type": ["VerifiableCredential", "TdsRoleCredential"],
     "issuer": "<operator did:key>", "issuanceDate": "<valid from>", "expirationDate": "<valid until>",
     "credentialSubject": {"id": "<subject DID>", "role": "PROVIDER", "organization": "…",
                           "account": "0x…"}, "proof": {…}}

The credential hash (keccak256 of the canonical JSON, proof included) is what the registry
stores when the operator grants the role and what it marks on revocation; only the exact issued
form verifies (:func:`check_issued_form`), so a signed credential has one hash. Verification uses
public data only, through a :class:`TrustContext`: the chain (``did.registry.ChainTrust``) or,
without a chain, :class:`OfflineTrust` (pinned operator DIDs + a local revocation list).
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from eth_utils import keccak, to_checksum_address

from did import proofs
from did.document import canonical_json
from did.errors import (CredentialExpired, CredentialNotYetValid, CredentialRevoked, DidkitError, DidNotBound,
                        MalformedCredential, RoleMismatch, SubjectMismatch, TamperedCredential, UnknownDid,
                        UntrustedIssuer)
from did.keys import b64u, b64u_decode, verification_method_id

if TYPE_CHECKING:
    from did.identity import Identity

VC_CONTEXT = "https://www.w3.org/2018/credentials/v1"
TDS_VOCAB = "https://tds.example/vocab#"
CREDENTIAL_TYPE = "TdsRoleCredential"
ROLES = ("PROVIDER", "CONSUMER", "OPERATOR", "REGULATOR", "DEVELOPER", "ALGORITHM_PROVIDER", "COMPUTE_PROVIDER")


def role_id(role: str) -> bytes:
    """bytes32 role identifier: keccak256 of the upper-case name (TdsRoles.sol)."""
    return keccak(text=normalize_role(role))


def normalize_role(role: str) -> str:
    name = str(role).strip().upper().replace("-", "_")
    if name not in ROLES:
        raise MalformedCredential(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return name


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: Any, what: str) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        raise MalformedCredential(f"credential {what} {text!r} is not an ISO-8601 time") from None


def credential_hash(vc: dict[str, Any]) -> bytes:
    """bytes32 credential hash: keccak256 of the canonical JSON of the signed credential."""
    return keccak(canonical_json(vc))


def issue_role_credential(operator: "Identity", subject_did: str, role: str, organization: str, *,
                          valid_from: datetime | None = None, valid_until: datetime | None = None,
                          days: float | None = None, subject_account: str | None = None,
                          binding_proof: dict[str, Any] | None = None,
                          jurisdiction: str | None = None) -> dict[str, Any]:
    """The operator signs a role credential for ``subject_did``.

    With ``binding_proof`` (the subject's two-way binding, checked here) the credential names the
    bound account; ``subject_account`` names one on the operator's own word. Either way the
    operator's signature then attests the DID side of the binding to every verifier.
    ``jurisdiction`` (e.g. ``CN``) names where the subject is established; compliance scans read it
    for the residency of domestic-only datasets (docs/compliance.md).
    """
    proofs.require_did_profile(subject_did, f"credential subject {subject_did}")  # a did:key of this profile
    if binding_proof is not None:
        from did.binding import verify_binding_proof

        bound = verify_binding_proof(binding_proof, did=subject_did)["address"]
        if subject_account is not None and to_checksum_address(subject_account) != bound:
            raise DidNotBound(f"{subject_did} is bound to {bound}, not to {subject_account}")
        subject_account = bound
    if not organization or not str(organization).strip():
        raise MalformedCredential("organization must not be empty")
    start = valid_from or datetime.now(timezone.utc)
    end = valid_until or (start + timedelta(days=days if days is not None else 365))
    if end <= start:
        raise MalformedCredential(f"validity period is empty: {_iso(start)} .. {_iso(end)}")
    subject: dict[str, Any] = {"id": subject_did, "role": normalize_role(role), "organization": str(organization)}
    if subject_account is not None:
        subject["account"] = to_checksum_address(subject_account)
    if jurisdiction is not None:
        if not str(jurisdiction).strip():
            raise MalformedCredential("jurisdiction must not be empty")
        subject["jurisdiction"] = str(jurisdiction).strip().upper()
    vc = {
        "@context": [VC_CONTEXT, {"@vocab": TDS_VOCAB}],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": operator.did,
        "issuanceDate": _iso(start),
        "expirationDate": _iso(end),
        "credentialSubject": subject,
    }
    options = {"proofPurpose": "assertionMethod", "verificationMethod": operator.verification_method}
    return proofs.issue_credential(vc, options, operator)


class TrustContext(Protocol):
    """Public facts a verifier needs: who the operators are, what is revoked, who is bound."""

    def is_trusted_issuer(self, did: str) -> bool: ...

    def is_revoked(self, credential_hash: bytes) -> bool: ...

    def account_of(self, did: str) -> str | None: ...

    def has_binding_proof(self, did: str) -> bool:
        """True if the DID controller's signature over ``account_of(did)`` was checked."""
        ...


@dataclass
class OfflineTrust:
    """Trust without a chain: pinned operator DIDs, a local revocation list, known bindings."""

    operators: set[str]
    revoked: set[bytes] = field(default_factory=set)
    bindings: dict[str, str] = field(default_factory=dict)  # did -> checksum address
    path: Path | None = None  # where revocations persist (JSON list of hex hashes)

    @classmethod
    def load(cls, operators: Iterable[str], path: Path) -> "OfflineTrust":
        path = Path(path)
        revoked: set[bytes] = set()
        if path.exists():
            try:
                revoked = {bytes.fromhex(h.removeprefix("0x")) for h in json.loads(path.read_text())}
            except (ValueError, AttributeError, TypeError) as exc:
                raise MalformedCredential(f"revocation list {path} is malformed: {exc}") from None
        return cls(set(operators), revoked, {}, path)

    def is_trusted_issuer(self, did: str) -> bool:
        return did in self.operators

    def is_revoked(self, credential_hash: bytes) -> bool:
        return credential_hash in self.revoked

    def account_of(self, did: str) -> str | None:
        return self.bindings.get(did)

    def has_binding_proof(self, did: str) -> bool:
        return did in self.bindings  # only add_binding (a verified proof) fills it

    def add_binding(self, proof: dict[str, Any]) -> None:
        from did.binding import verify_binding_proof

        st = verify_binding_proof(proof)
        self.bindings[st["did"]] = st["address"]

    def revoke(self, credential_hash: bytes) -> None:
        self.revoked.add(credential_hash)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(sorted("0x" + h.hex() for h in self.revoked), indent=1) + "\n")


@dataclass(frozen=True)
class VerifiedCredential:
    """What a verified role credential establishes."""

    subject_did: str
    role: str
    organization: str
    issuer: str
    valid_from: datetime
    valid_until: datetime
    credential_hash: bytes
    account: str | None


_TOP_KEYS = {"@context", "id", "type", "issuer", "issuanceDate", "expirationDate", "credentialSubject", "proof"}
_SUBJECT_KEYS = {"id", "role", "organization", "account", "jurisdiction"}
_PROOF_KEYS = {"type", "proofPurpose", "verificationMethod", "created", "jws"}
_UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check_issued_form(vc: dict[str, Any]) -> None:
    """Accept only the exact JSON shape :func:`issue_role_credential` produces.

    Revocation is by ``credential_hash`` (keccak of the JSON), but the signature covers the
    JSON-LD *graph*: reordering ``type``, repeating a context, adding ``null`` members or
    ``@``-keys leaves the graph — and the proof — intact while changing the hash. Without this
    check a revoked credential so rewritten would verify again. Raises :class:`TamperedCredential`.
    """
    subject, proof = vc["credentialSubject"], vc["proof"]
    problems = []
    if set(vc) != _TOP_KEYS:
        problems.append(f"members {sorted(set(vc) ^ _TOP_KEYS)}")
    if vc.get("@context") != [VC_CONTEXT, {"@vocab": TDS_VOCAB}]:
        problems.append("@context")
    if vc.get("type") != ["VerifiableCredential", CREDENTIAL_TYPE]:
        problems.append("type")
    if not isinstance(vc.get("id"), str) or not _UUID_URN.match(vc["id"]):
        problems.append("id")
    if not all(isinstance(vc.get(k), str) for k in ("issuanceDate", "expirationDate")):
        problems.append("dates")
    if not set(subject) <= _SUBJECT_KEYS or not all(isinstance(v, str) for v in subject.values()):
        problems.append("credentialSubject members")
    if not isinstance(proof, dict) or set(proof) != _PROOF_KEYS or not all(isinstance(v, str) for v in proof.values()):
        problems.append("proof members")
    else:
        header, _, sig = proof["jws"].rpartition(".")
        try:
            canonical = b64u(b64u_decode(sig)) == sig and header.endswith(".")
        except ValueError:
            canonical = False
        if not canonical:
            problems.append("jws encoding")
    if problems:
        raise TamperedCredential(f"credential was rewritten after issue; not as issued: {', '.join(problems)}")


def parse_role_credential(vc: Any) -> dict[str, Any]:
    """Structural checks; return the subject. Raises :class:`MalformedCredential`."""
    if not isinstance(vc, dict):
        raise MalformedCredential("credential must be a JSON object")
    types = vc.get("type")
    if not isinstance(types, list) or CREDENTIAL_TYPE not in types:
        raise MalformedCredential(f"not a {CREDENTIAL_TYPE} (type {types!r})")
    for key in ("issuer", "issuanceDate", "expirationDate", "credentialSubject", "proof"):
        if key not in vc:
            raise MalformedCredential(f"credential has no {key!r}")
    subject = vc["credentialSubject"]
    if not isinstance(subject, dict) or not all(isinstance(subject.get(k), str) for k in ("id", "role", "organization")):
        raise MalformedCredential("credentialSubject needs string 'id', 'role' and 'organization'")
    if not isinstance(vc["issuer"], str):
        raise MalformedCredential("credential issuer must be a DID string")
    return subject


def verify_role_credential(vc: Any, trust: TrustContext, *, now: datetime | None = None,
                           holder_did: str | None = None, holder_account: str | None = None,
                           role: str | None = None) -> VerifiedCredential:
    """Verify issuer trust, proof, validity period, revocation and (optionally) the holder."""
    subject = parse_role_credential(vc)
    issuer = vc["issuer"]
    try:
        proofs.require_did_profile(issuer, f"role credential issued by {issuer}")
    except UnknownDid:
        pass   # not a did:key: refused below (untrusted issuer, or a proof that does not verify)
    if not trust.is_trusted_issuer(issuer):
        raise UntrustedIssuer(f"credential issuer {issuer} is not a trusted operator")
    check_issued_form(vc)
    proof = vc["proof"]
    if proof.get("verificationMethod") != verification_method_id(issuer):
        raise TamperedCredential("credential proof is not by the issuer's DID key")
    try:
        result = proofs.verify_credential(vc, {"proofPurpose": "assertionMethod"})
    except DidkitError as exc:
        raise TamperedCredential(f"credential proof does not verify: {exc}") from None
    if result.get("errors") or "proof" not in result.get("checks", []):
        raise TamperedCredential(f"credential proof does not verify: {'; '.join(result.get('errors') or ['no proof checked'])}")
    start = _parse_time(vc["issuanceDate"], "issuanceDate")
    end = _parse_time(vc["expirationDate"], "expirationDate")
    now = now or datetime.now(timezone.utc)
    if now < start:
        raise CredentialNotYetValid(f"credential is valid only from {_iso(start)}")
    if now >= end:
        raise CredentialExpired(f"credential expired at {_iso(end)}")
    h = credential_hash(vc)
    if trust.is_revoked(h):
        raise CredentialRevoked(f"credential 0x{h.hex()} was revoked by the operator")
    subject_did = subject["id"]
    if holder_did is not None and holder_did != subject_did:
        raise SubjectMismatch(f"credential is about {subject_did}, not the presenter {holder_did}")
    claimed = subject.get("account")
    if holder_account is not None or claimed is not None:
        _check_binding(trust, subject_did, claimed, holder_account)
    if role is not None and normalize_role(role) != subject["role"]:
        raise RoleMismatch(f"credential grants {subject['role']}, not {normalize_role(role)}")
    return VerifiedCredential(subject_did, subject["role"], subject["organization"], issuer, start, end, h,
                              to_checksum_address(claimed) if claimed else None)


def _check_binding(trust: TrustContext, did: str, claimed: str | None, holder: str | None) -> None:
    """The subject DID must be bound to the presenting account, both ways.

    ``claimed`` (the operator-signed ``account``) attests the DID side — the operator checked the
    subject's binding proof before issuing — and the registry record attests the account side.
    Without a claimed account, the registry alone is only the account's word (anyone may
    ``bind`` any DID first), so the DID controller's binding proof must have been checked.
    """
    try:
        bound = trust.account_of(did)
    except UnknownDid:
        bound = None
    try:
        holder = to_checksum_address(holder) if holder is not None else None
        claimed = to_checksum_address(claimed) if claimed is not None else None
    except ValueError:
        raise DidNotBound(f"{holder or claimed!r} is not an Ethereum address") from None
    if claimed is not None:
        if holder is not None and holder != claimed:
            raise SubjectMismatch(f"credential names account {claimed}, not the presenter {holder}")
        if bound is not None and bound != claimed:
            raise DidNotBound(f"{did} is bound to {bound}, not to the credential's account {claimed}")
        if holder is not None and bound is None:
            raise DidNotBound(f"{did} is not bound to account {holder} (no binding recorded)")
        return
    if bound != holder:
        raise DidNotBound(f"{did} is not bound to account {holder} (bound: {bound})")
    if not trust.has_binding_proof(did):
        raise DidNotBound(f"{did} -> {holder} is recorded, but the DID controller's binding proof was not checked; "
                          "present it (trust.add_binding) or use a credential naming the account")
