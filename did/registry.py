"""web3 client of the IdentityRegistry, and :class:`ChainTrust` — verification from the chain alone.

Trust anchor on chain: an issuer DID is a trusted operator when the account bound to it holds
the registry's OPERATOR role (AccessControl), i.e. when the deployer/admin appointed it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from did.binding import binding_proof_hash, verify_binding_proof
from did.credentials import credential_hash, normalize_role, role_id
from did.document import document_digest, verify_document
from did.errors import DidNotBound, InvalidDocument, UnknownDid
from chain.deploy import bind as bind_contract
from chain.tx import Sender

if TYPE_CHECKING:
    from web3.types import TxReceipt

    from did.identity import Identity

ZERO = "0x" + "00" * 20
ZERO32 = b"\0" * 32


def did_hash(did: str) -> bytes:
    return keccak(text=did)


def reason_hash(reason: str | None) -> bytes:
    return keccak(text=reason) if reason else ZERO32


@dataclass(frozen=True)
class OnChainIdentity:
    account: str
    did_hash: bytes
    doc_digest: bytes
    key_agreement_key: bytes
    binding_proof_hash: bytes
    bound_at: int


class IdentityRegistryClient:
    """Thin typed wrapper over the contract; transactions go through :class:`Sender`."""

    def __init__(self, w3: Web3, contract: Contract):
        self.w3 = w3
        self.contract = contract
        self._senders: dict[str, Sender] = {}

    @classmethod
    def from_deployment(cls, w3: Web3, deployment: dict[str, Any]) -> "IdentityRegistryClient":
        return cls(w3, bind_contract(w3, deployment, "IdentityRegistry"))

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def sender(self, account: LocalAccount) -> Sender:
        if account.address not in self._senders:
            self._senders[account.address] = Sender(self.w3, account)
        return self._senders[account.address]

    # --- transactions ---------------------------------------------------------------------------
    def bind(self, identity: "Identity") -> "TxReceipt":
        """Bind ``identity``'s account to its DID (sent by that account)."""
        proof = identity.binding_proof(self.chain_id)
        fn = self.contract.functions.bind(identity.did, identity.document_digest, identity.x25519_public,
                                          binding_proof_hash(proof))
        return self.sender(identity.account).send(fn)

    def grant_participant_role(self, operator: LocalAccount, account: str, role: str, credential: bytes | dict,
                               valid_until: int | datetime = 0) -> "TxReceipt":
        h = credential_hash(credential) if isinstance(credential, dict) else credential
        if isinstance(valid_until, datetime):
            valid_until = int(valid_until.timestamp())
        fn = self.contract.functions.grantParticipantRole(to_checksum_address(account), role_id(role), h,
                                                          int(valid_until))
        return self.sender(operator).send(fn)

    def grant_from_credential(self, operator: LocalAccount, vc: dict[str, Any],
                              binding_proof: dict[str, Any] | None = None) -> "TxReceipt":
        """Grant the role a credential states to the account bound to its subject DID.

        ``bind`` is first come, first served and the EVM cannot check the DID's Ed25519
        signature, so the registry's ``accountOfDid`` alone could be a squatter. The grant goes
        ahead only if the account is also vouched for by the DID side: the credential's
        operator-signed ``account``, or the subject's ``binding_proof`` matching the chain record.
        """
        subject = vc["credentialSubject"]
        account = self.account_of_did(subject["id"])
        if account is None:
            raise DidNotBound(f"{subject['id']} is not bound on chain; the subject must run 'tds id bind' first")
        claimed = subject.get("account")
        if claimed is not None and to_checksum_address(claimed) != account:
            raise DidNotBound(f"{subject['id']} is bound on chain to {account}, not to the credential's account {claimed}")
        if binding_proof is not None:
            self.verify_identity(subject["id"], binding_proof=binding_proof)
        elif claimed is None:
            raise DidNotBound(f"the credential names no account for {subject['id']}: pass the subject's binding proof")
        until = datetime.fromisoformat(vc["expirationDate"].replace("Z", "+00:00")).astimezone(timezone.utc)
        return self.grant_participant_role(operator, account, subject["role"], vc, until)

    def revoke_participant_role(self, operator: LocalAccount, account: str, role: str,
                                reason: str | None = None) -> "TxReceipt":
        fn = self.contract.functions.revokeParticipantRole(to_checksum_address(account), role_id(role),
                                                           reason_hash(reason))
        return self.sender(operator).send(fn)

    def revoke_credential(self, operator: LocalAccount, credential: bytes | dict, reason: str | None = None) -> "TxReceipt":
        h = credential_hash(credential) if isinstance(credential, dict) else credential
        return self.sender(operator).send(self.contract.functions.revokeCredential(h, reason_hash(reason)))

    # --- views ----------------------------------------------------------------------------------
    def has_participant_role(self, account: str, role: str) -> bool:
        return self.contract.functions.hasParticipantRole(to_checksum_address(account), role_id(role)).call()

    def identity_of(self, account: str) -> OnChainIdentity | None:
        rec = self.contract.functions.identityOf(to_checksum_address(account)).call()
        did_h, digest, kak, bph, bound_at = rec
        if bytes(did_h) == ZERO32:
            return None
        return OnChainIdentity(to_checksum_address(account), bytes(did_h), bytes(digest), bytes(kak), bytes(bph),
                               int(bound_at))

    def account_of_did(self, did: str) -> str | None:
        acct = self.contract.functions.accountOfDid(did_hash(did)).call()
        return None if int(acct, 16) == 0 else to_checksum_address(acct)

    def role_credential(self, account: str, role: str) -> tuple[bytes, int]:
        h, until = self.contract.functions.roleCredential(to_checksum_address(account), role_id(role)).call()
        return bytes(h), int(until)

    def is_credential_revoked(self, credential: bytes | dict) -> bool:
        h = credential_hash(credential) if isinstance(credential, dict) else credential
        return self.contract.functions.isCredentialRevoked(h).call()

    def is_operator(self, account: str) -> bool:
        """True if ``account`` holds the registry's OPERATOR (AccessControl) role."""
        fns = {f.get("name") for f in self.contract.abi if f.get("type") == "function"}
        if "hasRole" in fns:
            return self.contract.functions.hasRole(role_id("OPERATOR"), to_checksum_address(account)).call()
        return self.has_participant_role(account, "OPERATOR")

    # --- public-data checks ---------------------------------------------------------------------
    def resolve(self, did: str) -> OnChainIdentity:
        """The on-chain record of ``did`` (raises :class:`UnknownDid` when unbound)."""
        account = self.account_of_did(did)
        rec = self.identity_of(account) if account else None
        if rec is None or rec.did_hash != did_hash(did):
            raise UnknownDid(f"{did} is not bound to any account on chain {self.chain_id}")
        return rec

    def key_agreement_key(self, did: str) -> bytes:
        """The X25519 key to seal to ``did``, from the chain alone."""
        return self.resolve(did).key_agreement_key

    def verify_identity(self, did: str, *, document: dict[str, Any] | None = None,
                        binding_proof: dict[str, Any] | None = None) -> OnChainIdentity:
        """Check the chain record against the published document and binding proof."""
        rec = self.resolve(did)
        if document is not None:
            x = verify_document(document, did)
            from did.document import document_bytes
            if document_digest(document_bytes(document)) != rec.doc_digest or x != rec.key_agreement_key:
                raise InvalidDocument(f"DID document of {did} differs from the one recorded on chain")
        if binding_proof is not None:
            verify_binding_proof(binding_proof, did=did, address=rec.account, chain_id=self.chain_id)
            if binding_proof_hash(binding_proof) != rec.binding_proof_hash:
                raise DidNotBound(f"binding proof of {did} is not the one recorded on chain")
        return rec


class ChainTrust:
    """A :class:`did.credentials.TrustContext` answered by the IdentityRegistry alone.

    ``anchors`` (optional) narrows trust to pinned operator DIDs, which must also hold the
    OPERATOR role on chain.
    """

    def __init__(self, client: IdentityRegistryClient, anchors: Iterable[str] | None = None,
                 binding_proofs: Iterable[dict[str, Any]] = ()):
        self.client = client
        self.anchors = set(anchors) if anchors is not None else None
        self._proven: dict[str, str] = {}
        for proof in binding_proofs:
            self.add_binding(proof)

    def add_binding(self, proof: dict[str, Any]) -> None:
        """Check a subject's binding proof (signatures + hash recorded on chain) and remember it."""
        did = proof.get("statement", {}).get("did") if isinstance(proof, dict) else None
        if not isinstance(did, str):
            raise DidNotBound("binding proof is malformed (no statement.did)")
        self._proven[did] = self.client.verify_identity(did, binding_proof=proof).account

    def has_binding_proof(self, did: str) -> bool:
        return did in self._proven and self._proven[did] == self.client.account_of_did(did)

    def is_trusted_issuer(self, did: str) -> bool:
        if self.anchors is not None and did not in self.anchors:
            return False
        account = self.client.account_of_did(did)
        return account is not None and self.client.is_operator(account)

    def is_revoked(self, credential_hash: bytes) -> bool:
        return self.client.is_credential_revoked(credential_hash)

    def account_of(self, did: str) -> str | None:
        return self.client.account_of_did(did)


__all__ = ["ChainTrust", "IdentityRegistryClient", "OnChainIdentity", "did_hash", "normalize_role", "reason_hash"]
