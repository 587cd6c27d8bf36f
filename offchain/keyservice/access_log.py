"""Access records: one JSON line per HTTP request a service answered — the key service's and the
gateway's — which the oversight monitor tails (its ``network_region`` rule reads the client IP).

A record (the shape of :class:`oversight.sources.AccessRecord`)::

    {"id", "time", "source", "client_ip", "method", "path", "status",
     "did", "account", "consumer", "grant", "asset", "job", "error"}

``did`` / ``account`` are the authenticated caller's (None before authentication); ``grant``,
``asset`` and ``job`` are the ids the path names; ``error`` is the refusal's code (the body's
``error`` at the gateway, ``kind`` at the key service).

Writing stays off the request's path: a request only queues a tuple of what it saw
(:meth:`AccessLog.queue_append`, one ``deque.append``); a daemon thread formats the lines and appends
them every ``flush_s`` in one ``write`` to a file opened ``O_APPEND`` — a
batch is whole lines, and a reader only reads up to the last newline. The file is bounded: past
``max_bytes`` it is renamed to ``<stem>-<seq>.jsonl`` (seq 1, 2, …, bytes unchanged) and a new
one started; only the ``keep`` newest rotated files are kept. One writer per file.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _quote  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

log = logging.getLogger("tds.access")
MAX_BYTES = 16 * 1024 * 1024
KEEP = 8
FLUSH_S = 0.2
MAX_QUEUE = 100_000  # records waiting for the writer; past it the oldest are dropped (a stuck disk)
MAX_ERROR_BODY = 4096  # bytes of a refusal's body read for its error code
# ids in the path (key service /v1/jobs/{id}/…, gateway /jobs/{id}, /grants/{id}, /assets/{id}): read from
# the path itself, since an inner middleware may hand the router a copy of the scope
ID_SEGMENT = re.compile(r"/(jobs|grants|assets)/(\d+)(?=/|$)")


def rotated_segments(path: Path) -> list[tuple[int, Path]]:
    """The rotated files of the access log ``path`` (``<stem>-<seq>.jsonl``), oldest first."""
    path = Path(path)
    pattern = re.compile(re.escape(path.stem) + r"-(\d+)" + re.escape(path.suffix) + "$")
    found = []
    if path.parent.exists():
        for p in path.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def _text(value: Any) -> str:
    return "null" if value is None else _quote(str(value))


def _num(value: int | None) -> str:
    return "null" if value is None else str(int(value))


class AccessLog:
    """A bounded, append-only JSON-lines access log written off the request path."""

    def __init__(self, path: Path | str, source: str, *, consumer_is_caller: bool = False,
                 max_bytes: int = MAX_BYTES, keep: int = KEEP, flush_s: float = FLUSH_S):
        self.path, self.source, self.consumer_is_caller = Path(path), source, consumer_is_caller
        self.max_bytes, self.keep, self.flush_s = max_bytes, keep, flush_s
        self._prefix = f"{source}-{secrets.token_hex(4)}-"   # record ids: unique across restarts of the writer
        self._next = 1
        self._queue: deque[tuple[Any, ...]] = deque(maxlen=MAX_QUEUE)  # append / popleft are thread-safe
        self._io = threading.Lock()                          # one flush (and rotation) at a time
        self._wake = threading.Event()
        self._closed = False
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        atexit.register(self.close)

    def add(self, when: float, client_ip: str, method: str, path: str, status: int, did: str | None = None,
            account: str | None = None, error: str | None = None) -> None:
        """Queue one request's record (no formatting, no I/O)."""
        self.queue_append()((when, client_ip, method, path, status, did, account, error))

    def queue_append(self) -> Callable[[tuple[Any, ...]], None]:
        """The hot path's ``append``: queues ``(time, client_ip, method, path, status, did, account,
        error)``; the writer thread (started now) formats and writes it within ``flush_s``."""
        if self._thread is None:
            self._start()
        return self._queue.append

    def _start(self) -> None:
        with self._io:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=f"access-log-{self.source}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            try:
                self.flush()
            except OSError as exc:                           # disk full, folder gone: keep serving
                log.warning("access log %s: %s", self.path, exc)

    def _line(self, entry: tuple[Any, ...]) -> str:
        when, ip, method, path, status, did, account, error = entry
        ids = {m.group(1): int(m.group(2)) for m in ID_SEGMENT.finditer(path)} if "s/" in path else {}
        job, grant = ids.get("jobs"), ids.get("grants")
        if grant is None and job:
            grant = job >> 32                                # job ids are grantId << 32 | use
        rid = self._prefix + str(self._next)
        self._next += 1
        return (f'{{"id":"{rid}","time":{when:.6f},"source":"{self.source}","client_ip":{_text(ip)},'
                f'"method":{_text(method)},"path":{_text(path)},"status":{int(status)},"did":{_text(did)},'
                f'"account":{_text(account)},"consumer":{_text(account if self.consumer_is_caller else None)},'
                f'"grant":{_num(grant)},"asset":{_num(ids.get("assets"))},"job":{_num(job)},'
                f'"error":{_text(error)}}}\n')

    def flush(self) -> None:
        """Write every queued record now (one ``write``), rotating first if the file would pass its bound."""
        with self._io:
            queue, lines = self._queue, []
            while queue:
                lines.append(self._line(queue.popleft()))
            if not lines:
                return
            data = "".join(lines).encode()
            fd = self._open()
            size = os.fstat(fd).st_size
            if size and size + len(data) > self.max_bytes:
                fd = self._rotate()
            os.write(fd, data)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def _rotate(self) -> int:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        segments = rotated_segments(self.path)
        seq = segments[-1][0] + 1 if segments else 1
        os.rename(self.path, self.path.with_name(f"{self.path.stem}-{seq:06d}{self.path.suffix}"))
        for _, old in segments[:max(0, len(segments) + 1 - self.keep)]:
            old.unlink(missing_ok=True)
        return self._open()

    def close(self) -> None:
        """Write what is queued and stop the writer thread (also run at exit)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self.flush()
        with self._io:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def caller_of(state: dict[str, Any]) -> tuple[str | None, str | None]:
    """The authenticated caller a request's handlers left in ``request.state``: (DID, account).
    Reads ``did`` / ``account`` (the key service) or ``caller`` (the gateway's Caller or proven DID)."""
    caller = state.get("caller")
    did = state.get("did") or getattr(caller, "did", None) or (caller if isinstance(caller, str) else None)
    return did, state.get("account") or getattr(caller, "account", None)


def _error_code(body: bytes, key: str) -> str | None:
    try:
        found = json.loads(body)
    except ValueError:
        return None
    code = found.get(key) if isinstance(found, dict) else None
    return code if isinstance(code, str) else None


class AccessLogMiddleware:
    """ASGI middleware queueing one record per HTTP request on an :class:`AccessLog`
    (``error_key``: the refusal body's field holding the error code)."""

    def __init__(self, app: Callable, log: AccessLog, error_key: str = "error"):
        self.app, self.log, self.error_key = app, log, error_key
        self._queue = log.queue_append()

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})   # shared by any copy of the scope: the handlers' caller comes back
        seen: list[Any] = [500]                  # status, then a refusal's body chunks

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen[0] = message["status"]
            elif seen[0] >= 400 and len(seen) < 8 and message["type"] == "http.response.body":
                seen.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            status, client = seen[0], scope.get("client")
            if status < 400 and not state:       # the common case: an anonymous answer
                self._queue((time.time(), client[0] if client else "", scope.get("method", ""), scope.get("path", ""),
                             status, None, None, None))
            else:
                try:
                    did, account = caller_of(state)
                    error = _error_code(b"".join(seen[1:])[:MAX_ERROR_BODY], self.error_key) if status >= 400 else None
                    self._queue((time.time(), client[0] if client else "", scope.get("method", ""),
                                 scope.get("path", ""), status, did, account, error))
                except Exception as exc:  # noqa: BLE001  (the record is lost, never the answer)
                    log.warning("access record not queued: %s: %s", type(exc).__name__, exc)


def install(app: Any, path: Path | str, source: str, *, error_key: str = "error", **options: Any) -> AccessLog:
    """Add access logging to a Starlette/FastAPI ``app`` (before it starts), as its outermost
    middleware, so refusals of the body and rate limits are recorded too (``options``:
    ``consumer_is_caller``, ``max_bytes``, ``keep``, ``flush_s`` of :class:`AccessLog`).
    Returns the log (also ``app.state.access_log``); it is closed when the app shuts down."""
    access = AccessLog(path, source, **options)
    app.add_middleware(AccessLogMiddleware, log=access, error_key=error_key)
    app.router.on_shutdown.append(access.close)     # the server stops: write the rest, end the writer thread
    app.state.access_log = access
    return access
