"""The signed grant offer as JSON: the EIP-712 payload in the form wallets take for
``eth_signTypedData_v4`` (bytes as 0x-hex, integers beyond 2^53 as decimal strings), read back
into terms, checked and verified. Pure functions: no chain, no files.

A *signed offer* file is ``{"typedData": {...}, "signature": "0x…", "signer": "0x…"}``; a bare
typed-data document (what ``tds grant sign --export-typed-data`` prints) is accepted too, with
the signature given separately.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import is_address, to_checksum_address

from tds.cli.refusals import BadInput, BadSignature
from chain.eip712 import GRANT_FIELDS, GrantTerms, grant_typed_data

JS_SAFE = 2**53 - 1
DOMAIN_NAME = "TDS Authorizations"


def to_wallet_json(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (from :func:`grant_typed_data`) in ``eth_signTypedData_v4`` JSON form."""

    def plain(v: Any) -> Any:
        if isinstance(v, (bytes, bytearray)):
            return "0x" + bytes(v).hex()
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v > JS_SAFE:
            return str(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return plain(data)


@dataclass(frozen=True)
class GrantOffer:
    """Terms, nonce and deadline of a signed grant offer, and the domain it was signed for."""

    terms: GrantTerms
    nonce: int
    deadline: int
    chain_id: int
    verifying_contract: str

    def typed_data(self) -> dict[str, Any]:
        return grant_typed_data(self.terms, self.nonce, self.deadline, self.chain_id, self.verifying_contract)

    def recover(self, signature: bytes) -> str:
        """The address that signed this offer with ``signature``."""
        try:
            return Account.recover_message(encode_typed_data(full_message=self.typed_data()), signature=signature)
        except Exception as exc:  # eth_keys raises several types for an unrecoverable signature
            raise BadSignature(f"the signature does not recover to any account ({exc.__class__.__name__}: {exc}); "
                               f"it is not a signature of this grant offer") from None


def _int(name: str, v: Any) -> int:
    if isinstance(v, bool):
        raise BadInput(f"typed data field {name!r} must be an integer, not {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            pass
    raise BadInput(f"typed data field {name!r} must be an integer, not {v!r}")


def _address(name: str, v: Any) -> str:
    if not isinstance(v, str) or not is_address(v):
        raise BadInput(f"typed data field {name!r} must be an address, not {v!r}")
    return to_checksum_address(v)


def _bytes32(name: str, v: Any) -> bytes:
    if isinstance(v, str) and v.startswith("0x"):
        try:
            raw = bytes.fromhex(v[2:])
        except ValueError:
            raw = b""
        if len(raw) == 32:
            return raw
    raise BadInput(f"typed data field {name!r} must be 32 bytes as 0x-hex, not {v!r}")


def parse_offer(doc: Any) -> tuple[GrantOffer, str | None]:
    """A signed-offer file or bare typed data -> (offer, signature text or None)."""
    if not isinstance(doc, dict):
        raise BadInput("the grant offer must be a JSON object (typed data, or {typedData, signature})")
    signature = doc.get("signature")
    data = doc.get("typedData", doc)
    if not isinstance(data, dict) or data.get("primaryType") != "Grant" or not isinstance(data.get("message"), dict):
        raise BadInput("this is not a TDS grant offer: expected EIP-712 typed data with primaryType 'Grant' "
                       "(what 'tds grant sign --export-typed-data' prints)")
    domain = data.get("domain") or {}
    if domain.get("name") != DOMAIN_NAME or str(domain.get("version")) != "1":
        raise BadInput(f"the typed data is for domain {domain.get('name')!r} v{domain.get('version')}, "
                       f"not {DOMAIN_NAME!r} v1")
    m = data["message"]
    missing = [n for n, _ in GRANT_FIELDS if n not in m] + [n for n in ("nonce", "deadline") if n not in m]
    if missing:
        raise BadInput(f"the grant offer lacks {', '.join(missing)}")
    values: dict[str, Any] = {}
    for name, typ in GRANT_FIELDS:
        v = m[name]
        if typ == "address":
            values[name] = _address(name, v)
        elif typ == "bytes32":
            values[name] = _bytes32(name, v)
        else:
            values[name] = _int(name, v)
    offer = GrantOffer(GrantTerms(**values), _int("nonce", m["nonce"]), _int("deadline", m["deadline"]),
                       _int("chainId", domain.get("chainId")), _address("verifyingContract",
                                                                         domain.get("verifyingContract")))
    if signature is not None and not isinstance(signature, str):
        raise BadSignature("the offer's 'signature' must be a 0x-hex string")
    return offer, signature


def parse_signature(text: str) -> bytes:
    """65 bytes r‖s‖v from 0x-hex, or a clear refusal."""
    t = text.strip()
    if not t.startswith("0x"):
        raise BadSignature(f"malformed signature {text[:20]!r}…: expected 0x followed by 130 hex digits (r, s, v)")
    try:
        raw = bytes.fromhex(t[2:])
    except ValueError:
        raise BadSignature("malformed signature: it is not hexadecimal (expected 0x + 130 hex digits)") from None
    if len(raw) != 65:
        raise BadSignature(f"malformed signature: {len(raw)} bytes, expected 65 (r, s, v as 0x + 130 hex digits)")
    return raw
