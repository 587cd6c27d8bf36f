"""Create, verify and restore backups of a TDS_HOME (docs/backup.md).

``create_backup`` snapshots every file :func:`offchain.backup.collect.collect` lists into a tar
stream sealed by :class:`~offchain.backup.archive.ArchiveWriter`, with a manifest of each file's
name, size, SHA-256 and byte range in the stream. ``verify_backup`` decrypts everything and
checks every hash without writing a byte. ``restore_backup`` does the same into a temporary
folder beside the target and renames it into place only when all of it checked out; it refuses a
non-empty target unless forced, and then moves the old contents aside instead of deleting them.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from offchain.backup.archive import (
    CHUNK_SIZE,
    ArchiveReader,
    ArchiveWriter,
    ChunkStream,
    passphrase_unlock,
    unwrap_passphrase,
)
from offchain.backup.collect import DEPLOYMENT, HOME, Snapshot, collect
from offchain.backup.errors import (
    BackupError,
    FileHashMismatch,
    ManifestMismatch,
    RestoreRefused,
    WrongBackupKey,
)
from offchain.backup.shamir import combine_shares, split_key

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BackupResult:
    """What ``create_backup`` wrote: the archive, its key id, file count and bytes, and the
    shares of its key (empty unless a k-of-n split was asked for)."""

    path: Path
    key_id: str
    files: int
    bytes: int
    shares: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckResult:
    """What ``verify_backup`` / ``restore_backup`` checked (and, for a restore, where it went)."""

    path: Path
    key_id: str
    created: int
    files: int
    bytes: int
    target: Path | None = None
    moved_aside: Path | None = None
    deployments: list[Path] = field(default_factory=list)


def create_backup(home: Path, out: Path, *, passphrase: str | None = None, shares: tuple[int, int] | None = None,
                  include_chain: bool = False, deployments: list[Path] = (), chunk_size: int = CHUNK_SIZE,
                  scrypt_n: int | None = None, progress: Progress | None = None) -> BackupResult:
    """Back up ``home`` into ``out`` under a fresh random key, unlocked by ``passphrase`` and/or
    split into ``shares = (k, n)``; the archive file appears only once complete."""
    home = Path(home)
    if not home.is_dir():
        raise BackupError(f"{home}: no such TDS_HOME folder to back up")
    if passphrase is None and shares is None:
        raise BackupError("a backup needs a passphrase or a k-of-n share split of its key (or both)")
    if passphrase == "":
        raise BackupError("the backup passphrase is empty")
    key = secrets.token_bytes(32)
    unlock: dict[str, Any] = {}
    share_texts = split_key(key, *shares) if shares else []
    if shares:
        unlock["shares"] = {"k": shares[0], "n": shares[1]}
    if passphrase is not None:
        unlock["passphrase"] = passphrase_unlock(key, passphrase, scrypt_n)
    entries = collect(home, list(deployments), include_chain)
    writer = ArchiveWriter(Path(out), key, unlock, chunk_size, {"include_chain": include_chain})
    files: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tds-backup-") as scratch, \
                tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
            for entry in entries:
                with Snapshot(entry, Path(scratch)) as snap:
                    st = entry.source.stat()
                    info = tarfile.TarInfo(entry.name)
                    info.size, info.mode, info.mtime = snap.size, st.st_mode & 0o777, int(st.st_mtime)
                    start = writer.tell()
                    with snap.open() as fh:
                        tar.addfile(info, fh)
                    files.append({"name": entry.name, "size": snap.size, "sha256": snap.sha256,
                                  "start": start, "end": writer.tell()})
                if progress:
                    progress(f"{entry.name} ({snap.size} bytes)")
        writer.finish({"files": files, "home": str(home), "created": writer.header["created"]})
    except BaseException:
        writer.abort()
        raise
    return BackupResult(Path(out), writer.header["key_id"], len(files), sum(f["size"] for f in files), share_texts)


def unlock_key(reader: ArchiveReader, passphrase: str | None = None, shares: list[str] = ()) -> bytes:
    """The archive's key from its shares (preferred when given) or its passphrase."""
    if shares:
        return combine_shares(list(shares), expect_key_id=reader.header["key_id"])
    if passphrase is not None:
        return unwrap_passphrase(reader.header, passphrase, reader.name)
    raise WrongBackupKey(f"{reader.name}: give the backup passphrase or its shares")


def _safe_name(name: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not name.startswith((HOME, DEPLOYMENT)) or len(p.parts) < 2 or (
            name.startswith(DEPLOYMENT) and len(p.parts) != 2):
        raise ManifestMismatch(name, "is not a safe archive path (home/… or deployment/NAME)")
    return p


def _locator(files: list[dict[str, Any]]) -> Callable[[int, int], list[str]]:
    return lambda a, b: [f["name"] for f in files if f["start"] < b and f["end"] > a]


def _walk(reader: ArchiveReader, key: bytes, manifest: dict[str, Any],
          sink: Callable[[PurePosixPath, tarfile.TarInfo], BinaryIO | None]) -> tuple[int, int]:
    """Decrypt the whole stream, check each member against the manifest, and hand its bytes to
    ``sink`` (None: only hash). Returns (files, bytes)."""
    expected = {f["name"]: f for f in manifest["files"]}
    seen: set[str] = set()
    stream = ChunkStream(reader.chunks(key, _locator(manifest["files"])))
    total = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[arg-type]
        for member in tar:
            want = expected.get(member.name)
            if want is None or member.name in seen:
                raise ManifestMismatch(member.name, "is in the archive but not (or twice) in its manifest")
            if not member.isreg():
                raise ManifestMismatch(member.name, "is not a regular file")
            path = _safe_name(member.name)
            digest, size = hashlib.sha256(), 0
            src = tar.extractfile(member)
            out = sink(path, member)
            try:
                while block := src.read(1 << 20):
                    digest.update(block)
                    size += len(block)
                    if out is not None:
                        out.write(block)
            finally:
                if out is not None:
                    out.close()
            if size != want["size"] or digest.hexdigest() != want["sha256"]:
                raise FileHashMismatch(member.name, want["sha256"], digest.hexdigest())
            seen.add(member.name)
            total += size
    while stream.read(1 << 20):  # authenticate every chunk, also those after the tar's end
        pass
    missing = sorted(set(expected) - seen)
    if missing:
        raise ManifestMismatch(missing[0], "is listed in the manifest but missing from the archive")
    return len(seen), total


def verify_backup(path: Path, passphrase: str | None = None, shares: list[str] = ()) -> CheckResult:
    """Decrypt the archive and check every file's hash against the manifest; writes nothing."""
    reader = ArchiveReader(path)
    key = unlock_key(reader, passphrase, shares)
    manifest = reader.manifest(key)
    files, size = _walk(reader, key, manifest, lambda p, m: None)
    return CheckResult(Path(path), reader.header["key_id"], reader.header["created"], files, size)


def restore_backup(path: Path, target: Path, passphrase: str | None = None, shares: list[str] = (),
                   force: bool = False) -> CheckResult:
    """Restore into ``target`` (a TDS_HOME that is empty or absent; with ``force`` a non-empty
    one is moved aside to ``<target>.pre-restore-<time>``). Atomic: everything is extracted and
    checked in a sibling temporary folder, then renamed into place."""
    target = Path(target).absolute()
    if target.exists() and not target.is_dir():
        raise RestoreRefused(str(target), "exists and is not a folder")
    occupied = target.exists() and any(target.iterdir())
    if occupied and not force:
        raise RestoreRefused(str(target), "is not empty; restore into an empty or new TDS_HOME, or pass --force "
                                          "(the current contents are then moved aside, not deleted)")
    reader = ArchiveReader(path)
    key = unlock_key(reader, passphrase, shares)
    manifest = reader.manifest(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
    deployments: list[Path] = []

    def sink(name: PurePosixPath, member: tarfile.TarInfo) -> BinaryIO:
        rel = PurePosixPath(*name.parts[1:]) if name.parts[0] == "home" else PurePosixPath("deployments", name.name)
        dest = tmp.joinpath(*rel.parts)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if name.parts[0] != "home":
            deployments.append(target.joinpath(*rel.parts))
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, (member.mode & 0o777) or 0o600)
        return os.fdopen(fd, "wb")

    try:
        files, size = _walk(reader, key, manifest, sink)
        aside = None
        if occupied:
            aside = target.with_name(f"{target.name}.pre-restore-{time.strftime('%Y%m%dT%H%M%S')}")
            os.rename(target, aside)
        os.rename(tmp, target)  # replaces an empty folder in one step
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CheckResult(Path(path), reader.header["key_id"], reader.header["created"], files, size, target, aside,
                       deployments)
