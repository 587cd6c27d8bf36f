"""Synchronous access to didkit's async API, with the crash-on-exit workaround in one place.

didkit 0.3.3 exposes coroutines that must be awaited inside a running loop, and plain
scripts often abort at interpreter exit after async didkit calls unless the loop gets a short
real sleep after the last call (see ../shared/TOOLCHAIN.md). We run every call on one private
event loop in a daemon thread — so callers may be sync code or code already inside another
event loop (FastAPI) — and at exit we give that loop its 10 ms sleep before stopping it.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import threading
from typing import Any, Coroutine

import didkit

from did.errors import DidkitError

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
CALL_TIMEOUT = 30.0


def _ensure_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="didkit-loop", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
            atexit.register(_shutdown)
        return _loop


def _shutdown() -> None:
    """Let didkit's runtime settle (a real sleep, not sleep(0)), then stop the loop."""
    global _loop, _thread
    loop, thread = _loop, _thread
    if loop is None:
        return
    try:
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.02), loop).result(timeout=2)
    except Exception:  # pragma: no cover - best effort at exit
        pass
    loop.call_soon_threadsafe(loop.stop)
    if thread is not None:
        thread.join(timeout=2)
    _loop = _thread = None


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    future = asyncio.run_coroutine_threadsafe(coro, _ensure_loop())
    return future.result(timeout=CALL_TIMEOUT)


async def _call(fn: Any, *args: Any) -> Any:
    return await fn(*args)


def _wrap(fn: Any, *args: Any) -> Any:
    try:
        return _run(_call(fn, *args))
    except didkit.DIDKitException as exc:
        raise DidkitError(f"didkit: {exc}") from None


def key_to_did(jwk: str) -> str:
    return didkit.key_to_did("key", jwk)


def verification_method(jwk: str) -> str:
    return _wrap(didkit.key_to_verification_method, "key", jwk)


def resolve(did: str) -> dict[str, Any]:
    return json.loads(_wrap(didkit.resolve_did, did, "{}"))


def issue_credential(credential: dict[str, Any], options: dict[str, Any], jwk: str) -> dict[str, Any]:
    return json.loads(_wrap(didkit.issue_credential, json.dumps(credential), json.dumps(options), jwk))


def verify_credential(credential: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """didkit's verification result ``{"checks": [...], "warnings": [...], "errors": [...]}``."""
    return json.loads(_wrap(didkit.verify_credential, json.dumps(credential), json.dumps(options)))


def issue_presentation(presentation: dict[str, Any], options: dict[str, Any], jwk: str) -> dict[str, Any]:
    return json.loads(_wrap(didkit.issue_presentation, json.dumps(presentation), json.dumps(options), jwk))


def verify_presentation(presentation: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return json.loads(_wrap(didkit.verify_presentation, json.dumps(presentation), json.dumps(options)))
