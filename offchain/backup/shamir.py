"""Shamir k-of-n sharing of a 32-byte backup key, with shares as one line of text each.

The field arithmetic is :mod:`offchain.mpc.sharing`'s (``shamir_split`` / ``reconstruct``),
over the prime 2^256 + 297 (the smallest above 2^256, so every 32-byte key is a field element).
A share reads ``tdsbk1-<k>of<n>-<x>-<key id>-<y, 66 hex>-<check>``: the key id (16 hex digits of
a hash of the key, also in the archive header) ties a share to one backup, and the check (8 hex
digits of SHA-256 over the rest) catches a mistyped share before any arithmetic. Fewer than k
shares reveal nothing about the key and are refused; more than k must all lie on one polynomial.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np

from offchain.backup.errors import ShareError
from offchain.mpc.errors import OutputRefused
from offchain.mpc.sharing import reconstruct, shamir_split

PRIME = 2 ** 256 + 297
KEY_BYTES = 32
MAX_SHARES = 255
_SHARE = re.compile(r"^tdsbk1-(\d+)of(\d+)-(\d+)-([0-9a-f]{16})-([0-9a-f]{66})-([0-9a-f]{8})$")


def key_id(key: bytes) -> str:
    """The public fingerprint of a backup key (16 hex digits; reveals nothing useful about it)."""
    return hashlib.sha256(b"tds-backup-key-id\0" + key).hexdigest()[:16]


def _check(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:8]


def split_key(key: bytes, k: int, n: int) -> list[str]:
    """``n`` text shares of ``key``, any ``k`` of which recover it (2 <= k <= n <= 255)."""
    if len(key) != KEY_BYTES:
        raise ShareError(f"a backup key is {KEY_BYTES} bytes, not {len(key)}")
    if not 2 <= k <= n <= MAX_SHARES:
        raise ShareError(f"{k} of {n}: need 2 <= k <= n <= {MAX_SHARES}")
    ys = shamir_split(np.array([int.from_bytes(key, "big")], dtype=object), k - 1, n, PRIME)
    kid, out = key_id(key), []
    for x in range(1, n + 1):
        body = f"tdsbk1-{k}of{n}-{x}-{kid}-{int(ys[x - 1][0]):066x}"
        out.append(f"{body}-{_check(body)}")
    return out


def parse_share(text: str) -> tuple[int, int, int, str, int]:
    """``(k, n, x, key id, y)`` of one share; a malformed or mistyped one is :class:`ShareError`."""
    m = _SHARE.match(text.strip().lower())
    if m is None:
        raise ShareError(f"share {text.strip()[:24]!r}…: not a tdsbk1 share (tdsbk1-KofN-X-KEYID-Y-CHECK)")
    k, n, x, kid, y, check = m.groups()
    if _check(text.strip().lower().rsplit("-", 1)[0]) != check:
        raise ShareError(f"share {x} of {n} (key {kid}) is mistyped: its check digits do not match")
    k_, n_, x_ = int(k), int(n), int(x)
    if not (2 <= k_ <= n_ and 1 <= x_ <= n_):
        raise ShareError(f"share {x} of {n} (key {kid}): impossible numbers {k}of{n}")
    return k_, n_, x_, kid, int(y, 16)


def combine_shares(shares: list[str], expect_key_id: str | None = None) -> bytes:
    """The key behind ``shares`` (at least k of one split); refuses too few, mixed or
    inconsistent shares with a :class:`ShareError` saying which."""
    if not shares:
        raise ShareError("no shares given")
    parsed = [parse_share(s) for s in shares]
    k, n, _, kid, _ = parsed[0]
    points: dict[int, list[int]] = {}
    for k_, n_, x, kid_, y in parsed:
        if (k_, n_, kid_) != (k, n, kid):
            raise ShareError(f"share {x} belongs to key {kid_} ({k_} of {n_}), not key {kid} ({k} of {n})")
        if x in points and points[x] != [y]:
            raise ShareError(f"two different shares numbered {x} for key {kid}")
        points[x] = [y]
    if expect_key_id is not None and kid != expect_key_id:
        raise ShareError(f"the shares are for backup key {kid}; this archive needs key {expect_key_id}")
    if len(points) < k:
        raise ShareError(f"{len(points)} distinct share(s) of key {kid}; {k} of {n} are needed")
    try:
        secret = reconstruct(points, PRIME, k - 1)[0]
    except OutputRefused:
        raise ShareError(f"the shares of key {kid} are inconsistent: one of them was altered") from None
    if secret >= 1 << (8 * KEY_BYTES):
        raise ShareError(f"the shares of key {kid} do not recombine to a key: one of them was altered")
    key = secret.to_bytes(KEY_BYTES, "big")
    if key_id(key) != kid:
        raise ShareError(f"the shares do not recombine to key {kid}: one of them was altered")
    return key
