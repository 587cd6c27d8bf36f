"""Encrypted key storage.

* Ethereum key: eth-account's keystore v3 JSON (scrypt + AES-128-CTR + keccak MAC), the format
  MetaMask, geth and most wallets import.
* DID (Ed25519) and key-agreement (X25519) keys: scrypt-derived key, AES-256-GCM, with the
  DID and the KDF parameters as associated data (so a swapped header fails to decrypt).

**KDF cost: a floor when creating, a ceiling when opening** (also used by the data keystore,
:mod:`offchain.onion.keystore`):

* Creating uses scrypt N = :data:`DEFAULT_SCRYPT_N` (2^17, r=8, p=1). A lower ``scrypt_n`` (down
  to 2^10) is a *test-only* override: it is accepted only when passed explicitly and warns
  (:class:`InsecureKdfWarning`); nothing outside tests and throw-away dev chains passes one.
* Opening checks the parameters a file names *before deriving anything*
  (:func:`check_scrypt`, :func:`check_eth_keystore`): unknown KDF or cipher, N not a power of
  two or above 2^22, r·p above 64, scrypt memory (128·N·r) above 1 GiB, a derived-key length
  other than 32 bytes, an odd salt, or PBKDF2 above 10^7 rounds are refused with
  :class:`did.errors.KdfParametersRefused` naming the file and the parameter. N below the
  floor (geth's "light" wallets use 2^12) opens with an :class:`InsecureKdfWarning`: the file
  is already as weak as it is, and refusing would lock its owner out; re-saving it raises it.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.signers.local import LocalAccount

from did.errors import KdfParametersRefused, KeystoreCorrupt, WrongPassword
from did.keys import b64u, b64u_decode

DEFAULT_SCRYPT_N = 2 ** 17  # ~0.3 s on a 2-vCPU machine
MIN_SCRYPT_N = 2 ** 17      # the floor for new keystores; below it only as a test-only override
TEST_MIN_SCRYPT_N = 2 ** 10  # the lowest test-only override
MAX_SCRYPT_N = 2 ** 22      # the ceiling when opening (4 GiB at r=8 is refused anyway by the memory bound)
MAX_R_TIMES_P = 64
MAX_KDF_MEMORY = 1 << 30    # 128·N·r bytes
MIN_PBKDF2_ROUNDS = 262_144  # geth's PBKDF2 default; fewer open with a warning
MAX_PBKDF2_ROUNDS = 10_000_000
SCRYPT_R = 8
SCRYPT_P = 1
DKLEN = 32
FORMAT = "tds-did-keys/1"


class InsecureKdfWarning(UserWarning):
    """A keystore is (being) made or opened with a KDF cost below the floor."""


def creation_cost(scrypt_n: int | None, what: str) -> int:
    """The scrypt N to create ``what`` with: the default, or an explicit test-only override
    (a power of two in [2^10, 2^22]; below :data:`MIN_SCRYPT_N` it warns)."""
    n = scrypt_n or DEFAULT_SCRYPT_N
    if not isinstance(n, int) or n & (n - 1) or not TEST_MIN_SCRYPT_N <= n <= MAX_SCRYPT_N:
        raise ValueError(f"{what}: scrypt N must be a power of two in [2^10, 2^22], not {n!r}")
    if n < MIN_SCRYPT_N:
        warnings.warn(InsecureKdfWarning(f"{what}: scrypt N={n} is below the floor {MIN_SCRYPT_N}; a low N is a "
                                         "test-only override, never for real keys"), stacklevel=3)
    return n


def _int(source: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise KdfParametersRefused(source, name, value, "is not an integer")
    return value


def check_scrypt(source: str, n: Any, r: Any, p: Any, dklen: Any = DKLEN, salt: bytes | None = None) -> None:
    """Refuse absurd scrypt parameters of ``source`` before any work; warn below the floor."""
    n, r, p, dklen = (_int(source, k, v) for k, v in (("n", n), ("r", r), ("p", p), ("dklen", dklen)))
    if n < 2 or n & (n - 1):
        raise KdfParametersRefused(source, "n", n, "is not a power of two >= 2")
    if n > MAX_SCRYPT_N:
        raise KdfParametersRefused(source, "n", n, f"exceeds the ceiling 2^22 ({MAX_SCRYPT_N})")
    if r < 1 or p < 1 or r * p > MAX_R_TIMES_P:
        raise KdfParametersRefused(source, "r*p", f"{r}*{p}", f"must be between 1 and {MAX_R_TIMES_P}")
    if 128 * n * r > MAX_KDF_MEMORY:
        raise KdfParametersRefused(source, "n*r", f"{n}*{r}", f"needs {128 * n * r >> 20} MiB of memory, over the "
                                                              f"{MAX_KDF_MEMORY >> 20} MiB limit")
    if dklen != DKLEN:
        raise KdfParametersRefused(source, "dklen", dklen, f"must be {DKLEN}")
    if salt is not None and not 8 <= len(salt) <= 128:
        raise KdfParametersRefused(source, "salt", f"{len(salt)} bytes", "must be 8 to 128 bytes")
    if n < MIN_SCRYPT_N:
        warnings.warn(InsecureKdfWarning(f"{source}: scrypt N={n} is below the floor {MIN_SCRYPT_N}; it opens, but "
                                         "re-save it to raise its cost"), stacklevel=3)


def check_eth_keystore(keystore: Any, source: str) -> None:
    """Refuse a keystore v3 whose KDF or cipher is unknown or absurd, before any work."""
    crypto = keystore.get("crypto") or keystore.get("Crypto") if isinstance(keystore, dict) else None
    if not isinstance(crypto, dict) or not isinstance(crypto.get("kdfparams"), dict):
        raise KeystoreCorrupt(f"{source} is malformed: no crypto.kdfparams")
    kdf, params = crypto.get("kdf"), crypto["kdfparams"]
    if crypto.get("cipher") != "aes-128-ctr":
        raise KdfParametersRefused(source, "cipher", crypto.get("cipher"), "is not aes-128-ctr")
    try:
        salt = bytes.fromhex(params.get("salt", ""))
    except (TypeError, ValueError):
        raise KdfParametersRefused(source, "salt", params.get("salt"), "is not hex") from None
    if kdf == "scrypt":
        check_scrypt(source, params.get("n"), params.get("r"), params.get("p"), params.get("dklen"), salt)
    elif kdf == "pbkdf2":
        c, dklen = _int(source, "c", params.get("c")), _int(source, "dklen", params.get("dklen"))
        if params.get("prf") != "hmac-sha256":
            raise KdfParametersRefused(source, "prf", params.get("prf"), "is not hmac-sha256")
        if not 1 <= c <= MAX_PBKDF2_ROUNDS:
            raise KdfParametersRefused(source, "c", c, f"must be between 1 and {MAX_PBKDF2_ROUNDS}")
        if dklen != DKLEN:
            raise KdfParametersRefused(source, "dklen", dklen, f"must be {DKLEN}")
        if not 8 <= len(salt) <= 128:
            raise KdfParametersRefused(source, "salt", f"{len(salt)} bytes", "must be 8 to 128 bytes")
        if c < MIN_PBKDF2_ROUNDS:
            warnings.warn(InsecureKdfWarning(f"{source}: PBKDF2 with {c} rounds is below {MIN_PBKDF2_ROUNDS}; "
                                             "re-save it to raise its cost"), stacklevel=2)
    else:
        raise KdfParametersRefused(source, "kdf", kdf, "is not a KDF this keystore reader accepts (scrypt, pbkdf2)")


def encrypt_eth_key(account: LocalAccount, password: str, scrypt_n: int | None = None) -> dict[str, Any]:
    """Keystore v3 JSON of ``account`` (opens in common wallets); ``scrypt_n`` below 2^17 is test-only."""
    n = creation_cost(scrypt_n, f"Ethereum keystore of {account.address}")
    return Account.encrypt(account.key, password, kdf="scrypt", iterations=n)


def decrypt_eth_key(keystore: dict[str, Any], password: str, *, source: str | None = None) -> LocalAccount:
    """The account in a keystore v3; its KDF parameters are checked first (``source`` names the file)."""
    source = source or f"Ethereum keystore of 0x{str(keystore.get('address', '?')).removeprefix('0x')}"
    check_eth_keystore(keystore, source)
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassword(f"wrong password for the {source}") from None
        raise KeystoreCorrupt(f"{source} is malformed: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise KeystoreCorrupt(f"{source} is malformed: missing {exc}") from None
    return Account.from_key(key)


def _kdf(password: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=DKLEN, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(password.encode())


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def encrypt_secrets(secrets: dict[str, bytes], password: str, *, label: str,
                    scrypt_n: int | None = None) -> dict[str, Any]:
    """Encrypt named raw secrets (e.g. ``ed25519``, ``x25519``) under ``password``;
    ``scrypt_n`` below 2^17 is a test-only override."""
    n = creation_cost(scrypt_n, f"DID key file of {label}")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = {"format": FORMAT, "label": label, "kdf": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P,
              "salt": b64u(salt), "cipher": "aes-256-gcm", "nonce": b64u(nonce)}
    plain = json.dumps({k: b64u(v) for k, v in sorted(secrets.items())}).encode()
    ct = AESGCM(_kdf(password, salt, n)).encrypt(nonce, plain, _aad(header))
    return {**header, "ciphertext": b64u(ct)}


def decrypt_secrets(blob: dict[str, Any], password: str, *, source: str | None = None) -> dict[str, bytes]:
    """The secrets in a DID key file; its KDF parameters are checked first (``source`` names the file)."""
    source = source or f"DID key file of {blob.get('label', '?') if isinstance(blob, dict) else '?'}"
    try:
        header = {k: blob[k] for k in ("format", "label", "kdf", "n", "r", "p", "salt", "cipher", "nonce")}
        if header["format"] != FORMAT or header["cipher"] != "aes-256-gcm":
            raise KeystoreCorrupt(f"{source}: unsupported key file format {header['format']!r}/{header['cipher']!r}")
        if header["kdf"] != "scrypt":
            raise KdfParametersRefused(source, "kdf", header["kdf"], "is not scrypt")
        salt, nonce, ct = b64u_decode(header["salt"]), b64u_decode(header["nonce"]), b64u_decode(blob["ciphertext"])
        check_scrypt(source, header["n"], header["r"], header["p"], DKLEN, salt)
        if header["r"] != SCRYPT_R or header["p"] != SCRYPT_P:
            raise KdfParametersRefused(source, "r,p", f"{header['r']},{header['p']}",
                                       f"differ from this format's {SCRYPT_R},{SCRYPT_P}")
        key = _kdf(password, salt, int(header["n"]))
    except KeystoreCorrupt:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise KeystoreCorrupt(f"{source} is malformed: {exc}") from None
    try:
        plain = AESGCM(key).decrypt(nonce, ct, _aad(header))
    except InvalidTag:
        raise WrongPassword(f"wrong password for the DID keys of {header['label']!r} (or the file was altered)") from None
    return {k: b64u_decode(v) for k, v in json.loads(plain).items()}
