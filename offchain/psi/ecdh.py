"""The pure crypto of ECDH-PSI over X25519 (RFC 7748), on the u-coordinate.

* ``hash_to_point(session, id)``: SHA-512 over a domain tag, the session id (length-prefixed)
  and the UTF-8 ID; the first 32 bytes with bit 255 cleared are a u-coordinate. It lies on
  Curve25519 or on its quadratic twist; X25519 is twist-secure and the clamped scalar (a
  multiple of 8) clears the cofactor, so after one blinding every value is in a prime-order
  subgroup where DDH is hard.
* ``blind(points, k)``: ``X25519(k, u)`` for each u. Blinding commutes:
  ``X25519(a, X25519(b, u)) == X25519(b, X25519(a, u))`` (both are ``[clamp(a)·clamp(b)]P``).
  A low-order input gives the all-zero output, which ``cryptography`` refuses; we raise
  :class:`LowOrderPoint` naming the index.
* Batches go to worker processes in chunks (``processes``); points travel as one blob of
  32-byte values to keep pickling cheap. One pool per process count is kept for the life of
  the interpreter (forkserver start, safe with the party threads of a session).
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from array import array
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from offchain.psi.errors import LowOrderPoint

POINT = 32
DST = b"tds-psi/v1/hash-to-x25519"
_MIN_CHUNK, _MAX_CHUNK = 1024, 16384
_pools: dict[int, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def _prefix(session: bytes) -> hashlib._Hash:
    h = hashlib.sha512(DST)
    h.update(len(session).to_bytes(2, "big") + session)
    return h


def hash_to_point(session: bytes, value: str) -> bytes:
    """The u-coordinate an ID maps to in this session (domain-separated SHA-512)."""
    h = _prefix(session)
    h.update(value.encode("utf-8"))
    d = h.digest()
    return d[:31] + bytes((d[31] & 0x7F,))


def new_scalar() -> bytes:
    """A fresh secret scalar for one party in one session (X25519 clamps it)."""
    return os.urandom(32)


def split(blob: bytes) -> list[bytes]:
    """A blob of concatenated points as a list of 32-byte values."""
    if len(blob) % POINT:
        raise ValueError(f"a point blob is a multiple of {POINT} bytes, not {len(blob)}")
    return [blob[i:i + POINT] for i in range(0, len(blob), POINT)]


def random_order(n: int) -> list[int]:
    """A uniformly random permutation of range(n): indices sorted by 64-bit keys from the OS
    CSPRNG (a tie has probability < n²/2⁶⁵)."""
    keys = array("Q", os.urandom(8 * n))
    return sorted(range(n), key=keys.__getitem__)


def shuffle_blob(blob: bytes) -> bytes:
    """The points of ``blob`` in a uniformly random order."""
    points = split(blob)
    return b"".join([points[i] for i in random_order(len(points))])


# --- workers (module-level so worker processes can import them) -------------------------------
def _blind_chunk(scalar: bytes, blob: bytes) -> tuple[bytes, int]:
    """(blinded blob, -1), or (b"", index of the first low-order point)."""
    exchange = X25519PrivateKey.from_private_bytes(scalar).exchange
    load = X25519PublicKey.from_public_bytes
    out = []
    for i in range(0, len(blob), POINT):
        try:
            out.append(exchange(load(blob[i:i + POINT])))
        except ValueError:
            return b"", i // POINT
    return b"".join(out), -1


def _hash_blind_chunk(session: bytes, scalar: bytes, values: list[str]) -> tuple[bytes, int]:
    exchange = X25519PrivateKey.from_private_bytes(scalar).exchange
    load = X25519PublicKey.from_public_bytes
    prefix = _prefix(session)
    out = []
    for i, value in enumerate(values):
        h = prefix.copy()
        h.update(value.encode("utf-8"))
        d = h.digest()
        try:
            out.append(exchange(load(d[:31] + bytes((d[31] & 0x7F,)))))
        except ValueError:
            return b"", i
    return b"".join(out), -1


def _pool(processes: int) -> ProcessPoolExecutor:
    with _pools_lock:
        pool = _pools.get(processes)
        if pool is None:
            pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("forkserver"))
            _pools[processes] = pool
        return pool


def shutdown_pools() -> None:
    """Stop the worker processes (they are also stopped at interpreter exit)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.shutdown(wait=True)
        _pools.clear()


def _chunk(n: int, processes: int) -> int:
    return max(_MIN_CHUNK, min(_MAX_CHUNK, -(-n // (4 * processes))))


def _gather(results: list[tuple[bytes, int]], chunk: int) -> bytes:
    for c, (_, bad) in enumerate(results):
        if bad >= 0:
            raise LowOrderPoint(c * chunk + bad)
    return b"".join(blob for blob, _ in results)


def _check_scalar(scalar: bytes) -> None:
    if not isinstance(scalar, bytes) or len(scalar) != 32:
        raise ValueError("an X25519 scalar is 32 bytes")


def blind_blob(blob: bytes, scalar: bytes, processes: int = 1) -> bytes:
    """:func:`blind` over a blob of concatenated points; returns a blob in the same order."""
    _check_scalar(scalar)
    n = len(blob) // POINT
    if len(blob) % POINT:
        raise ValueError(f"a point blob is a multiple of {POINT} bytes, not {len(blob)}")
    if processes <= 1 or n <= _MIN_CHUNK:
        return _gather([_blind_chunk(scalar, blob)], n)
    step = _chunk(n, processes) * POINT
    parts = [blob[i:i + step] for i in range(0, len(blob), step)]
    return _gather(list(_pool(processes).map(_blind_chunk, [scalar] * len(parts), parts)), step // POINT)


def blind(points: Sequence[bytes], scalar: bytes, processes: int = 1) -> list[bytes]:
    """``X25519(scalar, u)`` for every point, in order, on ``processes`` worker processes."""
    if any(len(p) != POINT for p in points):
        raise ValueError(f"every point is {POINT} bytes")
    return split(blind_blob(b"".join(points), scalar, processes))


def hash_and_blind(session: bytes, values: Sequence[str], scalar: bytes, processes: int = 1) -> bytes:
    """``blind(hash_to_point(session, v) for v in values)`` as one blob; hashing runs in the
    workers too."""
    _check_scalar(scalar)
    values = list(values)
    n = len(values)
    if processes <= 1 or n <= _MIN_CHUNK:
        return _gather([_hash_blind_chunk(session, scalar, values)], max(n, 1))
    step = _chunk(n, processes)
    parts = [values[i:i + step] for i in range(0, n, step)]
    results = _pool(processes).map(_hash_blind_chunk, [session] * len(parts), [scalar] * len(parts), parts)
    return _gather(list(results), step)
