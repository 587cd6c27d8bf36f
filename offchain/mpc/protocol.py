"""The protocol layer the statistics are written on: secure types, loading shares, arithmetic,
comparison and logic building blocks, sorting, square roots, the k-rule and share output.

Node side only: importing this module starts MPyC's runtime from ``sys.argv`` (``node.py`` sets
it first). Two secure fixed-point types share the work:

* ``Row = SecFxp(80, 16)`` over ``ROW_PRIME`` — the providers' inputs; sums, dot products and
  comparisons (``CMP_BITS``-bit, so inputs need ``|x| < 2**30``) run here;
* ``Wide = SecFxp(112, 56)`` over ``WIDE_PRIME`` — a handful of aggregates are converted here to
  finish means, variances, square roots and correlations at 2**-56 resolution.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np
from mpyc import runtime as _runtime_module
from mpyc import thresha
from mpyc.runtime import mpc

from offchain.mpc import sharing as sh

Row = mpc.SecFxp(sh.ROW_BITS, sh.FRAC_BITS, p=sh.ROW_PRIME)
Wide = mpc.SecFxp(sh.WIDE_BITS, sh.WIDE_FRAC, p=sh.WIDE_PRIME)
SecArray = Any          # an mpyc secure fixed-point array
Secure = Any            # an mpyc secure fixed-point number or array


# --- faster randomness (same CSPRNG, os.urandom; fewer system calls) ----------------------------
class _BufferedSecrets:
    """Stand-in for the ``secrets`` module inside MPyC: small ``randbits``/``randbelow`` draws
    come from a buffer of os.urandom words instead of one system call each (MPyC draws one
    per random bit when it makes random bits without PRSS)."""

    def __init__(self) -> None:
        self._pool: list[int] = []

    def randbits(self, k: int) -> int:
        if k > 64:
            return secrets.randbits(k)
        if not self._pool:
            self._pool = np.frombuffer(os.urandom(8 * 8192), dtype=np.uint64).tolist()
        return self._pool.pop() >> (64 - k) if k else 0

    def randbelow(self, n: int) -> int:
        if n.bit_length() > 64:
            return secrets.randbelow(n)
        k = n.bit_length()
        while (r := self.randbits(k)) >= n:
            pass
        return r

    def __getattr__(self, name: str) -> Any:
        return getattr(secrets, name)


_np_random_split = thresha.np_random_split


def _fast_random_split(field: Any, s: Any, t: int, m: int) -> np.ndarray:
    """MPyC's ``np_random_split`` with the random coefficients drawn in one ``os.urandom`` call
    instead of one ``secrets.randbelow`` per element (the hot spot of every resharing)."""
    p = field.modulus
    if not isinstance(p, int):
        return _np_random_split(field, s, t, m)
    s = s.value if isinstance(s, field.array) else s
    shares = sh.shamir_split(np.asarray(s, dtype=object).reshape(-1), t, m, p)
    return shares.reshape((m,) + np.shape(s))


thresha.np_random_split = _fast_random_split
_runtime_module.secrets = _BufferedSecrets()


# --- loading, constants, output ------------------------------------------------------------------
def load(shares: np.ndarray, *, integral: bool = False) -> SecArray:
    """This node's shares (field representatives) as a secure Row array."""
    return Row.array(Row.field.array(np.asarray(shares, dtype=object), check=False), integral=integral)


def concat(arrays: Sequence[SecArray], axis: int = 0) -> SecArray:
    return arrays[0] if len(arrays) == 1 else mpc.np_concatenate(tuple(arrays), axis=axis)


async def share_all(xs: Sequence[Secure]) -> list[tuple[list[int], list[int], int, int]]:
    """Re-randomise every output (a fresh degree-t sharing, all in one round) and return this
    node's share of each as (flat shares, shape, prime, frac) — never a value itself."""
    fresh = [mpc._reshare(x) for x in xs]
    out = []
    for x, y in zip(xs, fresh):
        stype = type(x).sectype if isinstance(x, mpc.SecureArray) else type(x)
        v = (await mpc.gather(y)).value
        shape = list(np.shape(v)) if isinstance(v, np.ndarray) else []
        flat = np.asarray(v, dtype=object).reshape(-1) if shape else [v]
        out.append(([int(e) for e in flat], shape, stype.field.modulus, stype.frac_length))
    return out


# --- arithmetic and logic ------------------------------------------------------------------------
def total(a: SecArray, axis: int | None = None) -> Secure:
    """Sum of shares: local, no communication."""
    return mpc.np_sum(a, axis=axis)


def dot(a: SecArray, b: SecArray) -> Secure:
    """Inner/matrix product: local products, one resharing of the result only."""
    return a @ b


def select(c: Secure, a: Secure, b: Secure) -> Secure:
    """``a`` where the secret bit ``c`` is 1, else ``b`` (one multiplication)."""
    return b + c * (a - b)


def and_(a: Secure, b: Secure) -> Secure:
    return a * b


def or_(a: Secure, b: Secure) -> Secure:
    return a + b - a * b


def not_(a: Secure) -> Secure:
    return 1 - a


def less(a: Secure, b: Secure, bits: int = sh.CMP_BITS) -> Secure:
    """Secret bit(s) ``a < b``, elementwise; ``|a - b| * 2**f`` must fit in ``bits`` bits."""
    d = a - b
    if isinstance(d, mpc.SecureArray):
        return mpc.np_sgn(d, l=bits, LT=True)
    return mpc.sgn(d, l=bits, LT=True)


def equal(a: Secure, b: Secure, bits: int = sh.CMP_BITS) -> Secure:
    """Secret bit(s) ``a == b``, elementwise."""
    d = a - b
    if isinstance(d, mpc.SecureArray):
        return mpc.np_sgn(d, l=bits, EQ=True)
    return mpc.sgn(d, l=bits, EQ=True)


# --- order statistics ----------------------------------------------------------------------------
def extreme(a: SecArray, largest: bool) -> Secure:
    """Minimum or maximum by a tournament: n-1 comparisons in ceil(log2 n) vectorised rounds."""
    while (n := a.shape[0]) > 1:
        odd = n % 2
        x, y = a[odd:(n + 1) // 2], a[(n + 1) // 2:]
        c = less(x, y) if largest else less(y, x)        # 1 where y wins
        m = x + c * (y - x)
        a = concat([a[:1], m]) if odd else m
    return a[0]


def _batcher_stages(n: int) -> list[list[tuple[int, int]]]:
    """Compare-exchange pairs of Batcher's odd-even merge sort on n (a power of two) wires."""
    stages, p = [], 1
    while p < n:
        k = p
        while k >= 1:
            pairs = [(i + j, i + j + k) for j in range(k % p, n - k, 2 * k)
                     for i in range(min(k, n - j - k)) if (i + j) // (2 * p) == (i + j + k) // (2 * p)]
            stages.append(pairs)
            k //= 2
        p *= 2
    return stages


def sort(a: SecArray, pad: float = sh.MAX_ABS) -> SecArray:
    """Ascending secure sort (Batcher's network, one vectorised comparison per stage);
    padded with the public value ``pad`` up to a power of two, then cut back to n."""
    n = a.shape[0]
    size = 1 << max(0, (n - 1).bit_length())
    if size > n:
        a = concat([a, Row.array(np.full(size - n, pad))])
    for pairs in _batcher_stages(size):
        lo = np.array([i for i, _ in pairs])
        hi = np.array([j for _, j in pairs])
        rest = np.setdiff1d(np.arange(size), np.concatenate((lo, hi)))
        x, y = a[lo], a[hi]
        d = less(y, x) * (y - x)                         # swap where y < x
        parts = [x + d, y - d] + ([a[rest]] if rest.size else [])
        order = np.concatenate((lo, hi, rest))
        a = concat(parts)[np.argsort(order)]
    return a[:n]


# --- finishing in the wide type -------------------------------------------------------------------
def widen(xs: Sequence[Secure]) -> list[Secure]:
    """Convert Row scalars to Wide (one masked opening per value, statistically hiding)."""
    return mpc.convert(list(xs), Wide)


def invsqrt(a: Secure, iterations: int = 4) -> Secure:
    """1/sqrt(a) for a Wide ``a > 0``: secret normalisation b = a * 2**-e in [1/2, 1) from
    the bits of ``a``, Newton's iteration on b, then times 2**(-e/2) (both from one find)."""
    l, f = Wide.bit_length, Wide.frac_length
    bits = mpc.to_bits(a)[:-1]
    bits.reverse()                                     # high to low, sign bit dropped
    v, w = mpc.find(bits, 1, e="len(x)-1",
                    f=lambda i: (2.0 ** (i + f - l + 1), 2.0 ** ((i + f - l + 1) / 2)))
    v.integral = w.integral = False                    # find() marks them integral: they are not
    b = a * v
    y = 1.8 - 0.8 * b                                  # linear start, error < 5% on [1/2, 1)
    for _ in range(iterations):                        # error e -> 1.5 e**2
        y = y * (1.5 - 0.5 * b * (y * y))
    return y * w


def sqrt(a: Secure) -> Secure:
    return a * invsqrt(a)


# --- the release rule ----------------------------------------------------------------------------
async def all_at_least(counts: SecArray, k: int) -> bool:
    """Whether every count is >= k; only this one bit is opened (not which, not by how much)."""
    below = less(counts, Row.array(np.full(counts.shape, float(k))))
    return bool(await mpc.is_zero_public(total(below)))
