"""Errors of backup and restore; each names the archive, the file or the share that was wrong."""
from __future__ import annotations

from offchain.errors import DataPlaneError


class BackupError(DataPlaneError):
    """Base class of every backup error."""


class NotAnArchive(BackupError):
    """The file is not a tds backup, or its structure (header, chunk framing) is broken."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: not a readable tds backup ({reason})")


class WrongBackupKey(BackupError):
    """The passphrase or the shares do not open this archive."""


class ArchiveTampered(BackupError):
    """A part of the archive failed authentication; ``files`` names the backed-up files it held."""

    def __init__(self, path: str, where: str, files: list[str]) -> None:
        self.path, self.where, self.files = path, where, files
        held = f"; it holds {', '.join(files)}" if files else ""
        super().__init__(f"{path}: {where} failed authentication (altered or truncated){held}")


class FileHashMismatch(BackupError):
    """A restored file's bytes do not match the manifest's SHA-256 or size."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        self.name, self.expected, self.actual = name, expected, actual
        super().__init__(f"{name}: sha-256 {actual} differs from the manifest's {expected}")


class ManifestMismatch(BackupError):
    """The archive's contents and its manifest disagree (a missing, extra or unsafe entry)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason
        super().__init__(f"{name}: {reason}")


class RestoreRefused(BackupError):
    """The restore target is not empty (pass --force to move it aside) or not usable."""

    def __init__(self, target: str, reason: str) -> None:
        self.target, self.reason = target, reason
        super().__init__(f"{target}: {reason}")


class ShareError(BackupError):
    """A Shamir share is mistyped, belongs to another backup key, or too few were given."""
