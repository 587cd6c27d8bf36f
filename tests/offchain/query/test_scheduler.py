"""``--scheduler tcp://HOST:PORT``: a real ``dask scheduler`` + ``dask worker`` pair (processes from
the venv, loopback) runs the partitions of a table the process's rule sends there, with results
identical to one process; an unreachable scheduler and one that goes away mid-query are refused by
name (address and fix), never answered from part of the table."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cloudpickle
import pytest
from click.testing import CliRunner

from chain.node import free_port
from offchain.ingest.table import Table
from offchain.keyservice.release import Grant, KeyService, same_result
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.policy import default_policy
from offchain.query.cluster import (ClusterLost, DaskOptions, Partitioning, SchedulerUnreachable, close_clients,
                                    configure)
from offchain.query.engine import Engine
from offchain.query.plan import Agg, Query, Range
from tests.offchain import test_bfv as shapes

pytestmark = pytest.mark.slow
DASK = str(Path(sys.executable).with_name("dask"))


class PidFetch:
    """The dataset's objects; each read notes the reading process (and may be slowed down)."""

    def __init__(self, objects: dict, folder: Path, delay: float = 0.0) -> None:
        self.objects, self.folder, self.delay = objects, str(folder), delay

    def __call__(self, cid: str) -> bytes:
        Path(self.folder, str(os.getpid())).touch()
        time.sleep(self.delay)
        return self.objects[cid]


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the dask worker cannot import this file


def _spawn(*args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([DASK, *args], stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _spawn("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                       log=tmp_path / "scheduler.log")
    worker = _spawn("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                    "--death-timeout", "5", log=tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 30
        while True:  # until the scheduler listens (its start-up takes seconds on a loaded machine)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or scheduler.poll() is not None:
                    raise RuntimeError((tmp_path / "scheduler.log").read_text()) from None
                time.sleep(0.1)
        yield address, scheduler, worker
    finally:
        configure(None)
        close_clients()
        _stop(worker)
        _stop(scheduler)


def test_partitions_run_on_the_scheduler_equal_to_one_process_and_losses_are_named(cluster, tmp_path):
    address, scheduler, _worker = cluster
    ring = Keyring()
    ds = encrypt_table(Table.from_rows(shapes.S, shapes.rows_of(1200, seed=5)),
                       default_policy(shapes.S, shapes.CLS, 1, hom_scheme="bfv"), shapes.CLS, ring, chunk_rows=150)
    ks = KeyService(ring, {ds.dataset_id: ds.manifest}, fetch=ds.get)
    q = Query(ds.dataset_id, (Agg("count"), Agg("sum", "amount"), Agg("max", "ts")), (Range("ts", 100, 800),), "region")
    grant = Grant("g", "did:c", frozenset({ds.dataset_id}), frozenset(q.operations()))
    enc, peeled = ks.prepare(q, grant)
    one = Engine(ks.manifests, ds.get, peeled, distributed=False).run(enc)

    # the rule of `--scheduler ADDRESS --partition-rows 1000`: this 1,200-row table goes to the cluster
    seen = tmp_path / "readers"
    seen.mkdir()
    configure(Partitioning(DaskOptions(scheduler=address, partitions=4, connect_timeout=20), min_rows=1000))
    many = Engine(ks.manifests, PidFetch(ds.objects, seen), peeled).run(enc)
    assert same_result(one, many)
    assert ks.open(q, grant, many).answer == ks.open(q, grant, one).answer
    readers = {int(p.name) for p in seen.iterdir()}
    assert readers and os.getpid() not in readers          # every chunk was read on the dask worker
    # a smaller table stays in this process under the same rule
    configure(Partitioning(DaskOptions(scheduler=address), min_rows=1201))
    assert Engine(ks.manifests, ds.get, peeled).run(enc).plan == one.plan and same_result(
        one, Engine(ks.manifests, ds.get, peeled).run(enc))

    # the scheduler goes away while the partitions run: a named error, never a partial answer
    options = DaskOptions(scheduler=address, partitions=8, connect_timeout=1)
    configure(Partitioning(options, min_rows=1000))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(Engine(ks.manifests, PidFetch(ds.objects, seen, delay=0.3), peeled).run, enc)
        from offchain.query.cluster import client_for
        client = client_for(options)
        deadline = time.monotonic() + 10
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(scheduler.pid, signal.SIGKILL)
        with pytest.raises(ClusterLost) as lost:
            running.result(timeout=30)
    assert address in str(lost.value) and "restart the scheduler" in str(lost.value)

    # nothing answers there now: refused at once, naming the address and the command that fixes it
    configure(Partitioning(DaskOptions(scheduler=address, connect_timeout=1), min_rows=1000))
    with pytest.raises(SchedulerUnreachable) as unreachable:
        Engine(ks.manifests, ds.get, peeled).run(enc)
    assert unreachable.value.scheduler == address and "dask scheduler" in str(unreachable.value)


def test_the_oracle_command_refuses_a_bad_or_silent_scheduler(tmp_path, monkeypatch):
    from tds.cli import cli
    from tds.cli.services import BadOption

    monkeypatch.setenv("TDS_HOME", str(tmp_path / "home"))
    base = ["oracle", "run", "oracle", "--key-service", "http://127.0.0.1:1"]
    r = CliRunner().invoke(cli, [*base, "--scheduler", "127.0.0.1:8786"])
    assert isinstance(r.exception, BadOption) and "expected tcp://HOST:PORT" in str(r.exception)
    silent = f"tcp://127.0.0.1:{free_port()}"
    try:
        r = CliRunner().invoke(cli, [*base, "--scheduler", silent])
    finally:
        configure(None)
        close_clients()
    assert isinstance(r.exception, SchedulerUnreachable), r.output
    assert silent in str(r.exception) and "dask scheduler" in str(r.exception)
