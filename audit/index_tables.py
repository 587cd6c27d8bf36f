"""The event index's schema (SQLAlchemy Core, portable: SQLite by default, PostgreSQL by URL).

``events`` keeps every decoded log (with its raw topics and data, so a reader can decode it
again with the published ABIs), ``blocks`` the hash and time of every block that had events
or ended a window (reorg detection), ``cursor`` the last indexed block, and the current-state
tables (``assets``, ``grants``, ``jobs``, plus ``templates`` and ``identities`` they need) are
kept up to date by the events. uint256 amounts are stored as decimal text; ids as BIGINT.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import (BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text, create_engine, event,
                        select)
from sqlalchemy.engine import Connection, Engine

SCHEMA_VERSION = "1"
metadata = MetaData()

meta = Table("index_meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))
cursor = Table("index_cursor", metadata, Column("name", String(64), primary_key=True),
               Column("block", BigInteger, nullable=False), Column("block_hash", String(66), nullable=False))
blocks = Table("index_blocks", metadata, Column("number", BigInteger, primary_key=True),
               Column("hash", String(66), nullable=False), Column("time", BigInteger, nullable=False))
events = Table(
    "events", metadata,
    Column("block", BigInteger, primary_key=True), Column("log_index", Integer, primary_key=True),
    Column("tx", String(66), nullable=False), Column("contract", String(64), nullable=False, index=True),
    Column("name", String(64), nullable=False, index=True), Column("address", String(42), nullable=False),
    Column("args", Text, nullable=False), Column("topics", Text, nullable=False), Column("data", Text, nullable=False),
    Column("block_time", BigInteger, nullable=False),
)
templates = Table("templates", metadata, Column("template_id", BigInteger, primary_key=True),
                  Column("allowed_ops", Integer, nullable=False))
identities = Table("identities", metadata, Column("account", String(42), primary_key=True),
                   Column("did", Text, nullable=False), Column("verified", Boolean, nullable=False))
assets = Table(
    "assets", metadata,
    Column("asset_id", BigInteger, primary_key=True), Column("provider", String(42), nullable=False),
    Column("provider_did", Text), Column("holder", String(42), nullable=False, index=True),
    Column("state", String(16), nullable=False), Column("classification", String(16), nullable=False),
    Column("template_id", BigInteger, nullable=False), Column("allowed_ops", Integer, nullable=False),
    Column("content_cid", Text, nullable=False), Column("metadata_cid", Text, nullable=False),
    Column("manifest_hash", String(66), nullable=False), Column("quality_report_hash", String(66), nullable=False),
    Column("registered_block", BigInteger, nullable=False), Column("registered_tx", String(66), nullable=False),
    Column("registered_log", Integer, nullable=False), Column("registered_time", BigInteger, nullable=False),
    Column("rating_count", Integer, nullable=False, default=0), Column("rating_sum", BigInteger, nullable=False,
                                                                       default=0),
)
grants = Table(
    "grants", metadata,
    Column("grant_id", BigInteger, primary_key=True), Column("asset_id", BigInteger, nullable=False, index=True),
    Column("consumer", String(42), nullable=False, index=True), Column("provider", String(42), nullable=False),
    Column("status", String(16), nullable=False), Column("frozen", Boolean, nullable=False),
    Column("uses", Integer, nullable=False), Column("max_uses", Integer, nullable=False),
)
jobs = Table(
    "jobs", metadata,
    Column("job_id", BigInteger, primary_key=True), Column("grant_id", BigInteger, nullable=False, index=True),
    Column("asset_id", BigInteger, nullable=False, index=True), Column("consumer", String(42), nullable=False),
    Column("status", String(16), nullable=False), Column("amount", String(80), nullable=False),
    Column("oracle", String(42)), Column("result_hash", String(66)),
)
STATE_TABLES = (templates, identities, assets, grants, jobs)
DIGESTED = (events,) + STATE_TABLES  # what a rebuild must reproduce (cursor and block hashes depend on windows)


def open_engine(url: str) -> Engine:
    """An engine for ``url`` with the schema created; SQLite files get WAL and a busy timeout."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        from pathlib import Path

        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
    metadata.create_all(engine)
    return engine


def table_rows(conn: Connection, table: Table) -> list[dict[str, Any]]:
    """Every row of ``table`` in primary-key order."""
    order = list(table.primary_key.columns)
    return [dict(r._mapping) for r in conn.execute(select(table).order_by(*order))]


def digest(engine: Engine) -> str:
    """sha-256 over the events and current-state tables, row by row in key order: equal after a rebuild."""
    h = hashlib.sha256()
    with engine.connect() as conn:
        for table in DIGESTED:
            h.update(table.name.encode() + b"\n")
            for row in table_rows(conn, table):
                h.update(json.dumps(row, sort_keys=True, default=str).encode() + b"\n")
    return h.hexdigest()
