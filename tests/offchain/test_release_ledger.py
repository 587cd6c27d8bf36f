"""The key service's durable release state (issue 12, item 15): one release per job that survives a
restart, prepared grants that expire and stay bounded, safe from several threads."""
from __future__ import annotations

import sqlite3
import threading

import pytest
from eth_utils import keccak

from offchain.errors import GrantRefused
from offchain.keyservice.ledger import ReleaseLedger

GRANT = {"grant_id": "7", "consumer": "0xC0", "datasets": ["sales"], "operations": ["sum:amount", "count"],
         "expires_at": None}


class Clock:
    def __init__(self, t: float = 1_900_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_release_survives_a_restart_and_is_logged_in_order(tmp_path):
    path = tmp_path / "ks" / "ledger.sqlite"
    with ReleaseLedger(path) as ledger:
        ledger.record_release(5, "0xq5", b"sealed-5", {"answer_hash": "0xa5"})
        ledger.record_release(3, "0xq3", b"sealed-3", {"answer_hash": "0xa3"})
        ledger.put_prepared(9, "0xORACLE", "0xq9", GRANT, ttl_s=600)
    assert path.stat().st_mode & 0o077 == 0
    with ReleaseLedger(path) as again:  # a new process on the same file
        assert again.released(5) == ("0xq5", b"sealed-5") and again.released(4) is None
        log = again.releases()
        assert [(r["seq"], r["job_id"]) for r in log] == [(1, 5), (2, 3)]
        assert log[0]["record"] == {"answer_hash": "0xa5"} and log[0]["sealed_hash"] == "0x" + keccak(b"sealed-5").hex()
        assert [r["job_id"] for r in again.releases(since=1)] == [3]
        assert again.take_prepared(9, "0xoracle", "0xq9") == GRANT  # the oracle's address in any case
        assert again.take_prepared(9, "0xoracle", "0xq9") is None   # taken once
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_job_is_released_once(tmp_path):
    with ReleaseLedger(tmp_path / "l.sqlite") as ledger:
        ledger.record_release(5, "0xq5", b"first", {"n": 1})
        ledger.record_release(5, "0xq5", b"second", {"n": 2})  # a retry of the same query: no change
        assert ledger.released(5) == ("0xq5", b"first") and len(ledger.releases()) == 1
        with pytest.raises(GrantRefused, match="job 5 was already released for query 0xq5"):
            ledger.record_release(5, "0xother", b"evil", {})
        assert ledger.released(5) == ("0xq5", b"first")
        # the chain refused to record it: the release is undone and the job can be released again
        assert not ledger.discard_release(5, "0xother") and ledger.discard_release(5, "0xq5")
        ledger.record_release(5, "0xother", b"again", {})
        assert ledger.released(5) == ("0xother", b"again") and [r["seq"] for r in ledger.releases()] == [2]


def test_prepared_grants_expire(tmp_path):
    clock = Clock()
    with ReleaseLedger(tmp_path / "l.sqlite", clock=clock) as ledger:
        ledger.put_prepared(1, "0xo", "0xq", GRANT, ttl_s=60)
        ledger.put_prepared(2, "0xo", "0xq", GRANT, ttl_s=600)
        ledger.put_prepared(3, "0xo", "0xq", GRANT, ttl_s=600)
        clock.t += 61
        assert ledger.take_prepared(1, "0xo", "0xq") is None  # expired: never returned
        assert ledger.take_prepared(2, "0xo", "0xq") == GRANT
        assert ledger.take_prepared(2, "0xo", "0xother") is None  # another query gets nothing
        assert ledger.purge_expired() == 0 and ledger.prepared_count() == 1
        assert ledger.purge_expired(now=clock.t + 600) == 1 and ledger.prepared_count() == 0
        with pytest.raises(ValueError):
            ledger.put_prepared(4, "0xo", "0xq", GRANT, ttl_s=0)


def test_prepared_grants_are_bounded_oldest_first(tmp_path):
    with ReleaseLedger(tmp_path / "l.sqlite", max_prepared=5) as ledger:
        for job in range(1, 9):
            ledger.put_prepared(job, "0xo", "0xq", {**GRANT, "grant_id": str(job)}, ttl_s=600)
        ledger.put_prepared(4, "0xo", "0xq", GRANT, ttl_s=600)  # re-preparing refreshes its place
        ledger.put_prepared(9, "0xo", "0xq", GRANT, ttl_s=600)
        assert ledger.prepared_count() == 5
        kept = [job for job in range(1, 10) if ledger.take_prepared(job, "0xo", "0xq") is not None]
        assert kept == [4, 6, 7, 8, 9]


def test_concurrent_threads(tmp_path):
    """Eight threads race to release the same jobs (two queries each) and to prepare: one query wins
    per job, every loser is refused, and nothing is lost."""
    ledger = ReleaseLedger(tmp_path / "l.sqlite")
    outcomes: list[tuple[int, str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for job in range(1, 21):
            qh = f"0xq{job}-{n % 2}"
            try:
                ledger.record_release(job, qh, f"sealed-{job}-{n % 2}".encode(), {"by": n})
                result = "ok"
            except GrantRefused:
                result = "refused"
            ledger.put_prepared(100 * n + job, "0xo", "0xq", GRANT, ttl_s=600)
            with lock:
                outcomes.append((job, qh, result))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledger.releases()) == 20 and ledger.prepared_count() == 160
    for job in range(1, 21):
        winner = ledger.released(job)[0]
        mine = [(qh, r) for j, qh, r in outcomes if j == job]
        assert all(r == ("ok" if qh == winner else "refused") for qh, r in mine)
    ledger.close()
