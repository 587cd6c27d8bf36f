"""SM3 and SM4 primitives (GB/T 32905, GB/T 32907) and the SIV construction over any 128-bit
block cipher — pure functions over ``cryptography``'s OpenSSL bindings, no state.

- :func:`sm3` — the SM3 hash (256 bits);
- :func:`sm4_gcm_seal` / :func:`sm4_gcm_open` — SM4 in GCM mode (128-bit key, 96-bit nonce,
  128-bit tag), laid out like ``AESGCM``: ``ciphertext ‖ tag``;
- :func:`siv_encrypt` / :func:`siv_decrypt` — RFC 5297 SIV (S2V over CMAC, then CTR) with the
  block cipher as a parameter: AES gives exactly ``AESSIV`` (the tests check it), SM4 gives the
  ``sm`` profile's deterministic layer "SM4-SIV" (docs/crypto-profile.md states the argument).

Wrong key, flipped bit or wrong associated data raise :class:`InvalidTag`; callers turn it into
their own named error."""
from __future__ import annotations

from typing import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes

__all__ = ["InvalidTag", "SM4_KEY_BYTES", "GCM_NONCE_BYTES", "sm3", "hmac_sm3", "sm4_gcm_seal",
           "sm4_gcm_open", "sm4_encrypt_block", "siv_encrypt", "siv_decrypt", "sm4_siv_encrypt",
           "sm4_siv_decrypt"]

SM4_KEY_BYTES = 16
GCM_NONCE_BYTES = 12
_TAG = 16
_BLOCK = 16
_RB = 0x87                      # the GF(2^128) reduction constant of CMAC / S2V doubling


def sm3(data: bytes) -> bytes:
    """SM3 digest (32 bytes) of ``data``."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC-SM3 (RFC 2104 over SM3) of ``data``."""
    m = _hmac.HMAC(key, hashes.SM3())
    m.update(data)
    return m.finalize()


def sm4_encrypt_block(key: bytes, block: bytes) -> bytes:
    """One SM4 block encryption (the GB/T 32907 example is its known answer)."""
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def sm4_gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """SM4-GCM encryption: ``ciphertext ‖ 16-byte tag`` (the nonce is the caller's)."""
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    return enc.update(plaintext) + enc.finalize() + enc.tag


def sm4_gcm_open(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`sm4_gcm_seal`; raises :class:`InvalidTag` if anything was altered."""
    if len(sealed) < _TAG or len(nonce) != GCM_NONCE_BYTES:
        raise InvalidTag()
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, bytes(sealed[-_TAG:]))).decryptor()
    dec.authenticate_additional_data(aad)
    return dec.update(bytes(sealed[:-_TAG])) + dec.finalize()


# --- SIV (RFC 5297) over a 128-bit block cipher -----------------------------------------------
Algorithm = type[BlockCipherAlgorithm]


def _cmac(algorithm: Algorithm, key: bytes, data: bytes) -> bytes:
    c = cmac.CMAC(algorithm(key))
    c.update(data)
    return c.finalize()


def _dbl(block: bytes) -> bytes:
    v = int.from_bytes(block, "big") << 1
    if v >> 128:
        v = (v & ((1 << 128) - 1)) ^ _RB
    return v.to_bytes(_BLOCK, "big")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _s2v(algorithm: Algorithm, key: bytes, strings: Sequence[bytes]) -> bytes:
    """S2V: a PRF over a vector of strings built from CMAC (RFC 5297 §2.4)."""
    d = _cmac(algorithm, key, bytes(_BLOCK))
    for s in strings[:-1]:
        d = _xor(_dbl(d), _cmac(algorithm, key, s))
    last = strings[-1]
    if len(last) >= _BLOCK:
        t = last[:-_BLOCK] + _xor(last[-_BLOCK:], d)
    else:
        padded = last + b"\x80" + bytes(_BLOCK - len(last) - 1)
        t = _xor(_dbl(d), padded)
    return _cmac(algorithm, key, t)


def _ctr(algorithm: Algorithm, key: bytes, iv: bytes, data: bytes) -> bytes:
    q = (int.from_bytes(iv, "big") & ~((1 << 63) | (1 << 31))).to_bytes(_BLOCK, "big")
    enc = Cipher(algorithm(key), modes.CTR(q)).encryptor()
    return enc.update(data) + enc.finalize()


def siv_encrypt(algorithm: Algorithm, key: bytes, plaintext: bytes, associated: Sequence[bytes]) -> bytes:
    """Deterministic AEAD: ``V ‖ CTR(K2, V, P)`` with ``V = S2V(K1, AD…, P)``; ``key = K1 ‖ K2``."""
    half = len(key) // 2
    v = _s2v(algorithm, key[:half], [*associated, plaintext])
    return v + _ctr(algorithm, key[half:], v, plaintext)


def siv_decrypt(algorithm: Algorithm, key: bytes, ciphertext: bytes, associated: Sequence[bytes]) -> bytes:
    """Inverse of :func:`siv_encrypt`; raises :class:`InvalidTag` on any mismatch."""
    if len(ciphertext) < _BLOCK:
        raise InvalidTag()
    half = len(key) // 2
    v, body = bytes(ciphertext[:_BLOCK]), bytes(ciphertext[_BLOCK:])
    plaintext = _ctr(algorithm, key[half:], v, body)
    if not _hmac_compare(v, _s2v(algorithm, key[:half], [*associated, plaintext])):
        raise InvalidTag()
    return plaintext


def _hmac_compare(a: bytes, b: bytes) -> bool:
    from hmac import compare_digest
    return compare_digest(a, b)


def sm4_siv_encrypt(key: bytes, plaintext: bytes, associated: Sequence[bytes]) -> bytes:
    """SM4-SIV with a 32-byte key (SM4-CMAC for S2V, SM4-CTR for the body)."""
    if len(key) != 2 * SM4_KEY_BYTES:
        raise ValueError("an SM4-SIV key is 32 bytes (two SM4 keys)")
    return siv_encrypt(algorithms.SM4, key, plaintext, associated)


def sm4_siv_decrypt(key: bytes, ciphertext: bytes, associated: Sequence[bytes]) -> bytes:
    """Inverse of :func:`sm4_siv_encrypt`."""
    if len(key) != 2 * SM4_KEY_BYTES:
        raise ValueError("an SM4-SIV key is 32 bytes (two SM4 keys)")
    return siv_decrypt(algorithms.SM4, key, ciphertext, associated)
