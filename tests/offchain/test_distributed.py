"""Partitions on a real Dask LocalCluster: identical results to one process, and a worker killed
mid-query makes its partitions rerun elsewhere — never a wrong answer."""
from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import pytest

from offchain.keyservice.release import Grant, KeyService, same_result
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.policy import default_policy
from offchain.ingest.table import Table
from offchain.query.distributed import DaskOptions, close_clients, worker_pids
from offchain.query.engine import Engine
from offchain.query.plan import Agg, Query, Range

from tests.offchain import test_bfv as shapes

pytestmark = pytest.mark.slow


class SlowFetch:
    """The dataset's objects, each read taking ``delay`` seconds (to kill a worker mid-query)."""

    def __init__(self, ds, delay: float) -> None:
        self.objects, self.delay = ds.objects, delay

    def __call__(self, cid: str) -> bytes:
        time.sleep(self.delay)
        return self.objects[cid]


cloudpickle.register_pickle_by_value(__import__(__name__))


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster
    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield c
    close_clients()
    c.close()


@pytest.fixture(scope="module")
def data(hom_key):
    rows = shapes.rows_of(1200, seed=3)
    ring = Keyring()
    bfv = encrypt_table(Table.from_rows(shapes.S, rows), default_policy(shapes.S, shapes.CLS, 1, hom_scheme="bfv"),
                        shapes.CLS, ring, chunk_rows=150)
    pai = encrypt_table(Table.from_rows(shapes.S, rows[:300]), default_policy(shapes.S, shapes.CLS, 1), shapes.CLS,
                        ring, hom_key=hom_key, chunk_rows=50)
    return ring, bfv, pai


def both(ks: KeyService, ds, q: Query, options: DaskOptions, fetch=None):
    grant = Grant("g", "did:c", frozenset({ds.dataset_id}), frozenset(q.operations()))
    enc, peeled = ks.prepare(q, grant)
    one = Engine(ks.manifests, ds.get, peeled, track_rows=True).run(enc)
    many = Engine(ks.manifests, fetch or ds.get, peeled, track_rows=True, distributed=options).run(enc)
    return grant, one, many


def test_partitions_on_dask_give_identical_results(cluster, data):
    ring, bfv, pai = data
    options = DaskOptions(scheduler=cluster.scheduler_address, partitions=3)
    for ds in (bfv, pai):
        ks = KeyService(ring, {ds.dataset_id: ds.manifest}, fetch=ds.get)
        for q in (Query(ds.dataset_id, (Agg("count"), Agg("sum", "amount"), Agg("max", "ts")), (Range("ts", 100, 800),),
                        "region"),
                  Query(ds.dataset_id, (Agg("count"), Agg("avg", "qty")), (Range("ts", 10, 990), Range("qty", 5, None)))):
            grant, one, many = both(ks, ds, q, options)
            assert same_result(one, many)
            assert [g.members for g in one.groups] == [g.members for g in many.groups]
            assert ks.open(q, grant, many).answer == ks.open(q, grant, one).answer


def test_a_worker_killed_mid_query_reruns_its_partition(cluster, data):
    ring, bfv, _ = data
    ks = KeyService(ring, {bfv.dataset_id: bfv.manifest}, fetch=bfv.get)
    q = Query(bfv.dataset_id, (Agg("count"), Agg("sum", "amount")), (Range("ts", 0, 700),), "region")
    options = DaskOptions(scheduler=cluster.scheduler_address, partitions=8)
    from offchain.query.distributed import client_for
    client = client_for(options)
    before = worker_pids(client)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(both, ks, bfv, q, options, SlowFetch(bfv, 0.15))
        deadline = time.monotonic() + 20
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)                                  # well inside the first partitions
        victim_addr, victim = next(iter(before.items()))
        os.kill(victim, signal.SIGKILL)
        grant, one, many = running.result(timeout=50)
    assert same_result(one, many)
    assert ks.open(q, grant, many).answer == ks.open(q, grant, one).answer
    client.wait_for_workers(2, timeout=20)
    assert victim not in worker_pids(client).values()
