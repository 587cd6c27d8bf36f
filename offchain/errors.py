"""Errors of the data plane. Each carries the thing that was wrong (file, row, column, rule,
key id, slot) so a caller can print one precise line and a test can assert on the field."""
from __future__ import annotations

from typing import Any

from chain.errors import TdsError


class DataPlaneError(TdsError):
    """Base class of every off-chain data-plane error (a :class:`TdsError`, so the ``tds``
    command line prints it as one line)."""


# --- ingestion -------------------------------------------------------------------------------
class MalformedInput(DataPlaneError):
    """A source file could not be parsed; names the file, the row (1-based) and the column."""

    def __init__(self, file: str, row: int | None, column: str | None, reason: str) -> None:
        self.file, self.row, self.column, self.reason = file, row, column, reason
        where = file + (f", row {row}" if row is not None else "") + (
            f", column {column!r}" if column is not None else "")
        super().__init__(f"{where}: {reason}")


class SchemaViolation(DataPlaneError):
    """A value broke a declared schema rule; names the rule, column, row and value."""

    def __init__(self, rule: str, column: str, row: int | None, value: Any, detail: str = "") -> None:
        self.rule, self.column, self.row, self.value = rule, column, row, value
        at = f" at row {row}" if row is not None else ""
        super().__init__(f"rule {rule!r} violated by column {column!r}{at}: {value!r}"
                         + (f" ({detail})" if detail else ""))


class SchemaError(DataPlaneError):
    """A schema declaration itself is inconsistent (unknown type, missing column ...)."""


# --- keys and encryption ---------------------------------------------------------------------
class KeyNotFound(DataPlaneError):
    """No key with this id in the keystore (never created, or destroyed after rotation)."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"key {key_id!r} is not in the keystore (rotated away or never created)")


class KeyAuthenticationError(DataPlaneError):
    """Ciphertext did not authenticate under the given key: wrong key, rotated-away key or
    tampered data. Raised instead of ever returning garbage plaintext."""

    def __init__(self, key_id: str, what: str) -> None:
        self.key_id, self.what = key_id, what
        super().__init__(f"{what} does not authenticate under key {key_id!r} "
                         "(wrong or rotated key, or tampered ciphertext)")


class KeystoreLocked(DataPlaneError):
    """The keystore file could not be opened with the given passphrase."""


class SlotRangeError(DataPlaneError):
    """A value lies outside the range its packed slot (or order domain) can hold; refused
    before anything is encrypted."""

    def __init__(self, column: str, row: int | None, value: Any, low: Any, high: Any) -> None:
        self.column, self.row, self.value, self.low, self.high = column, row, value, low, high
        at = f" row {row}" if row is not None else ""
        super().__init__(f"column {column!r}{at}: value {value!r} outside the encodable range "
                         f"[{low}, {high}]")


class PackingOverflow(DataPlaneError):
    """Summing this many packed ciphertexts could carry one slot into the next."""

    def __init__(self, rows: int, max_rows: int) -> None:
        self.rows, self.max_rows = rows, max_rows
        super().__init__(f"aggregating {rows} rows exceeds the packing layout's limit of "
                         f"{max_rows} rows (a slot could overflow)")


class PolicyError(DataPlaneError):
    """An operation needs an onion the field's policy does not provide."""

    def __init__(self, column: str, operation: str, detail: str = "") -> None:
        self.column, self.operation = column, operation
        super().__init__(f"column {column!r} does not support {operation!r}"
                         + (f": {detail}" if detail else ""))


class DatasetFormatError(DataPlaneError):
    """A manifest or chunk is not in the canonical encrypted-dataset format."""


# --- key service -----------------------------------------------------------------------------
class GrantRefused(DataPlaneError):
    """The key service refused to open a result: operation not granted, group too small ..."""

    def __init__(self, reason: str, operation: str | None = None) -> None:
        self.reason, self.operation = reason, operation
        super().__init__(f"refused{f' {operation!r}' if operation else ''}: {reason}")


class QueryError(DataPlaneError):
    """A query is malformed or references unknown tables/columns."""


# --- content store ---------------------------------------------------------------------------
class StoreError(DataPlaneError):
    """Content-store failure (unknown CID, missing block, bad request)."""


class BlockNotFound(StoreError):
    def __init__(self, cid: str) -> None:
        self.cid = cid
        super().__init__(f"block {cid} is not in the store")

