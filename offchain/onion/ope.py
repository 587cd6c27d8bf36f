"""The order layer: a keyed, stateless order-preserving encoding (OPE).

Construction: the plaintext domain [0, 2^in_bits) is bisected bit by bit; at each tree node
(depth d, prefix of x) an AES-256 PRF picks where the node's ciphertext interval is split
between its left and right halves (uniformly among the splits that leave each half at least as
many ciphertext points as plaintexts). The leaf's interval then gets a PRF-chosen point. The
result is a strictly increasing injective map into [0, 2^out_bits) that the key holder can
invert by walking the same tree. All PRF inputs of a value are known up front, so one AES call
per value (or per batch) does all the work; ciphertexts are fixed-width big-endian bytes, so
range filters, MIN and MAX are plain byte comparisons.

Leakage (stated, not hidden): like every deterministic OPE it reveals equality and the order
of all values, and - as Boldyreva et al. showed for random order-preserving functions - it
should be assumed to reveal the approximate magnitude (about the upper half of the bits) of
each value. We make no indistinguishability claim for the split distribution beyond that.
Inference attacks on such columns are practical when the value distribution is known (Naveed,
Kamara, Wright, CCS 2015); the default policy therefore never gives confidential fields this
layer."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from offchain.errors import KeyAuthenticationError, SlotRangeError


_LOCAL = threading.local()


def _ecb(key: bytes):
    """A per-thread AES-ECB encryptor per key (creating one costs more than a block)."""
    cache = getattr(_LOCAL, "enc", None)
    if cache is None:
        cache = _LOCAL.enc = {}
    enc = cache.get(key)
    if enc is None:
        if len(cache) > 64:
            cache.clear()
        enc = cache[key] = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc


@dataclass(frozen=True)
class OrderKey:
    """A 32-byte AES key plus the domain: signed ``in_bits`` integers -> ``out_bits`` codes."""

    key: bytes
    in_bits: int = 48
    out_bits: int = 96

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError("order key must be 32 bytes")
        if not 1 <= self.in_bits <= 120 or self.out_bits < self.in_bits + 16 or self.out_bits % 8:
            raise ValueError("need in_bits <= 120 and out_bits >= in_bits + 16, a multiple of 8")

    @property
    def key_id(self) -> str:
        return "ope:" + hashlib.sha256(b"tds-ope|" + self.key + bytes([self.in_bits, self.out_bits])
                                       ).hexdigest()[:24]

    @property
    def width(self) -> int:
        return self.out_bits // 8

    @property
    def low(self) -> int:
        return -(1 << (self.in_bits - 1))

    @property
    def high(self) -> int:
        return (1 << (self.in_bits - 1)) - 1

    @property
    def _top_bits(self) -> int:
        return min(14, self.in_bits // 2)

    def _top_state(self, enc, top: int) -> tuple[int, int]:
        """(lo, size) of the ciphertext interval after the first ``_top_bits`` levels —
        shared by every value with the same top bits, so it is cached per key."""
        cache = self.__dict__.setdefault("_cache", {})
        state = cache.get(top)
        if state is None:
            t, n = self._top_bits, self.in_bits
            prf = enc.update(b"".join(d.to_bytes(1, "big") + (top >> (t - d)).to_bytes(15, "big")
                                      for d in range(t)))
            lo, size = 0, 1 << self.out_bits
            for d in range(t):
                half = 1 << (n - d - 1)
                left = half + int.from_bytes(prf[16 * d:16 * d + 16], "big") % (size - 2 * half + 1)
                if (top >> (t - d - 1)) & 1:
                    lo, size = lo + left, size - left
                else:
                    size = left
            state = cache[top] = (lo, size)
        return state

    def _blocks(self, u: int) -> bytes:
        n = self.in_bits
        return b"".join(d.to_bytes(1, "big") + (u >> (n - d)).to_bytes(15, "big")
                        for d in range(self._top_bits, n + 1))

    def _walk(self, prf: bytes, u: int, lo: int, size: int) -> int:
        """Walk the lower levels for plaintext ``u`` from its cached top state."""
        n, t = self.in_bits, self._top_bits
        for j, d in enumerate(range(t, n)):
            half = 1 << (n - d - 1)
            left = half + int.from_bytes(prf[16 * j:16 * j + 16], "big") % (size - 2 * half + 1)
            if (u >> (n - d - 1)) & 1:
                lo, size = lo + left, size - left
            else:
                size = left
        j = n - t
        return lo + int.from_bytes(prf[16 * j:16 * j + 16], "big") % size

    def encrypt(self, x: int, column: str = "?") -> bytes:
        """Order-preserving code of a signed integer as fixed-width big-endian bytes."""
        return self.encrypt_many([x], column)[0]

    def encrypt_many(self, values: Sequence[int], column: str = "?") -> list[bytes]:
        """Batch encryption: one AES call for the whole batch."""
        for i, x in enumerate(values):
            if isinstance(x, bool) or not isinstance(x, int) or not self.low <= x <= self.high:
                raise SlotRangeError(column, i if len(values) > 1 else None, x, self.low, self.high)
        low, width, shift = self.low, self.width, self.in_bits - self._top_bits
        n1 = 16 * (self.in_bits - self._top_bits + 1)
        us = [x - low for x in values]
        enc = _ecb(self.key)
        prf = enc.update(b"".join(self._blocks(u) for u in us))
        top, walk = self._top_state, self._walk
        out = []
        for i, u in enumerate(us):
            lo, size = top(enc, u >> shift)
            out.append(walk(prf[i * n1:(i + 1) * n1], u, lo, size).to_bytes(width, "big"))
        return out

    def decrypt(self, ciphertext: bytes) -> int:
        """Invert the code; a code not produced under this key is refused."""
        code = int.from_bytes(ciphertext, "big")
        if len(ciphertext) != self.width:
            raise KeyAuthenticationError(self.key_id, "order-layer ciphertext")
        enc = _ecb(self.key)
        # walk with PRF blocks computed level by level (the prefix is learned as we go)
        n = self.in_bits
        lo, size, u = 0, 1 << self.out_bits, 0
        for d in range(n):
            half = 1 << (n - d - 1)
            r = int.from_bytes(enc.update(d.to_bytes(1, "big") + u.to_bytes(15, "big")), "big")
            left = half + r % (size - 2 * half + 1)
            bit = int(code >= lo + left)
            if bit:
                lo, size = lo + left, size - left
            else:
                size = left
            u = u << 1 | bit
        leaf = int.from_bytes(enc.update(n.to_bytes(1, "big") + u.to_bytes(15, "big")), "big") % size
        if lo + leaf != code:
            raise KeyAuthenticationError(self.key_id, "order-layer ciphertext")
        return u + self.low


def in_range(codes: Iterable[bytes], low: bytes | None, high: bytes | None) -> list[int]:
    """Row indices whose code lies in [low, high] (either bound may be open)."""
    if low is None and high is None:
        return [i for i, _ in enumerate(codes)]
    if low is None:
        return [i for i, c in enumerate(codes) if c <= high]  # type: ignore[operator]
    if high is None:
        return [i for i, c in enumerate(codes) if c >= low]
    return [i for i, c in enumerate(codes) if low <= c <= high]
