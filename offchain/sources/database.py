"""Databases through SQLAlchemy (PostgreSQL via psycopg, SQLite): a table or a query.

*Incremental* (a watermark column): batches of ``WHERE wm > :committed ORDER BY wm LIMIT n``.
A batch never splits a run of equal watermark values — rows sharing the batch's last value are
left for the next batch (or, when a whole batch shares one value, that value's rows are read
in full) — so committing ``max(wm)`` of the batch with its version loses and repeats nothing,
provided new rows arrive with watermarks above those already committed (a sequence or a
commit timestamp). *Full* (no watermark): the whole result is re-read into a replacement
version, committed once at the end. Every read is retried with backoff and fails over to the
standby URL (:meth:`SourceMonitor.call`)."""
from __future__ import annotations

import time
from typing import Any, Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from offchain.sources.errors import SourceAuthRefused, SourceConfigError
from offchain.sources.monitor import Backoff, SourceMonitor
from offchain.sources.pipeline import Appender, BatchResult
from offchain.sources.spec import SourceSpec

Progress = Callable[[int], None]


def normalise_url(kind: str, url: str) -> str:
    """``postgresql://`` → the psycopg 3 driver; a bare path → ``sqlite:///path``."""
    if kind == "postgres" and url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if kind == "sqlite" and "://" not in url:
        return f"sqlite:///{url}"
    return url


class DatabaseSource:
    """Syncs one database source into its :class:`Appender`."""

    def __init__(self, spec: SourceSpec, appender: Appender, monitor: SourceMonitor,
                 backoff: Backoff = Backoff(), progress: Progress | None = None) -> None:
        if spec.kind not in ("postgres", "sqlite"):
            raise SourceConfigError(spec.name, "--kind", f"{spec.kind} is not a database")
        self.spec, self.appender, self.monitor, self.backoff = spec, appender, monitor, backoff
        self.progress = progress or (lambda n: None)
        self._engines: dict[str, Engine] = {}

    def close(self) -> None:
        for e in self._engines.values():
            e.dispose()

    def engine(self, url: str) -> Engine:
        if url not in self._engines:
            self._engines[url] = create_engine(normalise_url(self.spec.kind, url), pool_pre_ping=True)
        return self._engines[url]

    def _q(self, engine: Engine, name: str) -> str:
        prep = engine.dialect.identifier_preparer
        return ".".join(prep.quote(part) for part in name.split("."))

    def _source_sql(self, engine: Engine) -> str:
        if self.spec.table:
            return self._q(engine, self.spec.table)
        return f"({self.spec.query}) AS tds_source"

    def _run(self, url: str, sql: str, params: dict[str, Any]) -> list[dict]:
        try:
            with self.engine(url).connect() as conn:
                return [dict(r) for r in conn.execute(text(sql), params).mappings()]
        except DBAPIError as exc:
            if "password authentication failed" in str(exc) or "permission denied" in str(exc):
                raise SourceAuthRefused(self.spec.name, url, "login refused", "the source URL") from exc
            raise

    # incremental -----------------------------------------------------------------------------
    def fetch_after(self, url: str, watermark: Any) -> list[dict]:
        """The next batch after ``watermark``, never splitting a run of equal watermarks."""
        e = self.engine(url)
        wm, src, n = self._q(e, self.spec.watermark or ""), self._source_sql(e), self.spec.batch_rows
        where = f"WHERE {wm} > :wm " if watermark is not None else f"WHERE {wm} IS NOT NULL "
        rows = self._run(url, f"SELECT * FROM {src} {where}ORDER BY {wm} LIMIT :n",
                         {"wm": watermark, "n": n + 1})
        if len(rows) <= n:
            return rows
        col = self.spec.watermark
        cut = rows[n][col]          # the first row left out: rows sharing its value wait with it
        kept = [r for r in rows[:n] if r[col] != cut]
        if kept:
            return kept
        return self._run(url, f"SELECT * FROM {src} WHERE {wm} = :cut", {"cut": cut})

    def sync_incremental(self, max_batches: int | None = None) -> list[BatchResult]:
        """Batches until caught up: each commits a version with its watermark."""
        name, col = self.spec.name, self.spec.watermark
        out: list[BatchResult] = []
        done = 0
        while max_batches is None or len(out) < max_batches:
            started = time.time()
            committed = self.appender.state.head(name).watermark
            rows = self.monitor.call(name, self.spec.urls(), lambda u: self.fetch_after(u, committed), self.backoff)
            if not rows:
                break
            top = rows[-1][col]
            origins = [f"{col}={r[col]}" for r in rows]
            out.append(self.appender.append(rows, origins, watermark=top, started=started))
            done += len(rows)
            self.progress(done)
        return out

    # full ------------------------------------------------------------------------------------
    def _snapshot(self, url: str) -> BatchResult:
        builder = self.appender.snapshot()
        e = self.engine(url)
        done = 0
        with e.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.spec.batch_rows).execute(
                text(f"SELECT * FROM {self._source_sql(e)}"))
            for part in result.mappings().partitions(self.spec.batch_rows):
                rows = [dict(r) for r in part]
                builder.add(rows, [f"row {done + i + 1}" for i in range(len(rows))])
                done += len(rows)
                self.progress(done)
        return builder.finish()

    def sync_full(self) -> BatchResult:
        """Re-read everything into a replacement version (restarted from scratch on failure)."""
        return self.monitor.call(self.spec.name, self.spec.urls(), self._snapshot, self.backoff)

    def sync(self) -> list[BatchResult]:
        return self.sync_incremental() if self.spec.watermark else [self.sync_full()]
