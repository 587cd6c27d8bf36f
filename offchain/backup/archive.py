"""The archive file format, ``tds-backup/1``: one header, then a chunked AEAD stream.

::

    b"tds-backup/1\\n"  u32 header length  header (canonical JSON, readable without a key)
    record*            u8 kind  u32 length  AES-256-GCM ciphertext (length bytes)

The header names the format, the time, the key id, the chunk size, a random nonce prefix and how
the 32-byte backup key is unlocked: ``passphrase`` (scrypt parameters checked before any work, as
for keystores, and the key wrapped with AES-GCM under the derived key) and/or ``shares`` (k of n,
:mod:`offchain.backup.shamir`). Records of kind 0 carry the plaintext stream (a tar) in chunks of
``chunk_size``; the single last record, kind 1, carries the manifest. Record ``i`` is sealed with
nonce = prefix ‖ i and associated data = SHA-256(header) ‖ kind ‖ i, so a changed header, a
reordered, dropped or appended record, or a truncated file fails authentication; the manifest
record's tag is the MAC over the manifest. Chunk keys come from the backup key by HKDF-SHA256.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from did import errors as did_errors
from did.keystore import check_scrypt, creation_cost
from offchain.backup.errors import ArchiveTampered, NotAnArchive, WrongBackupKey
from offchain.backup.shamir import key_id

FORMAT = "tds-backup/1"
MAGIC = FORMAT.encode() + b"\n"
DATA, MANIFEST = 0, 1
CHUNK_SIZE = 1 << 20
MAX_HEADER = 1 << 16
_REC = struct.Struct(">BI")


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _stream_key(key: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"tds-backup/1 stream").derive(key)


def _aad(header_hash: bytes, kind: int, index: int) -> bytes:
    return header_hash + struct.pack(">BQ", kind, index)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def passphrase_unlock(key: bytes, passphrase: str, scrypt_n: int | None = None) -> dict[str, Any]:
    """The header's ``passphrase`` entry: scrypt parameters and ``key`` wrapped under them
    (N = 2^17 unless a test passes a lower ``scrypt_n``, which warns)."""
    n = creation_cost(scrypt_n, "backup archive")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    kek = Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase.encode())
    wrapped = AESGCM(kek).encrypt(nonce, key, f"{FORMAT} key {key_id(key)}".encode())
    return {"kdf": {"name": "scrypt", "n": n, "r": 8, "p": 1, "salt": salt.hex()},
            "nonce": nonce.hex(), "wrapped": wrapped.hex()}


def unwrap_passphrase(header: dict[str, Any], passphrase: str, source: str) -> bytes:
    """The backup key from the header's passphrase entry; KDF parameters are checked first."""
    entry = header.get("unlock", {}).get("passphrase")
    if not isinstance(entry, dict):
        raise WrongBackupKey(f"{source} has no passphrase unlock; give its shares (--share)")
    try:
        kdf = entry["kdf"]
        salt = bytes.fromhex(kdf["salt"])
        if kdf.get("name") != "scrypt":
            raise did_errors.KdfParametersRefused(source, "kdf", kdf.get("name"), "is not scrypt")
        check_scrypt(source, kdf["n"], kdf["r"], kdf["p"], salt=salt)
        kek = Scrypt(salt=salt, length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(passphrase.encode())
        key = AESGCM(kek).decrypt(bytes.fromhex(entry["nonce"]), bytes.fromhex(entry["wrapped"]),
                                  f"{FORMAT} key {header['key_id']}".encode())
    except InvalidTag:
        raise WrongBackupKey(f"{source}: wrong backup passphrase") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise NotAnArchive(source, f"malformed passphrase entry ({exc})") from None
    if key_id(key) != header["key_id"]:
        raise WrongBackupKey(f"{source}: the unwrapped key is not backup key {header['key_id']}")
    return key


class ArchiveWriter:
    """A file-like sink (``write``, ``tell``) that seals what it is given, chunk by chunk, into
    a temporary file; :meth:`finish` seals the manifest and renames the file into place."""

    def __init__(self, path: Path, key: bytes, unlock: dict[str, Any], chunk_size: int = CHUNK_SIZE,
                 info: dict[str, Any] | None = None) -> None:
        self.path, self.chunk_size = Path(path), chunk_size
        self.header = {"format": FORMAT, "created": int(time.time()), "key_id": key_id(key),
                       "chunk_size": chunk_size, "nonce_prefix": secrets.token_bytes(8).hex(),
                       "unlock": unlock, "info": info or {}}
        raw = _canonical(self.header)
        self._hh, self._prefix = hashlib.sha256(raw).digest(), bytes.fromhex(self.header["nonce_prefix"])
        self._aead = AESGCM(_stream_key(key))
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: BinaryIO = os.fdopen(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        self._fh.write(MAGIC + struct.pack(">I", len(raw)) + raw)
        self._buf, self._pos, self._index = bytearray(), 0, 0

    def write(self, data: bytes) -> int:
        self._buf += data
        self._pos += len(data)
        while len(self._buf) >= self.chunk_size:
            self._seal(DATA, bytes(self._buf[:self.chunk_size]))
            del self._buf[:self.chunk_size]
        return len(data)

    def tell(self) -> int:
        return self._pos

    def _seal(self, kind: int, plain: bytes) -> None:
        ct = self._aead.encrypt(_nonce(self._prefix, self._index), plain, _aad(self._hh, kind, self._index))
        self._fh.write(_REC.pack(kind, len(ct)) + ct)
        self._index += 1

    def finish(self, manifest: dict[str, Any]) -> Path:
        """Seal the rest of the stream and the manifest; the archive appears only now."""
        if self._buf:
            self._seal(DATA, bytes(self._buf))
            self._buf.clear()
        self._seal(MANIFEST, _canonical({**manifest, "stream_size": self._pos, "records": self._index + 1}))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


class ArchiveReader:
    """Reads an archive: the header without a key, then (given the key) the manifest and the
    plaintext stream, naming the backed-up files of any record that fails authentication."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.name = str(path)
        try:
            with open(self.path, "rb") as fh:
                if fh.read(len(MAGIC)) != MAGIC:
                    raise NotAnArchive(self.name, f"it does not start with {FORMAT}")
                (size,) = struct.unpack(">I", fh.read(4))
                if size > MAX_HEADER:
                    raise NotAnArchive(self.name, f"header of {size} bytes")
                raw = fh.read(size)
                self.body_offset = fh.tell()
            self.header: dict[str, Any] = json.loads(raw)
            self.records = self._scan()
        except (OSError, struct.error, ValueError) as exc:
            raise NotAnArchive(self.name, str(exc)) from None
        if not isinstance(self.header, dict) or self.header.get("format") != FORMAT or _canonical(self.header) != raw:
            raise NotAnArchive(self.name, f"header is not canonical {FORMAT}")
        try:
            self._prefix = bytes.fromhex(self.header["nonce_prefix"])
            if len(self._prefix) != 8 or not isinstance(self.header["chunk_size"], int) or \
                    not isinstance(self.header["key_id"], str):
                raise ValueError("nonce prefix, chunk size or key id malformed")
        except (KeyError, TypeError, ValueError) as exc:
            raise NotAnArchive(self.name, f"header field {exc}") from None
        self._hh = hashlib.sha256(raw).digest()

    def _scan(self) -> list[tuple[int, int, int]]:
        """(kind, file offset of the ciphertext, its length) of every record, without a key."""
        out, end = [], self.path.stat().st_size
        with open(self.path, "rb") as fh:
            fh.seek(self.body_offset)
            pos = self.body_offset
            while pos < end:
                head = fh.read(_REC.size)
                if len(head) < _REC.size:
                    raise NotAnArchive(self.name, f"truncated record header at byte {pos}")
                kind, length = _REC.unpack(head)
                pos += _REC.size
                if pos + length > end:
                    raise NotAnArchive(self.name, f"record {len(out)} runs past the end of the file (truncated)")
                out.append((kind, pos, length))
                pos += length
                fh.seek(pos)
        if not out or out[-1][0] != MANIFEST or any(k != DATA for k, _, _ in out[:-1]):
            raise NotAnArchive(self.name, "the manifest record is missing or misplaced (truncated?)")
        return out

    def _open(self, aead: AESGCM, index: int, fh: BinaryIO) -> bytes:
        kind, offset, length = self.records[index]
        fh.seek(offset)
        return aead.decrypt(_nonce(self._prefix, index), fh.read(length), _aad(self._hh, kind, index))

    def manifest(self, key: bytes) -> dict[str, Any]:
        """The manifest, authenticated; a wrong key or an altered header is :class:`WrongBackupKey`
        or :class:`ArchiveTampered`."""
        if key_id(key) != self.header.get("key_id"):
            raise WrongBackupKey(f"{self.name}: the key given is not backup key {self.header.get('key_id')}")
        with open(self.path, "rb") as fh:
            try:
                doc = json.loads(self._open(AESGCM(_stream_key(key)), len(self.records) - 1, fh))
            except InvalidTag:
                raise ArchiveTampered(self.name, "the manifest (or the header)", []) from None
        if doc.get("records") != len(self.records):
            raise ArchiveTampered(self.name, "the record count", [])
        return doc

    def chunks(self, key: bytes, locate: Callable[[int, int], list[str]]) -> Iterator[bytes]:
        """The plaintext stream, chunk by chunk; a chunk failing authentication raises
        :class:`ArchiveTampered` naming ``locate(start, end)`` (the files in its byte range)."""
        aead, size = AESGCM(_stream_key(key)), self.header["chunk_size"]
        with open(self.path, "rb") as fh:
            for i in range(len(self.records) - 1):
                try:
                    yield self._open(aead, i, fh)
                except InvalidTag:
                    raise ArchiveTampered(self.name, f"chunk {i} (stream bytes {i * size}–{(i + 1) * size})",
                                          locate(i * size, (i + 1) * size)) from None


class ChunkStream:
    """A read-only file object over :meth:`ArchiveReader.chunks` (for ``tarfile`` in ``r|`` mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buf = chunks, bytearray()

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            self._buf += nxt
        n = len(self._buf) if n < 0 else min(n, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out
