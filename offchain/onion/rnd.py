"""RND layer: AES-256-GCM (``sm`` profile: SM4-GCM) with a fresh 96-bit random nonce, applied to
a whole column chunk (IND-CPA: hides equality and order of everything inside). The associated
data binds the chunk's header (dataset, column, onion, chunk index, key id) so a chunk cannot be
swapped. Releasing an RND key is "peeling" that onion for that column.

A key carries its cryptography profile (docs/crypto-profile.md): 32 bytes under ``default``,
16 under ``sm``; its id is derived with that profile's hash, so ids of the two never collide."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from chain.crypto_profile import DEFAULT, get_profile
from chain.sm import sm3
from offchain.errors import KeyAuthenticationError

NONCE_BYTES = 12


@dataclass(frozen=True)
class RndKey:
    key: bytes
    profile: str = DEFAULT

    def __post_init__(self) -> None:
        want = get_profile(self.profile).rnd_key_bytes
        if len(self.key) != want:
            raise ValueError(f"RND key must be {want} bytes ({get_profile(self.profile).aead_name})")

    @property
    def key_id(self) -> str:
        if self.profile == DEFAULT:
            return "rnd:" + hashlib.sha256(b"tds-rnd|" + self.key).hexdigest()[:24]
        return "rnd:" + sm3(b"tds-rnd-" + self.profile.encode() + b"|" + self.key).hex()[:24]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """``nonce ‖ ciphertext ‖ tag`` under this key's profile."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + get_profile(self.profile).aead_seal(self.key, nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """Inverse of :meth:`seal`; :class:`KeyAuthenticationError` on a wrong key or any change."""
        try:
            return get_profile(self.profile).aead_open(self.key, bytes(sealed[:NONCE_BYTES]),
                                                       sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise KeyAuthenticationError(self.key_id, "RND-sealed chunk") from None
