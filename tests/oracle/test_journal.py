"""The oracle journal survives reopening and never records a job twice."""
from __future__ import annotations

import pytest

from oracle.journal import Journal


def test_seen_is_idempotent_and_durable(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    assert j.record_seen(1, 10, "0xaa", {"op": 4})
    assert not j.record_seen(1, 10, "0xaa", {"op": 4})
    j.transition(1, "accepted")
    j.transition(1, "computed", {"cid": "Qm"})
    j.close()
    j2 = Journal(tmp_path / "j.sqlite")
    e = j2.get(1)
    assert (e.state, e.result, e.payload) == ("computed", {"cid": "Qm"}, {"op": 4})
    assert [x.job_id for x in j2.unfinished()] == [1]
    j2.transition(1, "posted")
    assert list(j2.unfinished()) == []
    assert j2.counts() == {"posted": 1}


def test_unknown_state_refused(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.record_seen(1, 1, "0x", {})
    with pytest.raises(ValueError, match="unknown journal state"):
        j.transition(1, "teleported")


def test_cursor_and_reorg_forgetting(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    assert j.cursor("jobs") is None
    j.set_cursor("jobs", 5, "0x05")
    j.set_cursor("jobs", 6, "0x06")
    assert j.cursor("jobs") == (6, "0x06") and j.block_hash(5) == "0x05"
    j.record_seen(1, 6, "0x", {})
    j.record_seen(2, 4, "0x", {})
    j.transition(2, "accepted")
    assert j.forget_jobs_from_block(5) == 1
    assert j.get(1) is None and j.get(2) is not None


def test_many_at_once_in_one_transaction(tmp_path):
    """A batch's jobs are journaled in one SQLite transaction (one sync): seen events replayed are
    not new, every transition lands, and a batch with an unknown state journals none of it."""
    j = Journal(tmp_path / "j.sqlite")
    assert j.record_seen(2, 9, "0x02", {"op": 4})
    assert j.record_seen_many([(1, 10, "0x01", {"op": 4}), (2, 9, "0x02", {"op": 4}), (3, 10, "0x03", {})]) == [1, 3]
    j.transition_many([1, 2], "accepted")
    with pytest.raises(ValueError, match="unknown journal state"):
        j.transition_many([1, 2, 3], "teleported")
    j.close()
    j2 = Journal(tmp_path / "j.sqlite")
    assert {e.job_id: e.state for e in j2.unfinished()} == {1: "accepted", 2: "accepted", 3: "seen"}
    j2.transition_many([1, 2, 3], "posted")
    assert j2.counts() == {"posted": 3}
