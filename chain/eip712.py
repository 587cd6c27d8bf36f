"""EIP-712 typed data for the two signed messages of the system, mirroring
``contracts/libraries/TdsTypeHashes.sol``: grants signed by certificate holders (domain
"TDS Authorizations" v1) and result attestations signed by oracles (domain "TDS Jobs" v1)."""
from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

DOMAIN_TYPE = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
               {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
GRANT_FIELDS = [("assetId", "uint256"), ("consumer", "address"), ("purposeHash", "bytes32"),
                ("operations", "uint16"), ("kind", "uint8"), ("notBefore", "uint32"), ("expiry", "uint32"),
                ("maxUses", "uint32"), ("paymentToken", "address"), ("pricePerUse", "uint96"),
                ("algorithmProvider", "address")]
GRANT_TYPE = [{"name": n, "type": t} for n, t in GRANT_FIELDS + [("nonce", "uint256"), ("deadline", "uint256")]]
JOB_RESULT_TYPE = [{"name": "jobId", "type": "uint256"}, {"name": "resultHash", "type": "bytes32"},
                   {"name": "resultCidHash", "type": "bytes32"}]
ZERO_ADDRESS = "0x" + "00" * 20


def offer_nonce(transfers: int, salt: int, sequence: int = 0) -> int:
    """A keyed nonce for a signed grant offer (OZ NoncesKeyed: key << 64 | sequence).

    The key's top 32 bits are the certificate's transfer count (``AssetRegistry.transfersOf``)
    when the offer is signed, so every outstanding offer dies when the certificate changes hands;
    the other 160 bits (``salt``) keep offers independent of each other."""
    if not 0 <= transfers < 2 ** 32 or not 0 <= salt < 2 ** 160 or not 0 <= sequence < 2 ** 64:
        raise ValueError("offer nonce parts out of range (transfers < 2^32, salt < 2^160, sequence < 2^64)")
    return (transfers << 224) | (salt << 64) | sequence


@dataclass(frozen=True)
class GrantTerms:
    """IAuthorizations.GrantTerms, field for field (``as_tuple`` is the ABI argument)."""

    assetId: int
    consumer: str
    purposeHash: bytes
    operations: int
    kind: int = 0
    notBefore: int = 0
    expiry: int = 0
    maxUses: int = 1
    paymentToken: str = ZERO_ADDRESS
    pricePerUse: int = 0
    algorithmProvider: str = ZERO_ADDRESS

    def as_tuple(self) -> tuple:
        return astuple(self)


def _domain(name: str, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {"name": name, "version": "1", "chainId": chain_id, "verifyingContract": verifying_contract}


def grant_typed_data(terms: GrantTerms, nonce: int, deadline: int, chain_id: int, authorizations: str) -> dict:
    """Full EIP-712 message a holder's wallet signs to offer ``terms``."""
    message = dict(zip([n for n, _ in GRANT_FIELDS], terms.as_tuple()), nonce=nonce, deadline=deadline)
    return {"types": {"EIP712Domain": DOMAIN_TYPE, "Grant": GRANT_TYPE}, "primaryType": "Grant",
            "domain": _domain("TDS Authorizations", chain_id, authorizations), "message": message}


def job_result_typed_data(job_id: int, result_hash: bytes, result_cid: bytes, chain_id: int, jobs: str) -> dict:
    """Full EIP-712 message an oracle signs to attest a result (resultCidHash = keccak256(resultCid))."""
    message = {"jobId": job_id, "resultHash": result_hash, "resultCidHash": keccak(result_cid)}
    return {"types": {"EIP712Domain": DOMAIN_TYPE, "JobResult": JOB_RESULT_TYPE}, "primaryType": "JobResult",
            "domain": _domain("TDS Jobs", chain_id, jobs), "message": message}


def sign_typed(data: dict, private_key: bytes | str) -> bytes:
    """Sign typed data with a local key; returns the 65-byte signature."""
    return bytes(Account.sign_message(encode_typed_data(full_message=data), private_key).signature)
