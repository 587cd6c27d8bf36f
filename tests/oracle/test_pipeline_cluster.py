"""The oracle's pipeline under the partitioning rule: a Dask cluster it cannot use fails the job
with reason 0x102 (the oracle's fault: the consumer's use is given back), naming the scheduler;
without the rule the same job is answered in-process."""
from __future__ import annotations

import json

from chain.node import free_port
from chain.ops import HOM_AGG, OPE_RANGE
from chain.params import canonical_params, params_hash
from offchain.ingest.table import Table
from offchain.keyservice.release import Grant, KeyService
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.policy import default_policy
from offchain.query.cluster import DaskOptions, Partitioning, close_clients, configure
from offchain.query.plan import Query
from offchain.store.client import EmbeddedStore
from oracle.pipeline import COMPUTE_CLUSTER_LOST, JobPipeline
from oracle.runner import JobRequest
from tests.offchain import test_bfv as shapes


class InProcessKeyService:
    """The provider's release logic (offchain.keyservice.release) without its on-chain checks."""

    def __init__(self, ks: KeyService, dataset_id: str) -> None:
        self.ks, self.dataset_id = ks, dataset_id

    def _grant(self, q: Query) -> Grant:
        return Grant("g", "did:c", frozenset({self.dataset_id}), frozenset(q.operations()))

    def prepare(self, job_id: int, q: Query, oracle: str):
        enc, peeled = self.ks.prepare(q, self._grant(q))
        return enc, peeled, self.ks.manifests

    def release(self, job_id: int, q: Query, result, oracle: str) -> bytes:
        return json.dumps(self.ks.open(q, self._grant(q), result).answer, default=str).encode()


def test_an_unusable_cluster_fails_the_job_with_0x102_and_without_it_the_job_is_answered(tmp_path):
    ring = Keyring()
    rows = shapes.rows_of(300, seed=9)
    ds = encrypt_table(Table.from_rows(shapes.S, rows), default_policy(shapes.S, shapes.CLS, 1, hom_scheme="bfv"),
                       shapes.CLS, ring, chunk_rows=150)
    store = EmbeddedStore(tmp_path / "store")
    ds.publish(store.add_bytes)
    raw = canonical_params({"dataset": ds.dataset_id, "aggregates": [["count"], ["max", "ts"]],
                            "where": [["range", "ts", 100, 800]]})
    store.add_bytes(raw, cid_version=1)
    job = JobRequest(1, 1, "0x" + "cc" * 20, OPE_RANGE | HOM_AGG, params_hash(raw), 0)
    pipeline = JobPipeline(store, InProcessKeyService(KeyService(ring, {ds.dataset_id: ds.manifest}, fetch=store.cat),
                                                      ds.dataset_id), "0x" + "0a" * 20)
    silent = f"tcp://127.0.0.1:{free_port()}"
    configure(Partitioning(DaskOptions(scheduler=silent, connect_timeout=1), min_rows=200))
    try:
        out = pipeline(job)
    finally:
        configure(None)
        close_clients()
    assert out.reason_code == COMPUTE_CLUSTER_LOST >= 0x100 and silent in out.detail
    answered = pipeline(job)                       # the same job on one process
    assert not answered.failed and answered.result_hash
