"""web3 client of the IdentityRegistry, and :class:`ChainTrust` — verification from the chain alone.

Trust anchor on chain: an issuer DID is a trusted operator when the account bound to it holds
the registry's OPERATOR role (AccessControl), i.e. when the deployer/admin appointed it.

Bindings: the registry keeps one commitment per account (issue 14) and no DID → account index, so
any account may bind any DID. The record is read from the account's ``IdentityBound`` event
(:mod:`chain.identities`), and a DID names an account only when that account's *current* binding
names the DID and the binding proof it published verifies (signed by the DID's key for this
account and chain): :meth:`IdentityRegistryClient.verified_account_of_did`. A squatter's bind
therefore blocks no one and is never taken for the DID.
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
from chain.identities import BoundIdentity, current_bindings_of_did, current_identity, published_proof
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


OnChainIdentity = BoundIdentity  # an account's current record (its IdentityBound, checked against the commitment)


class IdentityRegistryClient:
    """Thin typed wrapper over the contract; transactions go through :class:`Sender`."""

    def __init__(self, w3: Web3, contract: Contract, from_block: int = 0):
        self.w3 = w3
        self.contract = contract
        self.from_block = from_block  # where event scans (bindings and their proofs) start
        self._senders: dict[str, Sender] = {}
        self._proofs: dict[tuple[str, str], bytes | None] = {}  # (tx, did) -> published proof if it verifies

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
        Never refused for a DID another account bound too: readers take only verified bindings."""
        proof = identity.binding_proof(self.chain_id)
        fn = self.contract.functions.bind(identity.did, identity.document_digest, identity.key_agreement_key,
                                          proof_bytes(proof))
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

        The account is the DID's verified binding (:meth:`account_of_did`); the grant goes ahead
        only if it is also vouched for off chain: the credential's operator-signed ``account``, or
        the subject's ``binding_proof`` matching the chain record.
        """
        subject = vc["credentialSubject"]
        account = self.account_of_did(subject["id"])
        if account is None:
            raise DidNotBound(f"{subject['id']} has no binding on chain with a binding proof signed by the DID's key; "
                              "the subject must run 'tds id bind' first")
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
        """``account``'s current record (its latest ``IdentityBound``, checked against the registry's
        commitment), or None if it never bound. Unverified: see :meth:`verified_account_of_did`."""
        return current_identity(self.contract, account, self.from_block)

    def is_bound(self, account: str) -> bool:
        return self.contract.functions.isBound(to_checksum_address(account)).call()

    def account_of_did(self, did: str) -> str | None:
        """The account ``did`` names: :meth:`verified_account_of_did` (there is no unverified answer,
        since any account may bind any DID)."""
        return self.verified_account_of_did(did)

    def role_credential(self, account: str, role: str) -> tuple[bytes, int]:
        h, until = self.contract.functions.roleCredential(to_checksum_address(account), role_id(role)).call()
        return bytes(h), int(until)

    def is_credential_revoked(self, credential: bytes | dict) -> bool:
        h = credential_hash(credential) if isinstance(credential, dict) else credential
        return self.contract.functions.isCredentialRevoked(h).call()

    def bindings_of_did(self, did: str) -> list[OnChainIdentity]:
        """Every account whose current binding names ``did``, latest first, verified or not."""
        return current_bindings_of_did(self.contract, did, self.from_block)

    def _verified_proof(self, rec: OnChainIdentity) -> bytes | None:
        """The proof ``rec``'s bind published if it verifies for its DID, account and this chain."""
        key = (rec.tx, rec.did)
        if key not in self._proofs:
            raw = published_proof(self.w3, rec.tx, rec.binding_proof_hash)
            try:
                if raw is None:
                    raise DidNotBound("the bind transaction's input holds no proof with the logged hash")
                check_published_binding(raw, did=rec.did, address=rec.account, chain_id=self.chain_id)
            except DidNotBound:
                raw = None
            self._proofs[key] = raw
        return self._proofs[key]

    def verified_binding_proof(self, rec: OnChainIdentity) -> dict[str, Any] | None:
        """The binding proof ``rec``'s bind published, parsed, if it verifies (the DID's key signed
        it for ``rec.account`` on this chain); None otherwise."""
        raw = self._verified_proof(rec)
        return load_binding_proof(raw) if raw is not None else None

    def _published(self, did: str) -> tuple[OnChainIdentity, bytes] | None:
        """The latest current binding of ``did`` whose published proof verifies, with the proof bytes."""
        for rec in self.bindings_of_did(did):
            raw = self._verified_proof(rec)
            if raw is not None:
                return rec, raw
        return None

    def published_binding_proof(self, did: str) -> dict[str, Any] | None:
        """The binding proof of ``did``'s verified binding (:meth:`verified_account_of_did`), parsed;
        None when no current binding of ``did`` has a proof that verifies."""
        found = self._published(did)
        return load_binding_proof(found[1]) if found else None

    def verified_account_of_did(self, did: str) -> str | None:
        """The account whose current binding names ``did`` *and* whose published binding proof
        verifies (the DID's key vouches for it); the latest such bind if several. None otherwise
        (unbound, or bound only by squatters)."""
        found = self._published(did)
        return found[0].account if found else None

    def is_operator(self, account: str) -> bool:
        """True if ``account`` holds the registry's OPERATOR (AccessControl) role."""
        fns = {f.get("name") for f in self.contract.abi if f.get("type") == "function"}
        if "hasRole" in fns:
            return self.contract.functions.hasRole(role_id("OPERATOR"), to_checksum_address(account)).call()
        return self.has_participant_role(account, "OPERATOR")

    # --- public-data checks ---------------------------------------------------------------------
    def resolve(self, did: str, *, verified: bool = True) -> OnChainIdentity:
        """The on-chain record of ``did``: its verified binding (:meth:`verified_account_of_did`), or
        with ``verified=False`` the latest current binding of any account. :class:`UnknownDid` when
        no account's current binding names it, :class:`DidNotBound` when none of them is verified."""
        if verified:
            found = self._published(did)
            if found is not None:
                return found[0]
        bindings = self.bindings_of_did(did)
        if not bindings:
            raise UnknownDid(f"{did} is not bound to any account on chain {self.chain_id}")
        if verified:
            raise DidNotBound(f"{did} is bound on chain only by {', '.join(b.account for b in bindings)}, with no "
                              "binding proof signed by the DID's key")
        return bindings[0]

    def key_agreement_key(self, did: str, *, verified: bool = True) -> bytes:
        """The key to seal to ``did`` (X25519, or the ``x`` of an SM2 DID's even-``y`` agreement
        key: :func:`did.sm2_identity.agreement_point`), from the chain alone. With ``verified`` (the default)
        only from a binding whose published proof verifies: a squatter's key would otherwise
        receive what is sealed to the DID (:class:`DidNotBound`)."""
        return self.resolve(did, verified=verified).key_agreement_key

    def verify_identity(self, did: str, *, document: dict[str, Any] | None = None,
                        binding_proof: dict[str, Any] | None = None) -> OnChainIdentity:
        """Check the chain record against the published document and binding proof. With a
        ``binding_proof``, the record is the current binding of the account that proof names."""
        rec = self._record_for(did, binding_proof)
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

    def _record_for(self, did: str, binding_proof: dict[str, Any] | None) -> OnChainIdentity:
        if binding_proof is None:
            return self.resolve(did)
        st = verify_binding_proof(binding_proof, did=did, chain_id=self.chain_id)
        rec = self.identity_of(st["address"])
        if rec is None or rec.did_hash != did_hash(did):
            raise DidNotBound(f"the binding proof binds {did} to {st['address']}, whose current binding on chain "
                              f"{self.chain_id} is not that DID")
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
