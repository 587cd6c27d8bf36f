"""DET layer: AES-SIV (RFC 5297, 512-bit key = AES-256-SIV; ``sm`` profile: SM4-SIV, the same
construction over SM4 with a 256-bit key, :mod:`chain.sm`) — deterministic authenticated
encryption. Equal plaintexts under the same key and context give equal ciphertexts (equality,
GROUP BY and joins over ciphertext); a wrong key or a flipped bit fails authentication.
Leakage: equality (the frequency histogram) of the column, nothing else."""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from chain.crypto_profile import DEFAULT, get_profile
from chain.sm import sm3
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
    """64 random bytes (``sm`` profile: 32). ``domain`` is bound in as associated data: columns
    share DET ciphertexts (and can be joined) exactly when they share key and domain."""

    key: bytes
    profile: str = DEFAULT

    def __post_init__(self) -> None:
        want = get_profile(self.profile).det_key_bytes
        if len(self.key) != want:
            raise ValueError(f"DET key must be {want} bytes ({get_profile(self.profile).det_name})")

    @property
    def key_id(self) -> str:
        if self.profile == DEFAULT:
            return "det:" + hashlib.sha256(b"tds-det|" + self.key).hexdigest()[:24]
        return "det:" + sm3(b"tds-det-" + self.profile.encode() + b"|" + self.key).hex()[:24]

    def _encrypt(self) -> Callable[[bytes, list[bytes]], bytes]:
        if self.profile == DEFAULT:
            return AESSIV(self.key).encrypt
        profile = get_profile(self.profile)
        return lambda plain, ad: profile.det_encrypt(self.key, plain, ad)

    def encrypt(self, value: Any, domain: str) -> bytes:
        return self._encrypt()(encode_value(value), [domain.encode()])

    def encrypt_many(self, values: Sequence[Any], domain: str) -> list[bytes]:
        enc, ad = self._encrypt(), [domain.encode()]
        memo: dict[tuple[type, str], bytes] = {}      # deterministic: a repeated value needs no new call
        out = []
        for v in values:
            key = (type(v), repr(v))
            ct = memo.get(key)
            if ct is None:
                ct = memo[key] = enc(encode_value(v), ad)
            out.append(ct)
        return out

    def decrypt(self, ciphertext: bytes, domain: str) -> Any:
        try:
            plain = get_profile(self.profile).det_decrypt(self.key, ciphertext, [domain.encode()])
        except InvalidTag:
            raise KeyAuthenticationError(self.key_id, "DET ciphertext") from None
        return decode_value(plain)
