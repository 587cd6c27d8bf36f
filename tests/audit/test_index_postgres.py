"""The event index on PostgreSQL (TDS_INDEX_URL=postgresql+psycopg://…) through the same
SQLAlchemy Core code: a real server started for the run (tests/support/postgres.py); the same
tables, row for row, as on SQLite; resumable; trail and catalog equal to the chain's."""
from __future__ import annotations

import pytest

from audit.events import ChainReader
from audit.index import EventIndex
from audit.index_reads import IndexedReader, catalog_page
from audit.index_tables import digest
from audit.trail import build_trail, catalog
from tests.support.lifecycle import Lifecycle, shared_lifecycle
from tests.support.postgres import start_postgres


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture
def lc(request, tmp_path_factory) -> Lifecycle:
    return shared_lifecycle(request, tmp_path_factory)


def test_postgres_index_equals_sqlite_index_and_the_chain(lc, postgres, tmp_path):
    pg = EventIndex(lc.w3, lc.deployment, postgres.url, max_range=5)
    pg.catch_up()
    lite = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    lite.catch_up()
    assert pg.engine.dialect.name == "postgresql"
    assert digest(pg.engine) == digest(lite.engine)  # the same rows, whatever the database
    block, page = catalog_page(pg.engine, lc.deployment)
    assert [{k: v for k, v in a.items() if k != "indexedBlock"} for a in page] == catalog(
        ChainReader(lc.w3, lc.deployment))
    chain_trail = [e.to_dict() for e in build_trail(ChainReader(lc.w3, lc.deployment), lc.asset)]
    assert [e.to_dict() for e in build_trail(IndexedReader(lc.w3, lc.deployment, pg.engine), lc.asset)] == chain_trail
    # a second index process on the same database resumes from its cursor: nothing twice
    again = EventIndex(lc.w3, lc.deployment, postgres.url)
    again.catch_up()
    assert digest(again.engine) == digest(lite.engine)


def test_postgres_job_ids_past_2_63(postgres):
    """The same uint256 job ids on PostgreSQL's NUMERIC(78) (tests/audit/test_index_tables.py)."""
    from sqlalchemy import create_engine, text

    from tests.audit.test_index_tables import check_u256

    admin = create_engine(postgres.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE tds_u256"))
    admin.dispose()
    check_u256(postgres.url.rsplit("/", 1)[0] + "/tds_u256")
