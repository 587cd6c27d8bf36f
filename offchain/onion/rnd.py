"""RND layer: AES-256-GCM with a fresh 96-bit random nonce, applied to a whole column chunk
(IND-CPA: hides equality and order of everything inside). The associated data binds the
chunk's header (dataset, column, onion, chunk index, key id) so a chunk cannot be swapped.
Releasing an RND key is "peeling" that onion for that column."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from offchain.errors import KeyAuthenticationError

NONCE_BYTES = 12


@dataclass(frozen=True)
class RndKey:
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError("RND key must be 32 bytes (AES-256-GCM)")

    @property
    def key_id(self) -> str:
        return "rnd:" + hashlib.sha256(b"tds-rnd|" + self.key).hexdigest()[:24]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self.key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise KeyAuthenticationError(self.key_id, "RND-sealed chunk") from None
