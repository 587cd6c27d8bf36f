"""The provider's keystore, encrypted at rest.

File format (JSON): ``{"format": "tds-keystore/1", "kdf": {scrypt n, r, p, salt}, "nonce",
"ciphertext"}``; the ciphertext is AES-256-GCM over the canonical JSON of all entries, under a
key derived from the passphrase with scrypt. Each entry records kind, material, status
(``active`` / ``retired``) and when it was created or retired. Destroyed keys are removed, so
a ciphertext under them can never be opened again (rotation's point).

KDF cost follows :mod:`did.keystore`: created with scrypt N = 2^17 (a lower ``scrypt_n`` is a
test-only override that warns); on opening, unknown or absurd parameters are refused before any
key is derived (:class:`KdfParametersRefused`, a :class:`KeystoreLocked` naming the file and the
parameter), and a file below the floor opens with a warning and is re-encrypted at the default
cost on its next save."""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from did import errors as did_errors
from did.keystore import DEFAULT_SCRYPT_N, check_scrypt, creation_cost
from offchain.errors import KeyNotFound, KeystoreLocked
from offchain.onion.keys import Key, Keyring, key_from_dict, key_to_dict

FORMAT = "tds-keystore/1"
__all__ = ["DEFAULT_SCRYPT_N", "FORMAT", "KdfParametersRefused", "Keystore"]


class KdfParametersRefused(KeystoreLocked):
    """The keystore file names KDF parameters that are unknown or absurd; carries ``path``,
    ``parameter`` and ``value``. Refused before any key is derived."""

    def __init__(self, path: Path, parameter: str, value: object, message: str) -> None:
        self.path, self.parameter, self.value = path, parameter, value
        super().__init__(message)


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


class Keystore:
    """Load with :meth:`open` or :meth:`create`; every mutation is saved atomically."""

    def __init__(self, path: Path, passphrase: str, entries: dict[str, dict],
                 scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        self.path, self._passphrase, self.entries, self.scrypt_n = path, passphrase, entries, scrypt_n

    @classmethod
    def create(cls, path: Path | str, passphrase: str, scrypt_n: int | None = None) -> "Keystore":
        """A new, empty keystore at ``path`` (scrypt N = 2^17; a lower ``scrypt_n`` is test-only)."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} already exists; open it instead")
        store = cls(path, passphrase, {}, creation_cost(scrypt_n, f"data keystore {path}"))
        store.save()
        return store

    @classmethod
    def open(cls, path: Path | str, passphrase: str) -> "Keystore":
        """Open ``path``; KDF parameters are checked before the passphrase is stretched."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise KeystoreLocked(f"{path}: not a {FORMAT} file")
            kdf = doc["kdf"]
            salt = bytes.fromhex(kdf["salt"])
            if kdf.get("name", "scrypt") != "scrypt":
                raise did_errors.KdfParametersRefused(str(path), "kdf", kdf.get("name"), "is not scrypt")
            check_scrypt(str(path), kdf["n"], kdf["r"], kdf["p"], salt=salt)
            kek = _kek(passphrase, salt, kdf["n"], kdf["r"], kdf["p"])
            plain = AESGCM(kek).decrypt(bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["ciphertext"]),
                                        FORMAT.encode())
        except did_errors.KdfParametersRefused as exc:
            raise KdfParametersRefused(path, exc.parameter, exc.value, str(exc)) from None
        except InvalidTag:
            raise KeystoreLocked(f"{path}: wrong passphrase or tampered keystore") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeystoreLocked(f"{path}: unreadable keystore ({exc})") from exc
        # a file below the floor is re-encrypted at the default cost when next saved
        return cls(path, passphrase, json.loads(plain), max(int(kdf["n"]), DEFAULT_SCRYPT_N))

    def save(self) -> None:
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        r, p = 8, 1
        kek = _kek(self._passphrase, salt, self.scrypt_n, r, p)
        plain = json.dumps(self.entries, sort_keys=True, separators=(",", ":")).encode()
        doc = {"format": FORMAT, "kdf": {"name": "scrypt", "n": self.scrypt_n, "r": r, "p": p,
                                         "salt": salt.hex()},
               "nonce": nonce.hex(), "ciphertext": AESGCM(kek).encrypt(nonce, plain, FORMAT.encode()).hex()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, self.path)

    def reload(self) -> None:
        """Merge in entries another process saved to the file since this one was opened
        (entries held here win). Call under a lock before saving when processes share a file."""
        if self.path.exists():
            self.entries = {**Keystore.open(self.path, self._passphrase).entries, **self.entries}

    # keys ------------------------------------------------------------------------------------
    def add(self, key: Key, save: bool = True) -> str:
        entry = key_to_dict(key)
        entry.update(status="active", created=int(time.time()))
        self.entries[key.key_id] = entry
        if save:
            self.save()
        return key.key_id

    def add_keyring(self, ring: Keyring) -> list[str]:
        ids = [self.add(k, save=False) for k in ring.keys.values()]
        self.save()
        return ids

    def get(self, key_id: str) -> Key:
        try:
            return key_from_dict(self.entries[key_id])
        except KeyError:
            raise KeyNotFound(key_id) from None

    def status(self, key_id: str) -> str:
        if key_id not in self.entries:
            raise KeyNotFound(key_id)
        return self.entries[key_id]["status"]

    def retire(self, key_id: str, save: bool = True) -> None:
        """Mark a key as rotated away (still decrypts old data until destroyed)."""
        if key_id not in self.entries:
            raise KeyNotFound(key_id)
        self.entries[key_id].update(status="retired", retired=int(time.time()))
        if save:
            self.save()

    def destroy(self, key_id: str, save: bool = True) -> None:
        if self.entries.pop(key_id, None) is None:
            raise KeyNotFound(key_id)
        if save:
            self.save()

    def keyring(self, include_retired: bool = False) -> Keyring:
        ring = Keyring()
        for key_id, entry in self.entries.items():
            if include_retired or entry["status"] == "active":
                ring.add(key_from_dict(entry))
        return ring
