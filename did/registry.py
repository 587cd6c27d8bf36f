"""web3 client of the IdentityRegistry, and :class:`ChainTrust` — verification from the chain alone.

Trust anchor on chain: an issuer DID is a trusted operator when the account bound to it holds
the registry's OPERATOR role (AccessControl), i.e. when the deployer/admin appointed it.

Squatting: ``bind`` publishes the binding proof, but the EVM cannot check its Ed25519 signature,
so ``accountOfDid`` alone is only the account's word. :meth:`IdentityRegistryClient.verified_account_of_did`
checks the published proof; a DID's owner whose DID was bound first by another account asks an
operator to check its proof and attest it on chain (:meth:`IdentityRegistryClient.attest_binding`),
then takes the DID over with its own ``bind``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from did.binding import (binding_proof_hash, check_published_binding, load_binding_proof, proof_bytes,
                         verify_binding_proof)
from did.credentials import credential_hash, normalize_role, role_id
from chain.crypto_profile import SM
from did.document import document_digest, verify_document
from did.proofs import did_profile
from did.sm2_identity import verify_sm2_document
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

    def __init__(self, w3: Web3, contract: Contract, from_block: int = 0):
        self.w3 = w3
        self.contract = contract
        self.from_block = from_block  # where event scans (published binding proofs) start
        self._senders: dict[str, Sender] = {}

    @classmethod
    def from_deployment(cls, w3: Web3, deployment: dict[str, Any]) -> "IdentityRegistryClient":
        return cls(w3, bind_contract(w3, deployment, "IdentityRegistry"), int(deployment.get("block") or 0))

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def sender(self, account: LocalAccount) -> Sender:
        if account.address not in self._senders:
            self._senders[account.address] = Sender(self.w3, account)
        return self._senders[account.address]

    # --- transactions ---------------------------------------------------------------------------
    def bind(self, identity: "Identity") -> "TxReceipt":
        """Bind ``identity``'s account to its DID (sent by that account), publishing its binding proof.

        If another account holds the DID, this reverts ``DidAlreadyBound`` unless an operator
        attested this proof (:meth:`attest_binding`): then it takes the DID over."""
        proof = identity.binding_proof(self.chain_id)
        fn = self.contract.functions.bind(identity.did, identity.document_digest, identity.key_agreement_key,
                                          proof_bytes(proof))
        return self.sender(identity.account).send(fn)

    def attest_binding(self, operator: LocalAccount, binding_proof: dict[str, Any]) -> "TxReceipt":
        """Operator: check a DID owner's binding proof (both signatures, this chain) and attest it on
        chain, so its account can take the DID over from a squatter with its own ``bind``.
        Raises :class:`DidNotBound` for a proof that does not verify (nothing is sent)."""
        st = verify_binding_proof(binding_proof, chain_id=self.chain_id)
        fn = self.contract.functions.attestBinding(did_hash(st["did"]), to_checksum_address(st["address"]),
                                                   binding_proof_hash(binding_proof))
        return self.sender(operator).send(fn)

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

    def binding_attestation(self, did: str) -> tuple[str, bytes] | None:
        """The account (and proof hash) an operator attested for ``did``, or None."""
        acct, h = self.contract.functions.bindingAttestation(did_hash(did)).call()
        return None if int(acct, 16) == 0 else (to_checksum_address(acct), bytes(h))

    def _published(self, did: str) -> tuple[OnChainIdentity, bytes] | None:
        """The current record of ``did`` and the proof bytes its ``bind`` published (the event
        whose ``bindingProofHash`` the record holds); None when unbound."""
        try:
            rec = self.resolve(did)
        except UnknownDid:
            return None
        logs = self.contract.events.IdentityBound().get_logs(
            from_block=self.from_block, argument_filters={"account": rec.account, "didHash": rec.did_hash})
        raw = next((bytes(e["args"]["bindingProof"]) for e in reversed(logs)
                    if bytes(e["args"]["bindingProofHash"]) == rec.binding_proof_hash), b"")
        return rec, raw

    def published_binding_proof(self, did: str) -> dict[str, Any] | None:
        """The binding proof the current holder of ``did`` published with its ``bind``, parsed;
        None if unbound or not published in canonical form. Not verified: see
        :meth:`verified_account_of_did`."""
        found = self._published(did)
        try:
            return load_binding_proof(found[1]) if found else None
        except DidNotBound:
            return None

    def verified_account_of_did(self, did: str) -> str | None:
        """The account bound to ``did`` *and* vouched for by the DID's key: the binding proof it
        published verifies. None when unbound, or when the holder is a squatter (no valid proof)."""
        found = self._published(did)
        if found is None:
            return None
        rec, raw = found
        try:
            check_published_binding(raw, did=did, address=rec.account, chain_id=self.chain_id)
        except DidNotBound:
            return None
        return rec.account

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

    def key_agreement_key(self, did: str, *, verified: bool = True) -> bytes:
        """The key to seal to ``did`` (X25519, or the ``x`` of an SM2 DID's even-``y`` agreement
        key: :func:`did.sm2_identity.agreement_point`), from the chain alone. With ``verified`` (the default)
        only if the holder's published binding proof verifies: a squatter's key would otherwise
        receive what is sealed to the DID (:class:`DidNotBound`)."""
        if verified and self.verified_account_of_did(did) is None:
            self.resolve(did)  # UnknownDid when not bound at all
            raise DidNotBound(f"{did} is bound on chain to {self.account_of_did(did)}, whose published binding "
                              "proof is not signed by the DID's key: refusing to seal to its key")
        return self.resolve(did).key_agreement_key

    def verify_identity(self, did: str, *, document: dict[str, Any] | None = None,
                        binding_proof: dict[str, Any] | None = None) -> OnChainIdentity:
        """Check the chain record against the published document and binding proof."""
        rec = self.resolve(did)
        if document is not None:
            x = verify_sm2_document(document, did) if did_profile(did) == SM else verify_document(document, did)
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
