"""Encrypted key storage.

* Ethereum key: eth-account's keystore v3 JSON (scrypt + AES-128-CTR + keccak MAC), the format
  MetaMask, geth and most wallets import.
* DID (Ed25519) and key-agreement (X25519) keys: scrypt-derived key, AES-256-GCM, with the
  DID and the KDF parameters as associated data (so a swapped header fails to decrypt).
"""
from __future__ import annotations

import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.signers.local import LocalAccount

from did.errors import KeystoreCorrupt, WrongPassword
from did.keys import b64u, b64u_decode

DEFAULT_SCRYPT_N = 2 ** 17  # ~0.3 s on a 2-vCPU machine; tests lower it
SCRYPT_R = 8
SCRYPT_P = 1
FORMAT = "tds-did-keys/1"


def encrypt_eth_key(account: LocalAccount, password: str, scrypt_n: int | None = None) -> dict[str, Any]:
    """Keystore v3 JSON of ``account`` (opens in common wallets)."""
    n = scrypt_n or DEFAULT_SCRYPT_N
    return Account.encrypt(account.key, password, kdf="scrypt", iterations=n)


def decrypt_eth_key(keystore: dict[str, Any], password: str) -> LocalAccount:
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassword("wrong password for the Ethereum keystore") from None
        raise KeystoreCorrupt(f"Ethereum keystore is malformed: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise KeystoreCorrupt(f"Ethereum keystore is malformed: missing {exc}") from None
    return Account.from_key(key)


def _kdf(password: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(password.encode())


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def encrypt_secrets(secrets: dict[str, bytes], password: str, *, label: str,
                    scrypt_n: int | None = None) -> dict[str, Any]:
    """Encrypt named raw secrets (e.g. ``ed25519``, ``x25519``) under ``password``."""
    n = scrypt_n or DEFAULT_SCRYPT_N
    salt, nonce = os.urandom(16), os.urandom(12)
    header = {"format": FORMAT, "label": label, "kdf": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P,
              "salt": b64u(salt), "cipher": "aes-256-gcm", "nonce": b64u(nonce)}
    plain = json.dumps({k: b64u(v) for k, v in sorted(secrets.items())}).encode()
    ct = AESGCM(_kdf(password, salt, n)).encrypt(nonce, plain, _aad(header))
    return {**header, "ciphertext": b64u(ct)}


def decrypt_secrets(blob: dict[str, Any], password: str) -> dict[str, bytes]:
    try:
        header = {k: blob[k] for k in ("format", "label", "kdf", "n", "r", "p", "salt", "cipher", "nonce")}
        if header["format"] != FORMAT or header["kdf"] != "scrypt" or header["cipher"] != "aes-256-gcm":
            raise KeystoreCorrupt(f"unsupported key file format {header['format']!r}")
        if header["r"] != SCRYPT_R or header["p"] != SCRYPT_P or not 2 ** 10 <= int(header["n"]) <= 2 ** 22:
            raise KeystoreCorrupt("key file has out-of-range scrypt parameters")
        salt, nonce, ct = b64u_decode(header["salt"]), b64u_decode(header["nonce"]), b64u_decode(blob["ciphertext"])
        key = _kdf(password, salt, int(header["n"]))
    except KeystoreCorrupt:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise KeystoreCorrupt(f"DID key file is malformed: {exc}") from None
    try:
        plain = AESGCM(key).decrypt(nonce, ct, _aad(header))
    except InvalidTag:
        raise WrongPassword(f"wrong password for the DID keys of {header['label']!r} (or the file was altered)") from None
    return {k: b64u_decode(v) for k, v in json.loads(plain).items()}
