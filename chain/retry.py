"""Retrying calls to a node that may go away: exponential backoff with jitter, bounded."""
from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

T = TypeVar("T")

TRANSIENT = (ConnectionError, TimeoutError, OSError)


def is_transient(exc: BaseException) -> bool:
    """Network-level failures (node down, timeout), not contract reverts."""
    if isinstance(exc, TRANSIENT):
        return True
    name = type(exc).__name__
    return name in {"ConnectionError", "ReadTimeout", "ConnectTimeout", "Timeout", "ProtocolError",
                    "RemoteDisconnected", "TimeExhausted"}


def with_backoff(fn: Callable[[], T], *, attempts: int = 8, base: float = 0.1, cap: float = 5.0,
                 on_retry: Callable[[int, BaseException], None] | None = None) -> T:
    """Call ``fn``; on a transient failure sleep base·2^k (±25 %, at most ``cap``) and retry."""
    for k in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or k == attempts - 1:
                raise
            if on_retry:
                on_retry(k + 1, exc)
            delay = min(cap, base * 2 ** k) * random.uniform(0.75, 1.25)
            time.sleep(delay)
    raise AssertionError("unreachable")
