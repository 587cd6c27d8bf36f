"""A thin facade over the deployed system for scripts, the demo, tests and benchmarks: every
participant transacts from its own key; each method is one lifecycle step on chain."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from chain.deploy import bind
from chain.tx import Sender
from chain.identities import BoundIdentity, commitment_of, current_identity
from chain.eip712 import ZERO_ADDRESS, GrantTerms, grant_typed_data, offer_nonce, sign_typed
from chain.params import params_cid, params_hash, seal_params
from chain.system import SYSTEM_CONTRACTS, role_id

CLASSIFICATION = {"public": 0, "internal": 1, "sensitive": 2, "confidential": 3}


@dataclass
class Member:
    """A participant as the chain sees it: a name, its wallet, its DID."""

    name: str
    account: LocalAccount
    did: str

    @property
    def address(self) -> str:
        return self.account.address


class Space:
    """The deployed contracts of one chain, with a Sender per participant key."""

    def __init__(self, w3: Web3, deployment: dict[str, Any]):
        self.w3 = w3
        self.deployment = deployment
        self.c: dict[str, Contract] = {n: bind(w3, deployment, n) for n in SYSTEM_CONTRACTS}
        self._senders: dict[str, Sender] = {}
        self._identities: dict[tuple[str, bytes], BoundIdentity] = {}  # (account, commitment) -> its record

    def sender(self, account: LocalAccount) -> Sender:
        if account.address not in self._senders:
            self._senders[account.address] = Sender(self.w3, account)
        return self._senders[account.address]

    def send(self, account: LocalAccount, fn: Any, value: int = 0) -> Any:
        return self.sender(account).send(fn, value=value)

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    # identity ---------------------------------------------------------------------------
    def bind_identity(self, member: Member, doc_digest: bytes, key_agreement: bytes, binding_proof: bytes) -> Any:
        """Bind ``member``'s DID to its account. ``binding_proof`` is the canonical binding proof
        (``did.binding.proof_bytes``); placeholder bytes bind too but the trail then shows the
        account as ``unverified:<did>``."""
        return self.send(member.account, self.c["IdentityRegistry"].functions.bind(
            member.did, doc_digest, key_agreement, binding_proof))

    def grant_role(self, operator: LocalAccount, member: Member, role: str, credential_hash: bytes,
                   valid_until: int = 0) -> Any:
        return self.send(operator, self.c["IdentityRegistry"].functions.grantParticipantRole(
            member.address, role_id(role), credential_hash, valid_until))

    def identity(self, address: str) -> BoundIdentity | None:
        """``address``'s current identity (its latest ``IdentityBound``, checked against the commitment):
        one ``commitmentOf`` call, the event scan only for a commitment not seen before."""
        registry = self.c["IdentityRegistry"]
        commitment, _ = commitment_of(registry, address)
        if commitment == b"\0" * 27:
            return None
        hit = self._identities.get((address, commitment))
        if hit is None:
            hit = current_identity(registry, address, int(self.deployment.get("block") or 0))
            if hit is not None:
                self._identities[(address, hit.commitment)] = hit
        return hit

    def key_agreement_key(self, address: str) -> bytes:
        """``address``'s current key-agreement key (32 zero bytes when it never bound)."""
        ident = self.identity(address)
        return ident.key_agreement_key if ident is not None else b"\0" * 32

    # templates and assets ---------------------------------------------------------------
    def publish_template(self, operator: LocalAccount, name: str, terms: bytes, rights: int, allowed_ops: int,
                         split_bps: list[int]) -> int:
        r = self.send(operator, self.c["CertificateTemplates"].functions.publish(
            name, keccak(terms), keccak(terms), rights, allowed_ops, split_bps))
        return self.c["CertificateTemplates"].events.TemplatePublished().process_receipt(r, errors=DISCARD)[0]["args"]["templateId"]

    def register_asset(self, provider: Member, content_cid: bytes, metadata_cid: bytes, manifest_hash: bytes,
                       classification: str, quality_hash: bytes, template_id: int) -> int:
        r = self.send(provider.account, self.c["AssetRegistry"].functions.mint((
            content_cid, metadata_cid, manifest_hash, CLASSIFICATION[classification], quality_hash, template_id)))
        return self.c["AssetRegistry"].events.AssetRegistered().process_receipt(r, errors=DISCARD)[0]["args"]["assetId"]

    # authorizations ---------------------------------------------------------------------
    def grant_by_signature(self, provider: Member, consumer: Member, asset_id: int, operations: int, *,
                           max_uses: int, price: int, purpose: str, days: int = 30, nonce: int | None = None,
                           algorithm_provider: str = ZERO_ADDRESS, payment_token: str = ZERO_ADDRESS,
                           purpose_hash: bytes | None = None) -> int:
        """The provider signs the grant (EIP-712, any wallet could); the consumer submits it.
        ``purpose_hash`` is the hash of a terms document (field scope, privacy option); without it
        the grant's terms are ``keccak256(purpose)``."""
        auth = self.c["Authorizations"]
        expiry = self.now() + days * 86400
        terms = GrantTerms(asset_id, consumer.address, purpose_hash or keccak(text=purpose), operations, 0, 0, expiry,
                           max_uses, payment_token, price, algorithm_provider)
        if nonce is None:  # keyed nonce: the certificate's transfer count, a fresh 160-bit salt, sequence 0
            salt = int.from_bytes(keccak(text=f"{consumer.address}:{purpose}:{expiry}")[:20], "big")
            nonce = offer_nonce(self.c["AssetRegistry"].functions.transfersOf(asset_id).call(), salt)
        data = grant_typed_data(terms, nonce, expiry, self.w3.eth.chain_id, auth.address)
        sig = sign_typed(data, provider.account.key)
        r = self.send(consumer.account, auth.functions.grantBySignature(terms.as_tuple(), nonce, expiry, sig))
        return auth.events.GrantIssued().process_receipt(r, errors=DISCARD)[0]["args"]["grantId"]

    # jobs -------------------------------------------------------------------------------
    def request_job(self, consumer: Member, grant_id: int, operation: int, query: dict[str, Any], store: Any,
                    *, value: int, ttl: int = 3600) -> int:
        """Seal the query to the asset holder's key-agreement key, store it by its hash (CIDv1
        raw) and request the job, paying ``value``."""
        data = seal_params(query, [self.key_agreement_key(self.holder_of_grant(grant_id))])
        digest = params_hash(data)
        cid = store.add_bytes(data, cid_version=1)
        if cid != params_cid(digest):
            raise RuntimeError(f"the store answered CID {cid} for the job parameters, expected {params_cid(digest)}")
        r = self.send(consumer.account, self.c["Jobs"].functions.requestJob(
            grant_id, operation, digest, self.now() + ttl), value=value)
        return self.c["Jobs"].events.JobRequested().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]

    def holder_of_grant(self, grant_id: int) -> str:
        """The current holder of the asset a grant covers (whose key service reads its jobs)."""
        asset_id = self.c["Authorizations"].functions.grantOf(grant_id).call()[8]
        return self.c["AssetRegistry"].functions.ownerOf(asset_id).call()

    def job(self, job_id: int) -> tuple[list, list]:
        return self.c["Jobs"].functions.jobOf(job_id).call()

    def completion(self, job_id: int) -> dict[str, Any] | None:
        """The JobCompleted event of ``job_id`` (result CID bytes and hash), if any."""
        logs = self.c["Jobs"].events.JobCompleted().get_logs(
            from_block=self.deployment["block"], argument_filters={"jobId": job_id})
        return dict(logs[-1]["args"]) if logs else None
