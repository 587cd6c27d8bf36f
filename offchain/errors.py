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

    def __init__(self, reason: str, operation: str | None = None, *, code: str | None = None) -> None:
        self.reason, self.operation = reason, operation
        self.code = code or type(self).__name__   # a stable name for the rule (often the contract's error)
        where = f" {operation!r}" if operation else ""
        super().__init__(f"refused{where} [{self.code}]: {reason}" if code else f"refused{where}: {reason}")


class QueryError(DataPlaneError):
    """A query is malformed or references unknown tables/columns."""


class DifferencingRefused(GrantRefused):
    """Releasing these aggregates next to ones the consumer already holds would let it isolate
    fewer than ``k`` rows by subtracting answers. Names the ``rule`` that fired (``overlap``,
    ``complement``, ``pair-complement``, ``partition``, ``subset-packing``,
    ``container-packing``), the ``earlier_job`` involved (None: only the whole-table answer)
    and how many ``rows`` would be isolated."""

    def __init__(self, rule: str, rows: int, k: int, earlier_job: int | None, detail: str = "") -> None:
        self.rule, self.rows, self.k, self.earlier_job = rule, rows, k, earlier_job
        against = (f"the answers of job {earlier_job}" if earlier_job is not None
                   else "the whole-table answer")
        super().__init__(f"differencing (rule {rule!r}): together with {against} this release "
                         f"would isolate {rows} row(s), fewer than the minimum group size {k}"
                         + (f" ({detail})" if detail else "")
                         + f"; ask for groups that differ from earlier answers by at least {k} rows")


class PrivacyBudgetExhausted(GrantRefused):
    """The grant's differential-privacy budget cannot pay for this query; names the grant,
    the epsilon ``spent`` so far, the ``requested`` epsilon and the ``budget``."""

    def __init__(self, grant_id: str, spent: float, requested: float, budget: float) -> None:
        self.grant_id, self.spent, self.requested, self.budget = grant_id, spent, requested, budget
        super().__init__(f"privacy budget of grant {grant_id} exhausted: spent epsilon {spent:g} of "
                         f"{budget:g}, this query needs {requested:g}; ask the provider for a new grant")


class DpNotSupported(GrantRefused):
    """An aggregate cannot be released under differential privacy (MIN/MAX, or bounds that
    give it no noise); names the ``function`` and the ``column``."""

    def __init__(self, function: str, column: str, why: str) -> None:
        self.function, self.column = function, column
        super().__init__(f"{why}; ask for COUNT, SUM or AVG with public bounds instead", f"{function}:{column}")


# --- content store ---------------------------------------------------------------------------
class StoreError(DataPlaneError):
    """Content-store failure (unknown CID, missing block, bad request)."""


class BlockNotFound(StoreError):
    def __init__(self, cid: str) -> None:
        self.cid = cid
        super().__init__(f"block {cid} is not in the store")



# --- packed lattice (BFV) layer --------------------------------------------------------------
class BfvLayoutCouldWrap(PackingOverflow):
    """A BFV column's sums could wrap modulo its plaintext modulus: ``(high − low) · rows``
    needs ``needed_bits`` bits, the layout allows ``max_bits``. Refused before encryption (and
    before aggregating more rows than the modulus was sized for)."""

    def __init__(self, column: str, low: Any, high: Any, rows: int, needed_bits: int, max_bits: int) -> None:
        self.column, self.low, self.high = column, low, high
        self.needed_bits, self.max_bits = needed_bits, max_bits
        DataPlaneError.__init__(self, f"column {column!r}: {rows} rows of values in [{low}, {high}] could sum to "
                                f"a {needed_bits - 1}-bit total; the BFV plaintext modulus allows {max_bits} bits "
                                "(a sum could wrap) — declare a tighter range or use the Paillier layer")
        self.rows, self.max_rows = rows, 0


class UnreducedCiphertext(DataPlaneError):
    """The key service was asked to decrypt a BFV ciphertext that is not its own slot-reduced
    total (its other slots could hold rows); names the ``key_id`` and why. Nothing is decrypted."""

    def __init__(self, key_id: str, why: str) -> None:
        self.key_id, self.why = key_id, why
        super().__init__(f"refusing to decrypt under BFV key {key_id!r}: {why} (one decryption opens every "
                         "slot; only a ciphertext the key service reduced to one total is decrypted)")
