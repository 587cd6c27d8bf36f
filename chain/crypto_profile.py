"""Cryptography profiles: which primitives the off-chain side uses (docs/crypto-profile.md).

| profile   | hash    | RND layer, chunks | DET layer   | log Merkle trees | DID keys, signatures, agreement |
|-----------|---------|-------------------|-------------|------------------|---------------------------------|
| ``default`` | SHA-256 | AES-256-GCM     | AES-256-SIV | keccak256        | Ed25519, X25519                 |
| ``sm``      | SM3     | SM4-GCM         | SM4-SIV     | SM3              | SM2                             |

The chain keeps keccak256 and secp256k1 under both (EIP-712, ``ecrecover`` and the contracts
need them). The profile in force is ``TDS_CRYPTO_PROFILE`` (:func:`chain.config.crypto_profile_name`);
what was made under a profile records its name, and using it under another is refused by name
(:class:`CryptoProfileMismatch`) — never silently mixed."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

from chain.config import CRYPTO_PROFILES, crypto_profile_name
from chain.errors import TdsError
from chain.sm import sm3, sm4_gcm_open, sm4_gcm_seal, sm4_siv_decrypt, sm4_siv_encrypt

DEFAULT, SM = "default", "sm"
__all__ = ["DEFAULT", "SM", "Profile", "CryptoProfileError", "UnknownCryptoProfile",
           "CryptoProfileMismatch", "get_profile", "configured_profile", "require_profile",
           "hash_function", "HASHES"]


class CryptoProfileError(TdsError):
    """Base class of the profile errors."""


class UnknownCryptoProfile(CryptoProfileError, ValueError):
    """A profile name that is neither ``default`` nor ``sm``."""

    def __init__(self, name: object) -> None:
        self.name = name
        super().__init__(f"unknown cryptography profile {name!r}; expected one of {', '.join(CRYPTO_PROFILES)}")


class CryptoProfileMismatch(CryptoProfileError):
    """Something made under one profile met keys or a configuration of another: refused.

    Carries ``expected`` (the profile in force, or the keys'), ``found`` (the thing's) and
    ``subject`` (what was refused)."""

    def __init__(self, expected: str, found: str, subject: str) -> None:
        self.expected, self.found, self.subject = expected, found, subject
        super().__init__(f"{subject} is of the {found!r} cryptography profile where {expected!r} is required "
                         "(the profile in force, TDS_CRYPTO_PROFILE, or that of the keys); profiles are never mixed")


def _keccak(data: bytes) -> bytes:
    from eth_utils import keccak
    return keccak(data)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


HASHES: dict[str, Callable[[bytes], bytes]] = {"keccak256": _keccak, "sha256": _sha256, "sm3": sm3}


def hash_function(name: str) -> Callable[[bytes], bytes]:
    """The 32-byte hash called ``name`` (``keccak256``, ``sha256`` or ``sm3``)."""
    try:
        return HASHES[name]
    except KeyError:
        raise CryptoProfileError(f"unknown hash {name!r}; expected one of {', '.join(HASHES)}") from None


@dataclass(frozen=True)
class Profile:
    """One profile's primitives; every method is a pure function of its arguments."""

    name: str
    hash_name: str            # off-chain content hashes, evidence documents
    merkle_hash: str          # operation-log Merkle trees
    aead_name: str
    det_name: str
    signature_name: str
    agreement_name: str
    rnd_key_bytes: int
    det_key_bytes: int

    def digest(self, data: bytes) -> bytes:
        """The profile's content hash (SHA-256 or SM3) of ``data``."""
        return hash_function(self.hash_name)(data)

    def aead_seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """``ciphertext ‖ tag`` under AES-256-GCM or SM4-GCM."""
        if self.name == SM:
            return sm4_gcm_seal(key, nonce, plaintext, aad)
        return AESGCM(key).encrypt(nonce, plaintext, aad)

    def aead_open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        """Inverse of :meth:`aead_seal`; raises ``InvalidTag`` (or ``ValueError``) on any change."""
        if self.name == SM:
            return sm4_gcm_open(key, nonce, sealed, aad)
        return AESGCM(key).decrypt(nonce, bytes(sealed), aad)

    def det_encrypt(self, key: bytes, plaintext: bytes, associated: Sequence[bytes]) -> bytes:
        """Deterministic authenticated encryption: AES-256-SIV or SM4-SIV."""
        if self.name == SM:
            return sm4_siv_encrypt(key, plaintext, associated)
        return AESSIV(key).encrypt(plaintext, list(associated))

    def det_decrypt(self, key: bytes, ciphertext: bytes, associated: Sequence[bytes]) -> bytes:
        """Inverse of :meth:`det_encrypt`; raises ``InvalidTag`` on any change."""
        if self.name == SM:
            return sm4_siv_decrypt(key, ciphertext, associated)
        return AESSIV(key).decrypt(ciphertext, list(associated))


_PROFILES = {
    DEFAULT: Profile(DEFAULT, "sha256", "keccak256", "AES-256-GCM", "AES-256-SIV", "Ed25519", "X25519", 32, 64),
    SM: Profile(SM, "sm3", "sm3", "SM4-GCM", "SM4-SIV", "SM2", "SM2", 16, 32),
}


def get_profile(name: str | None) -> Profile:
    """The profile called ``name``; ``None`` (a record without the field) means ``default``."""
    try:
        return _PROFILES[DEFAULT if name is None else name]
    except (KeyError, TypeError):
        raise UnknownCryptoProfile(name) from None


def configured_profile() -> Profile:
    """The profile in force (``TDS_CRYPTO_PROFILE``)."""
    return get_profile(crypto_profile_name())


def require_profile(expected: str, found: str | None, subject: str) -> None:
    """Refuse (:class:`CryptoProfileMismatch`) unless ``found`` (``None`` = default) is ``expected``."""
    got = get_profile(found).name
    if got != get_profile(expected).name:
        raise CryptoProfileMismatch(expected, got, subject)
