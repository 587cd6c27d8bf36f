"""The event index's schema (SQLAlchemy Core, portable: SQLite by default, PostgreSQL by URL).

``events`` keeps every decoded log (with its raw topics and data, so a reader can decode it
again with the published ABIs), ``blocks`` the hash and time of every block that had events
or ended a window (reorg detection), ``cursor`` the last indexed block, and the current-state
tables are kept up to date by the events: ``assets`` (with ``dataset_versions``, every version's
manifest hash), ``grants``, ``jobs`` (plus ``templates`` they need); ``workflows`` and
``workflow_steps`` (the Jobs contract's workflows and the collaborations, with their steps'
status and result hashes) and ``collab_uses`` (the grant uses a collaboration step consumed);
``payments`` (every ``Credited`` / ``Withdrawn``); participants (``identities``: account → DID,
``participant_roles``); ``nodes``; ``alerts`` (monitor or regulator freezes, oracle failures);
``log_batches`` and ``anchors`` (Evidence). ``event_keys`` lists, per event, the ids and accounts
it names (asset, grant, job, …) so that a reader fetches one entity's events by SQL instead of
scanning them all.

uint256 amounts are stored as decimal text; asset, grant and template ids as BIGINT; job ids
(``grantId << 32 | use``, past 2^63 once a grant id reaches 2^31) and other full-width ids as
:class:`U256` — NUMERIC(78) on PostgreSQL, zero-padded text on SQLite (which has no integer
wider than 64 bits), so equality and order work in SQL on both.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import (BigInteger, Boolean, Column, Index, Integer, MetaData, Numeric, String, Table, Text,
                        create_engine, event, select)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = "4"  # 3: the disputes table; 4: dataset versions (assets.latest_version, dataset_versions)
U256_DIGITS = 78  # decimal digits of 2**256 - 1
metadata = MetaData()


class U256(TypeDecorator):
    """An unsigned 256-bit integer column: NUMERIC(78, 0) on PostgreSQL, zero-padded decimal text
    elsewhere (SQLite integers stop at 2^63); Python ints in and out on both."""

    impl = String(U256_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(U256_DIGITS, 0))
        return dialect.type_descriptor(String(U256_DIGITS))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        value = int(value)
        if not 0 <= value < 2**256:
            raise ValueError(f"{value} is not a uint256")
        return value if dialect.name == "postgresql" else str(value).zfill(U256_DIGITS)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else int(value)


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
    Column("block_time", BigInteger, nullable=False), Column("audited", Boolean, nullable=False, default=False),
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
    Column("latest_version", Integer, nullable=False, default=0),  # 0: the registered manifest
)
# every version of an asset's dataset (AssetRegistry.recordVersion): version 0 is the registered
# manifest (from AssetRegistered), each later one names the hash of the version before it
dataset_versions = Table(
    "dataset_versions", metadata,
    Column("asset_id", BigInteger, primary_key=True), Column("version", Integer, primary_key=True),
    Column("manifest_hash", String(66), nullable=False, index=True), Column("previous_hash", String(66)),
    Column("by", String(42), nullable=False), Column("block", BigInteger, nullable=False),
    Column("tx", String(66), nullable=False), Column("time", BigInteger, nullable=False),
)
grants = Table(
    "grants", metadata,
    Column("grant_id", BigInteger, primary_key=True), Column("asset_id", BigInteger, nullable=False, index=True),
    Column("consumer", String(42), nullable=False, index=True), Column("provider", String(42), nullable=False),
    Column("status", String(16), nullable=False), Column("frozen", Boolean, nullable=False),
    Column("uses", Integer, nullable=False), Column("max_uses", Integer, nullable=False),
    Column("restored", Integer, nullable=False, default=0),  # uses given back (IAuthorizations: uses never falls)
)
jobs = Table(
    "jobs", metadata,
    Column("job_id", U256, primary_key=True), Column("grant_id", BigInteger, nullable=False, index=True),
    Column("asset_id", BigInteger, nullable=False, index=True), Column("consumer", String(42), nullable=False),
    Column("status", String(16), nullable=False), Column("amount", String(80), nullable=False),
    Column("oracle", String(42)), Column("result_hash", String(66)),
    Column("operation", Integer, nullable=False), Column("params_hash", String(66), nullable=False),
    Column("payment_token", String(42), nullable=False), Column("deadline", BigInteger, nullable=False),
    Column("result_cid", Text), Column("workflow_id", BigInteger),
    Column("requested_block", BigInteger, nullable=False),
)
# a Jobs workflow (kind "jobs": steps are jobs under one grant) or a collaboration (kind "collaboration")
workflows = Table(
    "workflows", metadata,
    Column("kind", String(16), primary_key=True), Column("workflow_id", U256, primary_key=True),
    Column("initiator", String(42), nullable=False, index=True), Column("grant_id", BigInteger),
    Column("status", String(16), nullable=False), Column("step_count", Integer, nullable=False),
    Column("payment_token", String(42)), Column("amount", String(80)), Column("step_timeout", BigInteger),
    Column("description_hash", String(66)), Column("stopped_step", Integer), Column("reason_code", Integer),
    Column("refund", String(80)), Column("requested_block", BigInteger, nullable=False),
    Column("requested_time", BigInteger, nullable=False), Column("ended_block", BigInteger),
)
workflow_steps = Table(
    "workflow_steps", metadata,
    Column("kind", String(16), primary_key=True), Column("workflow_id", U256, primary_key=True),
    Column("step", Integer, primary_key=True), Column("status", String(16), nullable=False),
    Column("operation", Integer), Column("params_hash", String(66)), Column("job_id", U256, index=True),
    Column("nodes", Text), Column("deadline", BigInteger), Column("coordinator", String(42)),
    Column("result_hash", String(66)), Column("result_cid", Text), Column("opened_block", BigInteger),
    Column("ended_block", BigInteger),
)
collab_uses = Table(
    "collab_uses", metadata,
    Column("collab_id", U256, primary_key=True), Column("use_id", U256, primary_key=True),
    Column("step", Integer, nullable=False), Column("grant_id", BigInteger, nullable=False, index=True),
    Column("asset_id", BigInteger, nullable=False, index=True), Column("price", String(80), nullable=False),
)
payments = Table(
    "payments", metadata,
    Column("block", BigInteger, primary_key=True), Column("log_index", Integer, primary_key=True),
    Column("contract", String(64), nullable=False), Column("kind", String(16), nullable=False),
    Column("payee", String(42), nullable=False, index=True), Column("token", String(42), nullable=False),
    Column("job_id", U256, index=True), Column("amount", String(80), nullable=False), Column("share", String(24)),
    Column("tx", String(66), nullable=False),
)
participant_roles = Table(
    "participant_roles", metadata,
    Column("account", String(42), primary_key=True), Column("role", String(66), primary_key=True),
    Column("credential_hash", String(66), nullable=False), Column("valid_until", BigInteger, nullable=False),
    Column("granted_block", BigInteger, nullable=False),
)
nodes = Table(
    "nodes", metadata,
    Column("address", String(42), primary_key=True), Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=False), Column("endpoint", Text, nullable=False),
    Column("state", String(16), nullable=False), Column("reason_code", Integer, nullable=False),
    Column("did_hash", String(66), nullable=False), Column("key_agreement_key", String(66), nullable=False),
    Column("added_block", BigInteger, nullable=False), Column("last_heartbeat", BigInteger),
    Column("heartbeat_block", BigInteger),
)
alerts = Table(
    "alerts", metadata,
    Column("block", BigInteger, primary_key=True), Column("log_index", Integer, primary_key=True),
    Column("kind", String(24), nullable=False, index=True), Column("subject", U256, nullable=False),
    Column("by", String(42), nullable=False), Column("authority", String(16)), Column("reason_code", Integer),
    Column("failures", Integer), Column("lifted_block", BigInteger), Column("time", BigInteger, nullable=False),
    Column("tx", String(66), nullable=False),
)
log_batches = Table(
    "log_batches", metadata,
    Column("batch_id", BigInteger, primary_key=True), Column("producer", String(42), nullable=False, index=True),
    Column("root", String(66), nullable=False), Column("count", Integer, nullable=False),
    Column("period_start", BigInteger, nullable=False), Column("period_end", BigInteger, nullable=False),
    Column("batch_ref", Text, nullable=False), Column("block", BigInteger, nullable=False),
    Column("tx", String(66), nullable=False),
)
anchors = Table(
    "anchors", metadata,
    Column("block", BigInteger, primary_key=True), Column("log_index", Integer, primary_key=True),
    Column("hash", String(66), nullable=False, index=True), Column("producer", String(42), nullable=False),
    Column("kind", String(66), nullable=False), Column("subject_id", U256), Column("tx", String(66), nullable=False),
)
# a job completed under a dispute window (docs/disputes.md): its held shares, the consumer's dispute
# and the arbitrator's decision; status held → disputed → resolved, or held → released
disputes = Table(
    "disputes", metadata,
    Column("job_id", U256, primary_key=True), Column("grant_id", BigInteger, nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True), Column("held", String(80), nullable=False),
    Column("disputable_until", BigInteger, nullable=False), Column("held_block", BigInteger, nullable=False),
    Column("consumer", String(42)), Column("reason_hash", String(66)), Column("disputed_block", BigInteger),
    Column("arbitrator", String(42)), Column("refund_bps", Integer), Column("refunded", String(80)),
    Column("released", String(80)), Column("decision_hash", String(66)), Column("ended_block", BigInteger),
)
# (kind, key) → the events naming it: kind asset|grant|application|job|workflow|collab|subject|hash|payee|producer
event_keys = Table(
    "event_keys", metadata,
    Column("kind", String(16), primary_key=True), Column("key", Text, primary_key=True),
    Column("block", BigInteger, primary_key=True), Column("log_index", Integer, primary_key=True),
)
Index("ix_events_time", events.c.block_time)
STATE_TABLES = (templates, identities, assets, dataset_versions, grants, jobs, workflows, workflow_steps, collab_uses,
                payments, participant_roles, nodes, alerts, log_batches, anchors, disputes)
# what a rebuild must reproduce (the cursor and the stored block hashes depend on the windows)
DIGESTED = (events, event_keys) + STATE_TABLES


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
