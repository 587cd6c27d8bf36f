"""The identities bound in the IdentityRegistry, read from its ``IdentityBound`` events and checked
against the one slot the registry keeps per account: a commitment to the record (issue 14).

The registry enforces no DID uniqueness: any account may bind any DID. These functions only say
what the chain holds (an account's current record, the accounts currently bound to a DID); whether
the DID's key vouches for a binding is decided above, by checking the published binding proof
(:func:`published_proof`, then ``did.binding.check_published_binding``). The proof is not logged:
it is the ``bindingProof`` argument of the ``bind`` call in the binding transaction's input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode, encode as abi_encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract

BIND_SELECTOR = keccak(text="bind(string,bytes32,bytes32,bytes)")[:4]
BIND_TYPES = ("string", "bytes32", "bytes32", "bytes")
ZERO27 = b"\0" * 27


def identity_commitment(did_hash: bytes, doc_digest: bytes, key_agreement_key: bytes, proof_hash: bytes) -> bytes:
    """The 27-byte commitment ``IdentityRegistry.bind`` stores (``identityCommitment``)."""
    return keccak(abi_encode(["bytes32"] * 4, [did_hash, doc_digest, key_agreement_key, proof_hash]))[:27]


@dataclass(frozen=True)
class BoundIdentity:
    """An account's identity as its ``IdentityBound`` event logged it (checked against the commitment)."""

    account: str
    did: str
    did_hash: bytes
    doc_digest: bytes
    key_agreement_key: bytes
    binding_proof_hash: bytes
    bound_at: int  # the commitment slot's timestamp
    tx: str  # 0x hash of the bind transaction (its input holds the binding proof)
    block: int

    @property
    def fields(self) -> tuple[bytes, bytes, bytes, bytes]:
        """The ``IIdentityRegistry.Identity`` struct that Onboarding and NodeRegistry take."""
        return self.did_hash, self.doc_digest, self.key_agreement_key, self.binding_proof_hash

    @property
    def commitment(self) -> bytes:
        return identity_commitment(*self.fields)


def commitment_of(registry: Contract, account: str) -> tuple[bytes, int]:
    """(commitment, boundAt) the registry holds for ``account``: (27 zero bytes, 0) if never bound."""
    commitment, bound_at = registry.functions.commitmentOf(to_checksum_address(account)).call()
    return bytes(commitment), int(bound_at)


def _from_log(log: Any, bound_at: int) -> BoundIdentity:
    a = log["args"]
    tx = log["transactionHash"]
    return BoundIdentity(to_checksum_address(a["account"]), a["did"], bytes(a["didHash"]), bytes(a["didDocDigest"]),
                         bytes(a["keyAgreementKey"]), bytes(a["bindingProofHash"]), bound_at,
                         tx.to_0x_hex() if hasattr(tx, "to_0x_hex") else Web3.to_hex(tx), int(log["blockNumber"]))


def _matching(log: Any, commitment: bytes) -> bool:
    a = log["args"]
    return identity_commitment(bytes(a["didHash"]), bytes(a["didDocDigest"]), bytes(a["keyAgreementKey"]),
                               bytes(a["bindingProofHash"])) == commitment


def current_identity(registry: Contract, account: str, from_block: int = 0) -> BoundIdentity | None:
    """``account``'s current identity: its latest ``IdentityBound`` whose fields match the registry's
    commitment; None if it never bound (or no logged binding from ``from_block`` on matches)."""
    account = to_checksum_address(account)
    commitment, bound_at = commitment_of(registry, account)
    if commitment == ZERO27:
        return None
    logs = registry.events.IdentityBound().get_logs(from_block=from_block, argument_filters={"account": account})
    return next((_from_log(e, bound_at) for e in reversed(logs) if _matching(e, commitment)), None)


def current_bindings_of_did(registry: Contract, did: str, from_block: int = 0) -> list[BoundIdentity]:
    """Every account whose *current* identity names ``did`` (latest bind first). Unverified: any
    account may bind any DID, so the caller checks each one's published proof."""
    logs = registry.events.IdentityBound().get_logs(from_block=from_block,
                                                    argument_filters={"didHash": keccak(text=did)})
    out: list[BoundIdentity] = []
    seen: set[str] = set()
    for e in reversed(logs):
        account = to_checksum_address(e["args"]["account"])
        if account in seen:
            continue
        seen.add(account)
        commitment, bound_at = commitment_of(registry, account)
        if _matching(e, commitment) and e["args"]["did"] == did:
            out.append(_from_log(e, bound_at))
    return out


def proof_from_input(data: bytes, proof_hash: bytes) -> bytes | None:
    """The binding proof in a ``bind`` call's input ``data`` if its keccak256 is ``proof_hash``; None
    for any other input (a call through another contract, or another transaction)."""
    data = bytes(data)
    if data[:4] != BIND_SELECTOR:
        return None
    try:
        proof = bytes(abi_decode(list(BIND_TYPES), data[4:])[3])
    except Exception:  # noqa: BLE001 - malformed input is simply not a published proof
        return None
    return proof if keccak(proof) == bytes(proof_hash) else None


def published_proof(w3: Web3, tx_hash: str, proof_hash: bytes) -> bytes | None:
    """The binding proof a ``bind`` published: the argument of the call in transaction ``tx_hash``
    whose keccak256 is ``proof_hash`` (the event's ``bindingProofHash``); None if the input is not such
    a call (then the binding counts as unproven)."""
    tx = w3.eth.get_transaction(tx_hash)
    return proof_from_input(bytes(tx["input"]), proof_hash)


__all__ = ["BIND_SELECTOR", "BoundIdentity", "commitment_of", "current_bindings_of_did", "current_identity",
           "identity_commitment", "proof_from_input", "published_proof"]
