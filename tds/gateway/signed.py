"""What users sign and the gateway only checks: raw transactions and EIP-712 grant offers.

The gateway holds no user key. A consumer signs its own ``applyFor`` / ``requestJob``
transaction in its wallet and hands the raw bytes over; a certificate holder signs a grant
offer (EIP-712, ``grantBySignature``). Everything here is pure: decode, recover the signer,
check the target, the function and the chain — I/O stays in :mod:`tds.gateway.relay`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.messages import encode_typed_data
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract

from chain.eip712 import GRANT_FIELDS, GrantTerms, grant_typed_data
from tds.gateway.errors import BadRequest, Forbidden

MAX_RAW_TX = 16 * 1024  # an applyFor / requestJob transaction is ~300 bytes


@dataclass(frozen=True)
class RawTransaction:
    """A decoded, signed transaction: who signed it and what it calls."""

    raw: bytes
    sender: str
    to: str | None
    data: bytes
    value: int
    nonce: int
    gas: int
    chain_id: int | None
    type: int

    @property
    def selector(self) -> bytes:
        return self.data[:4]

    @property
    def hash(self) -> bytes:
        """The transaction hash (keccak256 of the signed bytes), as the node will know it."""
        return keccak(self.raw)


def decode_raw_transaction(raw: bytes | str) -> RawTransaction:
    """Decode a signed transaction (legacy EIP-155 or typed) and recover its sender."""
    if isinstance(raw, str):
        try:
            raw = bytes.fromhex(raw.removeprefix("0x"))
        except ValueError:
            raise BadRequest("invalid-transaction", "rawTransaction is not 0x-hex") from None
    if not raw:
        raise BadRequest("invalid-transaction", "rawTransaction is empty")
    if len(raw) > MAX_RAW_TX:
        raise BadRequest("invalid-transaction", f"rawTransaction is {len(raw)} bytes; the limit is {MAX_RAW_TX}")
    try:
        sender = Account.recover_transaction(raw)
        if raw[0] <= 0x7F:
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            kind, chain_id = raw[0], int(fields["chainId"])
        else:
            fields = LegacyTransaction.from_bytes(raw).as_dict()
            v = int(fields["v"])
            kind, chain_id = 0, ((v - 35) // 2 if v >= 35 else None)
        to = to_checksum_address(fields["to"]) if fields.get("to") else None
    except Exception as exc:  # rlp / signature errors come in many types
        raise BadRequest("invalid-transaction",
                         f"rawTransaction is not a signed Ethereum transaction ({type(exc).__name__}: {exc})") from None
    return RawTransaction(raw=raw, sender=sender, to=to, data=bytes(fields.get("data") or b""),
                          value=int(fields.get("value") or 0), nonce=int(fields["nonce"]), gas=int(fields["gas"]),
                          chain_id=chain_id, type=kind)


def expect_call(tx: RawTransaction, contract: Contract, function: str, chain_id: int,
                caller_account: str) -> dict[str, Any]:
    """Check that ``tx`` calls ``contract.function`` on ``chain_id``, signed by ``caller_account``;
    return the decoded arguments. Raises :class:`BadRequest` / :class:`Forbidden`."""
    if tx.chain_id != chain_id:
        raise BadRequest("wrong-chain", f"transaction is for chain {tx.chain_id}, this gateway relays to chain "
                                        f"{chain_id} (sign with EIP-155 replay protection for it)")
    if tx.to is None or tx.to != contract.address:
        raise BadRequest("wrong-contract", f"transaction goes to {tx.to}, not to {function}'s contract "
                                           f"{contract.address}")
    try:
        fn, args = contract.decode_function_input(tx.data)
    except Exception:
        raise BadRequest("wrong-function", f"transaction data is not a call of {function} "
                                           f"(selector 0x{tx.selector.hex()})") from None
    if fn.fn_name != function:
        raise BadRequest("wrong-function", f"transaction calls {fn.fn_name}, this endpoint relays {function} only")
    if tx.sender != to_checksum_address(caller_account):
        raise Forbidden("signer-not-caller", f"transaction is signed by {tx.sender}, but the authenticated caller's "
                                             f"DID is bound on chain to {to_checksum_address(caller_account)}")
    return dict(args)


def grant_terms(raw: dict[str, Any]) -> GrantTerms:
    """``GrantTerms`` from JSON (bytes32 as 0x-hex, addresses checksummed)."""
    names = [n for n, _ in GRANT_FIELDS]
    unknown = set(raw) - set(names)
    if unknown:
        raise BadRequest("invalid-terms", f"unknown grant term(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    try:
        for name, typ in GRANT_FIELDS:
            if name not in raw:
                if name in ("assetId", "consumer", "purposeHash", "operations"):
                    raise BadRequest("invalid-terms", f"grant term {name} is required")
                continue
            v = raw[name]
            if typ == "address":
                values[name] = to_checksum_address(v)
            elif typ == "bytes32":
                b = bytes.fromhex(str(v).removeprefix("0x"))
                if len(b) != 32:
                    raise ValueError(f"{name} must be 32 bytes")
                values[name] = b
            else:
                bits = int(typ.removeprefix("uint"))
                n = int(v)
                if isinstance(v, bool) or not 0 <= n < 2 ** bits:
                    raise ValueError(f"{name} must be a {typ}")
                values[name] = n
    except BadRequest:
        raise
    except (ValueError, TypeError) as exc:
        raise BadRequest("invalid-terms", f"grant terms are malformed: {exc}") from None
    return GrantTerms(**values)


def recover_grant_signer(terms: GrantTerms, nonce: int, deadline: int, signature: bytes, chain_id: int,
                         authorizations: str) -> str:
    """The account whose EIP-712 signature ``signature`` is, over the grant offer."""
    data = grant_typed_data(terms, nonce, deadline, chain_id, authorizations)
    try:
        return Account.recover_message(encode_typed_data(full_message=data), signature=signature)
    except Exception as exc:
        raise BadRequest("invalid-signature", f"grant signature does not recover ({type(exc).__name__}: {exc})") from None
