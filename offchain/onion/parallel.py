"""Bulk Paillier encryption across processes (fork: children inherit the key and its tables)."""
from __future__ import annotations

import multiprocessing as mp
import os
from typing import Callable, Sequence

from gmpy2 import mpz

from offchain.onion.paillier import PaillierPrivateKey

_KEY: PaillierPrivateKey | None = None
_BATCH = 2048


def _encrypt_batch(plains: Sequence[int]) -> list[int]:
    assert _KEY is not None
    return [int(_KEY.encrypt(m)) for m in plains]


def paillier_encrypt_all(key: PaillierPrivateKey, plains: Sequence[int], processes: int = 1,
                         progress: Callable[[int], None] | None = None) -> list[mpz]:
    """Encrypt every plaintext with fresh randomness; ``processes > 1`` forks workers."""
    global _KEY
    tick = progress or (lambda k: None)
    key._crt_tables()  # build once, before forking
    batches = [plains[i:i + _BATCH] for i in range(0, len(plains), _BATCH)]
    if processes <= 1 or len(plains) < 2 * _BATCH or "fork" not in mp.get_all_start_methods():
        out: list[mpz] = []
        for b in batches:
            out.extend(key.encrypt(m) for m in b)
            tick(len(b))
        return out
    _KEY = key
    try:
        with mp.get_context("fork").Pool(min(processes, os.cpu_count() or 1)) as pool:
            out = []
            for res in pool.imap(_encrypt_batch, batches):
                out.extend(mpz(c) for c in res)
                tick(len(res))
            return out
    finally:
        _KEY = None


def _order_batch(args: tuple) -> list[bytes]:
    key, values, column = args
    return key.encrypt_many(values, column)


def order_encrypt_all(key, values: Sequence[int], column: str, processes: int = 1) -> list[bytes]:
    """Order-layer codes for many values; ``processes > 1`` splits the work over a pool."""
    if processes <= 1 or len(values) < 4 * _BATCH or "fork" not in mp.get_all_start_methods():
        return key.encrypt_many(values, column)
    step = 16384
    jobs = [(key, values[i:i + step], column) for i in range(0, len(values), step)]
    with mp.get_context("fork").Pool(min(processes, os.cpu_count() or 1)) as pool:
        out: list[bytes] = []
        for part in pool.imap(_order_batch, jobs):
            out.extend(part)
        return out
