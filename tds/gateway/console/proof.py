"""Wallet proofs: the participant console's way to show the gateway who asks, with the browser
wallet alone (``personal_sign``; no DID key in the page).

The wallet signs a short, human-readable text the user sees before signing::

    Trusted Data Space console
    action: read-result
    subject: job 4294967297
    chain: 31337
    nonce: 9f86d081884c7d659a2feaa0c55ad015
    expires: 1767312000

It travels base64url JSON ``{"message": ..., "signature": "0x..."}`` in ``X-TDS-Wallet-Proof``.
The gateway recovers the signer and checks the action, the subject, the chain, the expiry (in the
future, at most :data:`MAX_LIFETIME` seconds ahead) and, last, the nonce: one the gateway issued
(``POST /console/nonce``) and that no proof has used yet — it is consumed here, so a proof works
once (a replay is refused as ``wallet-proof-replayed``, even after a gateway restart:
:class:`~tds.gateway.console.ledger.ConsoleLedger` keeps them on disk until they expire).
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct

from tds.gateway.console.ledger import ConsoleLedger
from tds.gateway.errors import GatewayError

HEADER = "X-TDS-Wallet-Proof"
TITLE = "Trusted Data Space console"
MAX_LIFETIME = 600  # seconds
MAX_PROOF_BYTES = 4096


class ProofRefused(GatewayError):
    """A missing, malformed, expired or mismatched wallet proof."""

    status = 401


@dataclass(frozen=True)
class WalletProof:
    """A checked proof: who signed it (checksummed address) and what it names."""

    signer: str
    action: str
    subject: str
    chain_id: int
    expires: int
    nonce: str


FIELDS = ("action", "subject", "chain", "nonce", "expires")


def proof_message(action: str, subject: str, chain_id: int, nonce: str, expires: int) -> str:
    """The text a wallet signs for ``action`` on ``subject`` with the gateway's ``nonce`` (the page
    builds the same)."""
    return f"{TITLE}\naction: {action}\nsubject: {subject}\nchain: {chain_id}\nnonce: {nonce}\nexpires: {expires}"


def parse_message(message: str) -> dict[str, str]:
    """The fields of a proof message; raises :class:`ProofRefused` if it is not one."""
    lines = message.split("\n")
    if not lines or lines[0] != TITLE:
        raise ProofRefused("wallet-proof-malformed", f"the signed text does not start with {TITLE!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(": ")
        if not sep or key in fields:
            raise ProofRefused("wallet-proof-malformed", f"the signed text has a malformed line {line!r}")
        fields[key] = value
    if set(fields) != set(FIELDS):
        raise ProofRefused("wallet-proof-malformed", "the signed text must name action, subject, chain, nonce and "
                                                     "expires")
    return fields


def decode_header(value: str | None) -> tuple[str, bytes]:
    """(message, signature) from the header value."""
    if not value:
        raise ProofRefused("wallet-proof-missing", f"sign the request in your wallet and send it in {HEADER}")
    if len(value) > MAX_PROOF_BYTES:
        raise ProofRefused("wallet-proof-malformed", f"{HEADER} is larger than {MAX_PROOF_BYTES} bytes")
    try:
        obj = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return str(obj["message"]), bytes.fromhex(str(obj["signature"]).removeprefix("0x"))
    except (ValueError, KeyError, TypeError):
        raise ProofRefused("wallet-proof-malformed", f"{HEADER} is not base64url JSON with message and signature"
                           ) from None


def check_proof(value: str | None, action: str, subject: str, chain_id: int, ledger: ConsoleLedger,
                now: float | None = None) -> WalletProof:
    """Verify the header ``value`` for ``action`` on ``subject`` on ``chain_id`` and consume its nonce
    in ``ledger`` (so it is accepted once); return the proof."""
    message, signature = decode_header(value)
    fields = parse_message(message)
    if fields["action"] != action or fields["subject"] != subject:
        raise ProofRefused("wallet-proof-mismatch", f"the wallet signed {fields['action']!r} on {fields['subject']!r}, "
                                                    f"this request is {action!r} on {subject!r}")
    if fields["chain"] != str(chain_id):
        raise ProofRefused("wallet-proof-wrong-chain", f"the wallet signed for chain {fields['chain']}, this "
                                                       f"deployment is on chain {chain_id}")
    try:
        expires = int(fields["expires"])
    except ValueError:
        raise ProofRefused("wallet-proof-malformed", "expires is not a number") from None
    t = time.time() if now is None else now
    if expires < t:
        raise ProofRefused("wallet-proof-expired", f"the wallet proof expired at {expires}; sign again")
    if expires > t + MAX_LIFETIME:
        raise ProofRefused("wallet-proof-too-long", f"a wallet proof may live at most {MAX_LIFETIME} s")
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:
        raise ProofRefused("wallet-proof-bad-signature", "the wallet signature does not recover to an account"
                           ) from None
    if not ledger.consume_nonce(fields["nonce"], t):
        raise ProofRefused("wallet-proof-replayed", f"nonce {fields['nonce'][:40]!r} was not issued by this gateway, "
                                                    "has expired or was already used: a wallet proof works once; "
                                                    "ask for a new nonce and sign again")
    return WalletProof(signer, action, subject, chain_id, expires, fields["nonce"])
