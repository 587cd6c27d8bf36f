"""Database sources through SQLAlchemy: SQLite and a real PostgreSQL server (Debian binaries,
private cluster). Full and incremental sync, ties at batch edges, quarantine, and a server
that goes away mid-sync: recovered by backoff, or resumed from the committed watermark by a
restarted sync — never a gap, never a duplicate."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from offchain.sources.errors import SourceUnavailable
from offchain.sources.monitor import Backoff, read_alerts
from offchain.sources.spec import SourceSpec
from tests.offchain.sources.readback import head_manifest, open_column
from tests.support.postgres import pg_bin, start_postgres

SCHEMA = {"name": "readings", "fields": [
    {"name": "id", "type": "identifier", "nullable": False},
    {"name": "device", "type": "string"},
    {"name": "ts", "type": "integer", "role": "dimension"},
    {"name": "value", "type": "decimal", "decimals": 1, "minimum": "0", "maximum": "100000"}]}
ONIONS = {"value": ["eq", "ord"], "ts": ["eq"]}


def rows(lo: int, hi: int) -> list[tuple]:
    return [(i, f"d{i % 7}", 1000 + i // 3, f"{i % 997}.5") for i in range(lo, hi)]


def spec(name: str, kind: str, url: str, **kw) -> SourceSpec:
    kw.setdefault("schema", SCHEMA)
    kw.setdefault("onions", ONIONS)
    return SourceSpec(name, kind, url, **kw)


# --- SQLite ------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "src.sqlite"
    with sqlite3.connect(path) as c:
        c.execute("create table readings (id integer primary key, device text, ts integer, value text)")
        c.executemany("insert into readings values (?,?,?,?)", rows(1, 1201))
    return path


def test_sqlite_incremental_with_quarantine_and_ties(sqlite_db, make_runner, store, keys):
    with sqlite3.connect(sqlite_db) as c:
        c.execute("insert into readings values (5000, 'dx', 2000, 'not a number')")
    r = make_runner()
    # watermark ts has runs of 3 equal values: a batch of 500 must not split them
    r.state.add(spec("ts-wm", "sqlite", str(sqlite_db), table="readings", watermark="ts", batch_rows=500))
    rep = r.sync_once("ts-wm")
    assert rep.rows == 1200 and rep.quarantined == 1 and len(rep.versions) == 3  # 500 rows hold whole runs
    assert r.state.head("ts-wm").watermark == 2000
    [q] = r.state.quarantine("ts-wm")
    assert q["record"]["id"] == 5000 and "not a valid decimal" in q["reason"] and q["origin"] == "ts=2000"
    [alert] = read_alerts(r.home.alerts_file)
    assert (alert.source, alert.kind, alert.count) == ("ts-wm", "quarantine", 1)
    with sqlite3.connect(sqlite_db) as c:
        c.executemany("insert into readings values (?,?,?,?)", rows(6000, 6050))
    assert r.sync_once("ts-wm").rows == 50
    m = head_manifest(r, store, "ts-wm")
    ids = open_column(m, keys, store.cat, "id")
    assert sorted(map(int, ids)) == list(range(1, 1201)) + list(range(6000, 6050))
    assert m["version"] == 4 and m["row_count"] == 1250 and m["previous_version_hash"]
    assert r.sync_once("ts-wm").rows == 0            # caught up: nothing new, no new version
    history = r.home.history_file("ts-wm").read_text().splitlines()
    assert len(history) == 4


def test_sqlite_full_sync_replaces(sqlite_db, make_runner, store, keys):
    r = make_runner()
    r.state.add(spec("full", "sqlite", str(sqlite_db), query="SELECT * FROM readings WHERE id <= 700",
                     batch_rows=300))
    assert r.sync_once("full").rows == 700
    first = head_manifest(r, store, "full")
    assert r.sync_once("full").rows == 700
    second = head_manifest(r, store, "full")
    assert second["row_count"] == 700 and second["version"] == 2 and len(second["chunks"]) == 3
    assert second["dataset_id"] == first["dataset_id"] and second["columns"] == first["columns"]  # same keys
    assert sorted(map(int, open_column(second, keys, store.cat, "id"))) == list(range(1, 701))


# --- PostgreSQL --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    if pg_bin("initdb") is None:
        pytest.skip("PostgreSQL server binaries missing (make postgres)")
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


def restart(server) -> None:
    data = server.folder / "data"
    opts = f"-p {server.port} -k {server.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    r = server._run(pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(server.folder / "server.log"),
                    "-w", "start")
    assert r.returncode == 0, r.stderr


def stop(server) -> None:
    server._run(pg_bin("pg_ctl"), "-D", str(server.folder / "data"), "-m", "fast", "-w", "stop")


def load(url: str, table: str, n: int) -> None:
    e = create_engine(url)
    with e.begin() as c:
        c.execute(text(f"CREATE TABLE {table} (id bigint PRIMARY KEY, device text, ts bigint, value numeric(10,1))"))
        c.execute(text(f"INSERT INTO {table} SELECT i, 'd' || (i % 7), 1000 + i / 3, (i % 997) + 0.5 "
                       f"FROM generate_series(1, {n}) AS i"))
    e.dispose()


def test_postgres_full_and_incremental(pg, make_runner, store, keys):
    load(pg.url, "sales", 3000)
    r = make_runner()
    r.state.add(spec("pg-full", "postgres", pg.url, table="sales", batch_rows=1000))
    r.state.add(spec("pg-inc", "postgres", pg.url.replace("postgresql+psycopg", "postgresql"), table="sales",
                     watermark="id", batch_rows=1000))
    assert r.sync_once("pg-full").rows == 3000
    assert r.sync_once("pg-inc").versions == [1, 2, 3]
    e = create_engine(pg.url)
    with e.begin() as c:
        c.execute(text("INSERT INTO sales SELECT i, 'new', 5000, 1.5 FROM generate_series(3001, 3100) AS i"))
    e.dispose()
    assert r.sync_once("pg-inc").rows == 100
    ids = open_column(head_manifest(r, store, "pg-inc"), keys, store.cat, "id")
    assert sorted(map(int, ids)) == list(range(1, 3101))
    status = r.state.status("pg-inc")
    assert status["connection"] == "connected" and status["rows_total"] == 3100 and status["quality"] == "1.0000"


def test_postgres_goes_away_mid_sync(pg, make_runner, store, keys):
    """Down briefly: backoff rides it out. Down for long: the sync fails after its retries and
    a restarted sync resumes from the committed watermark. Every row exactly once."""
    load(pg.url, "meter", 6000)
    events: list[str] = []

    def progress(name: str, done: int) -> None:
        if done == 1000 and "brief" not in events:           # after the 2nd committed batch
            events.append("brief")
            stop(pg)
            threading.Timer(0.8, restart, args=(pg,)).start()
        elif done == 3500 and "long" not in events:
            events.append("long")
            stop(pg)

    r = make_runner(progress=progress, backoff=Backoff(attempts=7, base=0.2, cap=1.0))
    r.state.add(spec("pg-crash", "postgres", pg.url, table="meter", watermark="id", batch_rows=500))
    with pytest.raises(SourceUnavailable, match="pg-crash"):
        r.sync_once("pg-crash")
    assert events == ["brief", "long"]
    head = r.state.head("pg-crash")
    assert head.watermark == 3500 and head.rows == 3500
    assert r.state.status("pg-crash")["connection"] == "down"
    assert [a.kind for a in read_alerts(r.home.alerts_file)] == ["connection_lost"]
    restart(pg)
    r2 = make_runner(backoff=Backoff(attempts=7, base=0.2, cap=1.0))   # a fresh process, same state file
    rep = r2.sync_once("pg-crash")
    assert rep.rows == 2500 and rep.versions == list(range(8, 13))
    ids = open_column(head_manifest(r2, store, "pg-crash"), keys, store.cat, "id")
    assert len(ids) == 6000 and sorted(map(int, ids)) == list(range(1, 6001))
