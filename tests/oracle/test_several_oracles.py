"""Two ``tds oracle run`` processes (own accounts, DIDs and homes) drain one queue through
``Jobs.acceptJobs``, which skips jobs the other holds: every job is completed exactly once, none
fails or stays open, and both take a share. A journal is refused to a second oracle account."""
from __future__ import annotations

import os
import signal

import pytest

from bench.oracles import OracleFleet, count_on_chain
from chain.accounts import dev_account
from oracle.journal import Journal, JournalMismatch
from tests.oracle.test_oracle_daemon import _answer, _plain, _request, _wait
from tests.support.services import kill9, serve_world


@pytest.fixture
def served(tmp_settings, tmp_path):
    """The served world; its throw-away chain is killed, not dumped (anvil's state dump with step
    traces of the batched jobs takes longer than the test)."""
    sw = serve_world(tmp_settings, tmp_path)
    yield sw
    for proc in sw.spawned:
        if proc.poll() is None:
            kill9(proc)
    sw.key_service.stop()
    sw.store_server.stop()
    info = sw.node.status()
    if info is not None:
        os.kill(info.pid, signal.SIGKILL)
        try:
            os.waitpid(info.pid, 0)
        except ChildProcessError:
            pass


def test_two_oracle_processes_share_a_queue_each_job_completed_once(served, tmp_path):
    w = served.world
    env = {k: v for k, v in served.env().items() if k in ("TDS_RPC_URL", "TDS_DEPLOYMENT", "TDS_IPFS_API",
                                                          "TDS_PROJECT_ROOT")}
    fleet = OracleFleet.create(w, 2, tmp_path / "oracles", env, served.key_service.url)
    try:
        running = fleet.spawn(2, 2, "--claim", "3")   # a share of the backlog per acceptJobs
        served.spawned += [o.proc for o in running]   # killed by the fixture if the test fails
        fleet.wait_ready(running, w.space.w3)
        for o in running:
            o.signal(signal.SIGSTOP)                  # the queue fills while both are stopped
        first = w.space.w3.eth.block_number + 1
        jobs = _request(w, 10)
        for o in running:
            o.signal(signal.SIGCONT)
        c = w.space.c["Jobs"]
        _wait(lambda: len(c.events.JobCompleted().get_logs(from_block=first)) >= 10, 60, "10 completions")
    finally:
        for o in fleet.oracles:   # SIGKILL: exactly-once never depends on a clean stop
            o.signal(signal.SIGKILL)
    counts = count_on_chain(c, first, jobs, {o.name: o.address for o in fleet.oracles})
    assert (counts["completed_once"], counts["completed_twice"], counts["failed"], counts["left_open"]) == (10, 0, 0, 0)
    assert set(counts["accepted_by"]) == {"oracle", "oracle-b"} and sum(counts["accepted_by"].values()) == 10
    assert _answer(w, jobs[0]) == _answer(w, jobs[-1]) == _plain(w)


def test_a_journal_belongs_to_one_oracle_account(tmp_path):
    j = Journal(tmp_path / "journal.sqlite")
    j.bind_to(31337, "0x" + "ab" * 20, dev_account(5).address)
    j.bind_to(31337, "0x" + "ab" * 20, dev_account(5).address)       # the same oracle again: fine
    with pytest.raises(JournalMismatch, match="belongs to oracle .*own TDS_HOME"):
        j.bind_to(31337, "0x" + "ab" * 20, dev_account(6).address)
