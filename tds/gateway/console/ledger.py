"""The console's small durable memory (one SQLite file under the gateway's home): the wallet-proof
nonces it issued (each consumed by the first proof that names it, forgotten once expired) and the
sealed parameter blocks it stored for jobs not yet requested (swept when no job names them).

Both tables are bounded: nonces by their lifetime, :data:`MAX_NONCES_PER_CLIENT` and
:data:`MAX_NONCES`, parameter blocks by
their grace time and :data:`MAX_PENDING_PER_ACCOUNT`. The file survives a gateway restart, so a
proof used before a restart is still refused after it.
"""
from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MAX_NONCES = 10_000          # outstanding (issued, unused, unexpired) nonces, all clients together
MAX_NONCES_PER_CLIENT = 64   # outstanding nonces of one client address
NONCE_LIFETIME = 600         # seconds: a nonce names a proof that may live at most this long
MAX_PENDING_PER_ACCOUNT = 8  # stored parameter blocks no job names yet, per consumer account
PARAMS_GRACE = 3600          # seconds an unreferenced parameter block is kept after it was stored

SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL, client TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS params (cid TEXT PRIMARY KEY, hash TEXT NOT NULL, consumer TEXT NOT NULL,
                                   deadline INTEGER NOT NULL, stored INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS params_consumer ON params (consumer);
"""


@dataclass(frozen=True)
class PendingParams:
    """A stored parameter block no ``JobRequested`` named yet."""

    cid: str
    params_hash: str  # 0x-hex sha-256
    consumer: str
    deadline: int
    stored: int


class ConsoleLedger:
    """Nonces and pending parameter blocks in SQLite (``path``; ``None``: in memory, for tests)."""

    def __init__(self, path: Path | str | None = None):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(SCHEMA)

    # ------------------------------------------------------------------ nonces

    def issue_nonce(self, client: str = "", now: float | None = None) -> tuple[str, int] | str:
        """A fresh nonce and its expiry (unix seconds) for ``client``; or, when none may be issued,
        why: ``"client"`` (it holds :data:`MAX_NONCES_PER_CLIENT`) or ``"all"`` (:data:`MAX_NONCES`)."""
        t = int(time.time() if now is None else now)
        nonce = secrets.token_hex(16)
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE expires < ?", (t,))
            (mine,) = self._db.execute("SELECT COUNT(*) FROM nonces WHERE client = ?", (client,)).fetchone()
            if mine >= MAX_NONCES_PER_CLIENT:
                return "client"
            (count,) = self._db.execute("SELECT COUNT(*) FROM nonces").fetchone()
            if count >= MAX_NONCES:
                return "all"
            self._db.execute("INSERT INTO nonces VALUES (?, ?, ?)", (nonce, t + NONCE_LIFETIME, client))
        return nonce, t + NONCE_LIFETIME

    def consume_nonce(self, nonce: str, now: float | None = None) -> bool:
        """True once for an issued, unexpired nonce (it is gone afterwards); False otherwise."""
        t = int(time.time() if now is None else now)
        with self._lock:
            cur = self._db.execute("DELETE FROM nonces WHERE nonce = ? AND expires >= ?", (nonce, t))
            return cur.rowcount == 1

    # ------------------------------------------------------------------ parameter blocks

    def record_params(self, cid: str, params_hash: str, consumer: str, deadline: int, now: float | None = None) -> None:
        """Remember a stored block until a job names it or it is swept."""
        t = int(time.time() if now is None else now)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO params VALUES (?, ?, ?, ?, ?)",
                             (cid, params_hash.lower(), consumer.lower(), int(deadline), t))

    def pending(self, consumer: str | None = None) -> list[PendingParams]:
        """The blocks still waiting for a job (all, or one consumer's)."""
        q, args = "SELECT cid, hash, consumer, deadline, stored FROM params", ()
        if consumer is not None:
            q, args = q + " WHERE consumer = ?", (consumer.lower(),)
        with self._lock:
            rows = self._db.execute(q + " ORDER BY stored", args).fetchall()
        return [PendingParams(*r) for r in rows]

    def forget_params(self, cid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM params WHERE cid = ?", (cid,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
