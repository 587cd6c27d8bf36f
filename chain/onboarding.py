"""Client of the Onboarding contract: participant applications under operator review
(application → review → credential; contracts/identity/Onboarding.sol).

Hashes of the application document and of a reviewer's reasons are sha-256 digests, so each
document (at most one store chunk, :data:`MAX_DOCUMENT`) is found in the content store by its
CIDv1 (raw codec, Kubo's ``--cid-version 1``): :func:`document_cid`. Issuing the
role credential itself is the operator's off-chain step (``did``), done by ``tds id review``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from chain.cid import RAW, Cid
from chain.deploy import bind
from chain.errors import TdsError
from chain.identities import current_identity
from chain.tx import Sender

if TYPE_CHECKING:
    from web3.types import TxReceipt

PARTICIPANT_ROLES = ("PROVIDER", "CONSUMER", "OPERATOR", "REGULATOR", "DEVELOPER", "ALGORITHM_PROVIDER",
                     "COMPUTE_PROVIDER")
ROLE_NAMES = {keccak(text=r): r for r in PARTICIPANT_ROLES}
MAX_DOCUMENT = 256 * 1024  # one chunk: its CIDv1 is the raw block's, whose digest is the document's sha-256
REVIEW_STATES = ("none", "pending", "approved", "rejected")  # Reviewable.ReviewStatus


class UnknownRoleApplication(TdsError):
    """No application has this id."""

    def __init__(self, application_id: int):
        self.application_id = application_id
        super().__init__(f"unknown application {application_id}: none was submitted with that id")


def document_hash(data: bytes) -> bytes:
    """The on-chain hash of a document: its sha-256 (the digest of its CIDv1 raw)."""
    return hashlib.sha256(data).digest()


def document_cid(digest: bytes) -> str:
    """The content-store CID (v1, raw) of the document whose sha-256 is ``digest``."""
    return Cid(1, RAW, bytes(digest)).encode()


def role_hash(role: str) -> bytes:
    """keccak256 of the upper-case participant role name."""
    name = role.upper().replace("-", "_")
    if name not in PARTICIPANT_ROLES:
        raise TdsError(f"unknown participant role {role!r}: one of {', '.join(PARTICIPANT_ROLES)}")
    return keccak(text=name)


@dataclass(frozen=True)
class RoleApplication:
    """One application as the chain records it."""

    id: int
    applicant: str
    role: str
    did_hash: bytes
    document_hash: bytes
    submitted_at: int
    review: str          # pending | approved | rejected
    admitted: bool

    @property
    def state(self) -> str:
        """pending, approved (awaiting its credential), admitted, or rejected."""
        return "admitted" if self.admitted else self.review

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "applicant": self.applicant, "role": self.role, "state": self.state,
                "didHash": "0x" + self.did_hash.hex(), "documentHash": "0x" + self.document_hash.hex(),
                "documentCid": document_cid(self.document_hash), "submittedAt": self.submitted_at}


class OnboardingClient:
    """Typed wrapper over the deployed Onboarding contract; transactions go through :class:`Sender`."""

    def __init__(self, w3: Web3, contract: Contract, from_block: int = 0, registry: Contract | None = None):
        self.w3, self.contract, self.from_block = w3, contract, from_block
        self.registry = registry  # the IdentityRegistry: applicants' current identities are read from it
        self._senders: dict[str, Sender] = {}

    @classmethod
    def from_deployment(cls, w3: Web3, deployment: dict[str, Any]) -> OnboardingClient:
        """The client of ``deployment``'s Onboarding (:class:`chain.errors.DeploymentError` if it has none)."""
        return cls(w3, bind(w3, deployment, "Onboarding"), int(deployment.get("block") or 0),
                   bind(w3, deployment, "IdentityRegistry"))

    def identity_fields(self, account: str) -> tuple[bytes, bytes, bytes, bytes]:
        """``account``'s current identity as the contract takes it (its latest ``IdentityBound``,
        checked against the registry's commitment); zeros when it never bound (``ApplicantNotBound``)."""
        if self.registry is None:
            raise TdsError("this Onboarding client has no IdentityRegistry (use OnboardingClient.from_deployment)")
        ident = current_identity(self.registry, account, self.from_block)
        return ident.fields if ident is not None else (b"\0" * 32,) * 4

    def _send(self, account: LocalAccount, fn: Any) -> TxReceipt:
        if account.address not in self._senders:
            self._senders[account.address] = Sender(self.w3, account)
        return self._senders[account.address].send(fn)

    # --- transactions ---------------------------------------------------------------------------
    def apply(self, applicant: LocalAccount, role: str, doc_hash: bytes) -> tuple[int, TxReceipt]:
        """Apply for ``role`` with the sha-256 of the application document; returns the new id."""
        r = self._send(applicant, self.contract.functions.applyForRole(role_hash(role), bytes(doc_hash),
                                                                       self.identity_fields(applicant.address)))
        ev = self.contract.events.RoleApplicationSubmitted().process_receipt(r, errors=DISCARD)
        return int(ev[0]["args"]["roleApplicationId"]), r

    def decide(self, reviewer: LocalAccount, application_id: int, approve: bool, reasons_hash: bytes) -> TxReceipt:
        """Reviewer: approve or reject a pending application with the sha-256 of the written reasons."""
        fns = self.contract.functions
        call = fns.approveRegistration if approve else fns.rejectRegistration
        return self._send(reviewer, call(application_id, bytes(reasons_hash)))

    def admit(self, operator: LocalAccount, application_id: int, credential_hash: bytes,
              valid_until: int = 0) -> TxReceipt:
        """Operator: grant the approved applicant its role, backed by ``credential_hash`` (the
        applicant's current identity is read from the chain and checked by the contract)."""
        applicant = self.application(application_id).applicant
        return self._send(operator, self.contract.functions.admit(application_id, bytes(credential_hash),
                                                                  int(valid_until), self.identity_fields(applicant)))

    # --- views ----------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.contract.functions.roleApplicationCount().call())

    def application(self, application_id: int) -> RoleApplication:
        """Application ``application_id`` (:class:`UnknownRoleApplication` if there is none)."""
        if not 1 <= application_id <= self.count():
            raise UnknownRoleApplication(application_id)
        a = self.contract.functions.roleApplicationOf(application_id).call()
        review = REVIEW_STATES[self.contract.functions.reviewOf(application_id).call()]
        return RoleApplication(application_id, to_checksum_address(a[0]), ROLE_NAMES.get(bytes(a[1]), "0x" + bytes(a[1]).hex()),
                               bytes(a[2]), bytes(a[3]), int(a[4]), review, bool(a[5]))

    def applications(self, *, pending: bool = False, applicant: str | None = None) -> list[RoleApplication]:
        """Every application (oldest first); ``pending`` keeps those waiting for review."""
        out = [self.application(i) for i in range(1, self.count() + 1)]
        if applicant is not None:
            out = [a for a in out if a.applicant == to_checksum_address(applicant)]
        return [a for a in out if a.review == "pending"] if pending else out

    def decision(self, application_id: int) -> dict[str, Any] | None:
        """The reviewer's decision (``approved``, ``reviewer``, ``reasonsHash``, ``reasonsCid``, tx), or None."""
        logs = self.contract.events.ReviewDecided().get_logs(from_block=self.from_block,
                                                             argument_filters={"subjectId": application_id})
        if not logs:
            return None
        a = logs[-1]["args"]
        h = bytes(a["reasonHash"])
        return {"approved": bool(a["approved"]), "reviewer": a["reviewer"], "reasonsHash": "0x" + h.hex(),
                "reasonsCid": document_cid(h), "tx": Web3.to_hex(logs[-1]["transactionHash"])}

    def is_reviewer(self, account: str) -> bool:
        return bool(self.contract.functions.hasRole(keccak(text="REVIEWER"), to_checksum_address(account)).call())

    def is_operator(self, account: str) -> bool:
        return bool(self.contract.functions.hasRole(keccak(text="OPERATOR"), to_checksum_address(account)).call())
