"""DET layer: AES-SIV (RFC 5297, 512-bit key = AES-256-SIV) — deterministic authenticated
encryption. Equal plaintexts under the same key and context give equal ciphertexts (equality,
GROUP BY and joins over ciphertext); a wrong key or a flipped bit fails authentication.
Leakage: equality (the frequency histogram) of the column, nothing else."""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from offchain.errors import DataPlaneError, KeyAuthenticationError


def encode_value(value: Any) -> bytes:
    """Canonical bytes of a cell: one type tag + a canonical text form."""
    if value is None:
        return b"n"
    if isinstance(value, bool):
        return b"b" + (b"1" if value else b"0")
    if isinstance(value, int):
        return b"i" + str(value).encode()
    if isinstance(value, Decimal):
        return b"d" + format(value.normalize(), "f").encode()
    if isinstance(value, _dt.date):
        return b"t" + value.isoformat().encode()
    if isinstance(value, str):
        return b"s" + value.encode("utf-8")
    raise DataPlaneError(f"cannot encode a {type(value).__name__} value")


def decode_value(raw: bytes) -> Any:
    tag, body = raw[:1], raw[1:].decode("utf-8")
    if tag == b"n":
        return None
    if tag == b"b":
        return body == "1"
    if tag == b"i":
        return int(body)
    if tag == b"d":
        return Decimal(body)
    if tag == b"t":
        return _dt.date.fromisoformat(body)
    if tag == b"s":
        return body
    raise DataPlaneError(f"unknown value tag {tag!r}")


@dataclass(frozen=True)
class DetKey:
    """64 random bytes. ``domain`` is bound in as associated data: columns share DET
    ciphertexts (and can be joined) exactly when they share key and domain."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != 64:
            raise ValueError("DET key must be 64 bytes (AES-256-SIV)")

    @property
    def key_id(self) -> str:
        return "det:" + hashlib.sha256(b"tds-det|" + self.key).hexdigest()[:24]

    def encrypt(self, value: Any, domain: str) -> bytes:
        return AESSIV(self.key).encrypt(encode_value(value), [domain.encode()])

    def encrypt_many(self, values: Sequence[Any], domain: str) -> list[bytes]:
        siv, ad = AESSIV(self.key), [domain.encode()]
        memo: dict[tuple[type, str], bytes] = {}      # deterministic: a repeated value needs no new call
        out = []
        for v in values:
            key = (type(v), repr(v))
            ct = memo.get(key)
            if ct is None:
                ct = memo[key] = siv.encrypt(encode_value(v), ad)
            out.append(ct)
        return out

    def decrypt(self, ciphertext: bytes, domain: str) -> Any:
        try:
            return decode_value(AESSIV(self.key).decrypt(ciphertext, [domain.encode()]))
        except InvalidTag:
            raise KeyAuthenticationError(self.key_id, "DET ciphertext") from None
