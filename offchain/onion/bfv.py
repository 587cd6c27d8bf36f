"""Packed lattice HOM layer: BFV (Microsoft SEAL through TenSEAL's ``sealapi``) with SIMD slots.

One ciphertext holds ``SLOTS`` = 8192 rows of one column (batching: the plaintext ring
Z_t[x]/(x^N + 1) splits into N slots when the prime t ≡ 1 mod 2N). The worker multiplies a
block by a plaintext 0/1 mask (the selection it derived from the DET / order layers) and adds
blocks slot-wise; the key service rotates and sums the slots to one total before it decrypts
(:mod:`offchain.onion.bfvkey`).

**No wrap.** Each slot holds ``value − low`` (fixed point scaled by 10^decimals), so every
partial sum is non-negative and bounded by ``(high − low) · max_rows``, with ``low``/``high``
the column's declared range (schema minimum / maximum, never the data) and ``max_rows`` the
table's row count. The plaintext modulus is a batching prime t with that bound < t, so no sum
a query can form — any selection, any group, the total after rotation — wraps mod t.
:class:`~offchain.errors.BfvLayoutCouldWrap` refuses a layout whose bound needs more than
``MAX_T_BITS`` bits (the noise budget of these parameters cannot carry a larger t).

**Parameters** (one set, 128-bit security per the HE standard, SEAL's ``tc128``): N = 8192,
coefficient modulus 54+54+55+55 = 218 bits (the maximum for N = 8192), t a 20–50-bit batching
prime sized per column. Fresh ciphertexts are symmetric-key encryptions stored *seeded* (the
second polynomial is replaced by its PRNG seed): ~131 KiB … 180 KiB per 8192 rows.

Ciphertext bytes are SEAL's own serialisation (zstd-compressed, deterministic); TenSEAL's
bindings read and write SEAL objects only through file paths, so :func:`ct_to_bytes` /
:func:`ct_from_bytes` pass them through a private temporary file (mode 0600, on tmpfs when
available, unlinked at once). Only ciphertexts take that path; secret keys never touch a file."""
from __future__ import annotations

import functools
import os
import tempfile
import threading
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from typing import Any, Sequence

import numpy as np

from offchain.errors import BfvLayoutCouldWrap, SlotRangeError
from offchain.onion.packing import Slot

POLY_DEGREE = 8192
SLOTS = POLY_DEGREE
COEFF_BITS = (54, 54, 55, 55)
MIN_T_BITS = 20
MAX_T_BITS = 50
SCHEME = "bfv"


class _LazySeal:
    """``tenseal.sealapi``, imported on first use (it costs ~0.35 s; most commands never need it)."""

    def __getattr__(self, name: str) -> Any:
        import tenseal.sealapi as real
        return getattr(real, name)


seal: Any = _LazySeal()


@dataclass(frozen=True)
class BfvParams:
    """Public encryption parameters (everything a worker needs to compute on ciphertexts)."""

    poly_degree: int
    coeff_bits: tuple[int, ...]
    plain_modulus: int

    @property
    def slots(self) -> int:
        return self.poly_degree

    @property
    def t_bits(self) -> int:
        return self.plain_modulus.bit_length()

    def to_dict(self) -> dict:
        return {"poly_degree": self.poly_degree, "coeff_bits": list(self.coeff_bits),
                "plain_modulus": self.plain_modulus}

    @classmethod
    def from_dict(cls, d: dict) -> "BfvParams":
        return cls(int(d["poly_degree"]), tuple(int(b) for b in d["coeff_bits"]), int(d["plain_modulus"]))

    @classmethod
    def for_bits(cls, t_bits: int) -> "BfvParams":
        """The batching prime of exactly ``t_bits`` bits that SEAL picks for N = 8192."""
        t = seal.PlainModulus.Batching(POLY_DEGREE, t_bits).value()
        return cls(POLY_DEGREE, COEFF_BITS, int(t))


@functools.lru_cache(maxsize=16)
def context(params: BfvParams) -> Any:
    """A SEAL context for ``params`` (no keys); one per process and parameter set."""
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(params.poly_degree)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(params.poly_degree, list(params.coeff_bits)))
    parms.set_plain_modulus(params.plain_modulus)
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    if not ctx.parameters_set():
        raise ValueError(f"SEAL refuses BFV parameters {params}: {ctx.parameters_error_message()}")
    return ctx


@dataclass(frozen=True)
class BfvColumn:
    """One BFV column: its slot range and the parameters sized so its sums cannot wrap."""

    slot: Slot
    max_rows: int
    params: BfvParams

    @classmethod
    def create(cls, slot: Slot, max_rows: int) -> "BfvColumn":
        """Size t for ``(high − low) · max_rows``; refuse a layout that could wrap."""
        bound = (slot.high - slot.low) * max(1, max_rows)
        need = max(MIN_T_BITS, bound.bit_length() + 1)   # t >= 2^(need-1) > bound
        if need > MAX_T_BITS:
            raise BfvLayoutCouldWrap(slot.name, slot.low_value, slot.high_value, max_rows, need, MAX_T_BITS)
        return cls(slot, max_rows, BfvParams.for_bits(need))

    @property
    def bound(self) -> int:
        return (self.slot.high - self.slot.low) * self.max_rows

    def check_rows(self, rows: int) -> None:
        """Refuse to aggregate more rows than the modulus was sized for."""
        if rows > self.max_rows:
            raise BfvLayoutCouldWrap(self.slot.name, self.slot.low_value, self.slot.high_value, rows,
                                     ((self.slot.high - self.slot.low) * rows).bit_length() + 1,
                                     self.params.t_bits)

    def encode_column(self, values: Sequence[Any], lines: Sequence[int] | None = None) -> np.ndarray:
        """Scaled, offset slot values (uint64) for every row; range/precision checked first."""
        s = self.slot
        out = np.empty(len(values), dtype=np.uint64)
        for i, v in enumerate(values):
            if s.decimals == 0 and type(v) is int and s.low <= v <= s.high:
                out[i] = v - s.low
            else:
                out[i] = s.to_int(v, lines[i] if lines else i) - s.low
        return out

    def total(self, slot_sum: int, rows: int) -> int | Decimal:
        """The plaintext SUM from the opened slot total: undo the offset, then the scale."""
        if not 0 <= slot_sum <= self.bound:
            raise SlotRangeError(self.slot.name, None, slot_sum, 0, self.bound)
        total = slot_sum + rows * self.slot.low
        return Decimal(total).scaleb(-self.slot.decimals) if self.slot.decimals else total

    def row_value(self, slot_value: int) -> int | Decimal:
        """One row's value from its slot (provider-side re-encryption only)."""
        value = int(slot_value) + self.slot.low
        return Decimal(value).scaleb(-self.slot.decimals) if self.slot.decimals else value

    def to_dict(self) -> dict:
        return {"scheme": SCHEME, "slot": self.slot.to_dict(), "max_rows": self.max_rows,
                "params": self.params.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "BfvColumn":
        s = d["slot"]
        return cls(Slot(s["name"], int(s["low"]), int(s["high"]), int(s["decimals"])), int(d["max_rows"]),
                   BfvParams.from_dict(d["params"]))


# --- ciphertext bytes ---------------------------------------------------------------------------
_TMP_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
_counter = count()
_lock = threading.Lock()


def _tmp_path() -> str:
    with _lock:
        n = next(_counter)
    return os.path.join(_TMP_DIR, f"tds-bfv-{os.getpid()}-{threading.get_ident()}-{n}")


def saved_bytes(obj: Any) -> bytes:
    """Bytes of any SEAL object with ``save(path)`` (ciphertexts, seeded ciphertexts, keys)."""
    path = _tmp_path()
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        obj.save(path)
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


def load_into(obj: Any, ctx: Any, raw: bytes) -> Any:
    """Fill a SEAL object (``Ciphertext()``, ``SecretKey()``) from bytes; returns it."""
    path = _tmp_path()
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    try:
        obj.load(ctx, path)
    finally:
        os.unlink(path)
    return obj


def ct_to_bytes(ct: Any) -> bytes:
    return saved_bytes(ct)


def ct_from_bytes(params: BfvParams, raw: bytes | memoryview) -> Any:
    return load_into(seal.Ciphertext(), context(params), bytes(raw))


class BfvEvaluator:
    """Public-side arithmetic on one parameter set: masks, plaintext products, sums."""

    def __init__(self, params: BfvParams) -> None:
        self.params = params
        self.ctx = context(params)
        self.ev = seal.Evaluator(self.ctx)
        self.encoder = seal.BatchEncoder(self.ctx)

    def load(self, raw: bytes | memoryview, ntt: bool = True) -> Any:
        ct = ct_from_bytes(self.params, raw)
        if ntt:
            self.ev.transform_to_ntt_inplace(ct)
        return ct

    def mask(self, bits: np.ndarray, parms_id: Any) -> Any:
        """A 0/1 slot mask as an NTT-form plaintext, ready to multiply an NTT-form block."""
        full = np.zeros(self.params.slots, dtype=np.int64)
        full[:len(bits)] = bits
        plain, out = seal.Plaintext(), seal.Plaintext()
        self.encoder.encode(full.tolist(), plain)
        self.ev.transform_to_ntt(plain, parms_id, out)
        return out

    def masked(self, ct: Any, mask: Any) -> Any:
        out = seal.Ciphertext()
        self.ev.multiply_plain(ct, mask, out)
        return out

    def add_into(self, acc: Any | None, ct: Any, owned: bool) -> Any:
        """acc + ct. With acc None the sum is ct itself if the caller ``owned`` it (a fresh
        product), else a copy (a cached block must never be modified)."""
        if acc is None:
            if owned:
                return ct
            out = seal.Ciphertext()
            self.ev.negate(ct, out)
            self.ev.negate_inplace(out)
            return out
        self.ev.add_inplace(acc, ct)
        return acc

    def finish(self, acc: Any | None) -> bytes:
        """Canonical bytes of an aggregate (coefficient form); b"" encodes "no rows"."""
        if acc is None:
            return b""
        if acc.is_ntt_form():
            self.ev.transform_from_ntt_inplace(acc)
        return ct_to_bytes(acc)

    def add_bytes(self, a: bytes, b: bytes) -> bytes:
        """Sum of two finished aggregates (exact: the same bytes as one computation)."""
        if not a or not b:
            return a or b
        x, y = ct_from_bytes(self.params, a), ct_from_bytes(self.params, b)
        self.ev.add_inplace(x, y)
        return ct_to_bytes(x)


@functools.lru_cache(maxsize=16)
def evaluator(params: BfvParams) -> BfvEvaluator:
    return BfvEvaluator(params)


def blocks(n_rows: int, slots: int = SLOTS) -> list[tuple[int, int]]:
    """[start, stop) row ranges of the ciphertext blocks of a chunk of ``n_rows`` rows."""
    return [(s, min(n_rows, s + slots)) for s in range(0, n_rows, slots)]
