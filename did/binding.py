"""Two-way binding of a DID and an Ethereum account.

The statement ``{did, address, chainId, issuedAt}`` is signed twice:

* by the DID controller (the key the did:key encodes: Ed25519, or SM2 under the ``sm`` profile,
  whose binding proofs are checked only where that profile is in force) — "this DID claims
  this account";
* by the account (EIP-191 ``personal_sign`` of the same canonical JSON text) — "this account
  claims this DID". A wallet shows the user exactly what it signs.

``bind`` publishes the canonical proof (:func:`proof_bytes`) in its ``IdentityBound`` event and
stores its keccak256 (:func:`binding_proof_hash`); ``bind`` is itself sent by the account, so the
chain records the binding a third time. The EVM cannot check the Ed25519 signature, so whoever
reads a binding from the chain checks the published proof (:func:`check_published_binding`):
the DID gives the Ed25519 key, the signature gives the address, the event gives the account
that sent ``bind``. A squatter (an account that bound a DID whose key it does not hold) has no
proof that passes.
"""
from __future__ import annotations

import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from did.document import canonical_json
from chain.sm2 import Sm2Error, Sm2PrivateKey
from did.errors import DidNotBound, UnknownDid
from did.keys import b64u, b64u_decode, did_from_ed25519

STATEMENT_TYPE = "TdsDidAccountBinding"
DID_DOMAIN = b"tds-binding/v1:"


def binding_statement(did: str, address: str, chain_id: int, issued_at: int | None = None) -> dict[str, Any]:
    return {"type": STATEMENT_TYPE, "version": 1, "did": did, "address": to_checksum_address(address),
            "chainId": int(chain_id), "issuedAt": int(issued_at if issued_at is not None else time.time())}


def make_binding_proof(did_key: Ed25519PrivateKey | Sm2PrivateKey, account: LocalAccount, chain_id: int,
                       issued_at: int | None = None) -> dict[str, Any]:
    """Both signatures over the statement binding ``did_key``'s DID (Ed25519 or SM2) and ``account``."""
    if isinstance(did_key, Sm2PrivateKey):
        from did.sm2 import did_from_sm2
        did = did_from_sm2(did_key.public)
    else:
        did = did_from_ed25519(did_key.public_key())
    statement = binding_statement(did, account.address, chain_id, issued_at)
    body = canonical_json(statement)
    did_sig = did_key.sign(DID_DOMAIN + body)
    acct_sig = account.sign_message(encode_defunct(text=body.decode()))
    return {"statement": statement, "didSignature": b64u(did_sig),
            "accountSignature": "0x" + bytes(acct_sig.signature).hex()}


def proof_bytes(proof: dict[str, Any]) -> bytes:
    """The canonical bytes of a proof: what ``bind`` publishes (``bindingProof``)."""
    return canonical_json(proof)


def binding_proof_hash(proof: dict[str, Any]) -> bytes:
    """bytes32 ``bindingProofHash``: keccak256 of the canonical proof (of :func:`proof_bytes`)."""
    return keccak(proof_bytes(proof))


def load_binding_proof(raw: bytes) -> dict[str, Any]:
    """The proof ``bind`` published, parsed; only its canonical form is accepted, so the proof
    and the on-chain ``bindingProofHash`` name the same bytes. Raises :class:`DidNotBound`."""
    import json

    try:
        proof = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DidNotBound("the published binding proof is not JSON") from None
    if not isinstance(proof, dict):
        raise DidNotBound("the published binding proof is not a JSON object")
    try:
        canonical = proof_bytes(proof) == bytes(raw)
    except (TypeError, ValueError):
        canonical = False
    if not canonical:
        raise DidNotBound("the published binding proof is not in canonical form")
    return proof


def check_published_binding(raw: bytes, *, did: str, address: str, chain_id: int) -> dict[str, Any]:
    """Check a proof as published on chain by ``address``'s ``bind`` of ``did``: canonical, for
    this DID, account and chain, signed by the DID's key and by the account. Returns the
    statement; raises :class:`DidNotBound` (a squatter's binding, or one with no real proof)."""
    return verify_binding_proof(load_binding_proof(raw), did=did, address=address, chain_id=chain_id)


def verify_binding_proof(proof: dict[str, Any], *, did: str | None = None, address: str | None = None,
                         chain_id: int | None = None) -> dict[str, Any]:
    """Check both signatures (offline); return the statement. Raises :class:`DidNotBound`, or
    :class:`did.errors.CryptoProfileMismatch` for a DID of another profile than the one in force."""
    try:
        statement = proof["statement"]
        if statement.get("type") != STATEMENT_TYPE or statement.get("version") != 1:
            raise DidNotBound("binding proof has an unknown statement type")
        s_did, s_addr = statement["did"], to_checksum_address(statement["address"])
        body = canonical_json(statement)
        did_sig = b64u_decode(proof["didSignature"])
        acct_sig = bytes.fromhex(proof["accountSignature"].removeprefix("0x"))
    except DidNotBound:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DidNotBound(f"binding proof is malformed ({exc!r})") from None
    if did is not None and s_did != did:
        raise DidNotBound(f"binding proof is for {s_did}, not {did}")
    if address is not None and s_addr != to_checksum_address(address):
        raise DidNotBound(f"binding proof binds {s_did} to {s_addr}, not {to_checksum_address(address)}")
    if chain_id is not None and statement.get("chainId") != chain_id:
        raise DidNotBound(f"binding proof is for chain {statement.get('chainId')}, not {chain_id}")
    from did.proofs import require_did_profile
    from did.sm2 import verify_did_signature
    try:
        require_did_profile(s_did, f"binding proof of {s_did}")
        if not verify_did_signature(s_did, did_sig, DID_DOMAIN + body):
            raise DidNotBound(f"the DID controller of {s_did} did not sign the binding to {s_addr}")
    except (UnknownDid, Sm2Error) as exc:
        raise DidNotBound(f"binding proof names an unresolvable DID: {exc}") from None
    try:
        signer = Account.recover_message(encode_defunct(text=body.decode()), signature=acct_sig)
    except Exception:  # eth-account raises several types for garbage signatures
        signer = None
    if signer != s_addr:
        raise DidNotBound(f"account {s_addr} did not sign the binding to {s_did} (signer {signer})")
    return statement
