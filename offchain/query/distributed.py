"""Partitions of a large table on a Dask distributed cluster.

The dataset's chunks are split into contiguous partitions; each partition is one Dask task that
runs the ordinary single-process engine over a manifest naming only its chunks, and returns its
groups' encrypted partial aggregates. The client merges them: row counts add, Paillier partial
products multiply mod n², BFV partial sums add (exact mod q, so the merged ciphertext is
byte-identical to the single-process one), MIN / MAX codes compare as bytes. Results are therefore
identical to the single-process path.

``DaskOptions(scheduler="tcp://HOST:PORT")`` uses a running cluster; without a scheduler a
``LocalCluster`` with ``workers`` worker processes is started on this machine (once per process;
:mod:`.cluster` holds the connection, the rule deciding which tables are partitioned, and the
errors). A worker that dies mid-query loses its tasks; the scheduler reruns them on another worker
(up to ``distributed.scheduler.allowed-failures`` times), and ``retries`` reruns a task that
raised. A scheduler that goes away mid-query has every partition resubmitted once over a new
connection, then :class:`~offchain.query.cluster.ClusterLost`.
The tasks receive the query's tokens and the peeled RND keys: a Dask cluster is the compute
provider's own machinery, trusted exactly as the oracle process is."""
from __future__ import annotations

import logging
import os
from concurrent.futures import CancelledError
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.comm.core import CommClosedError

from offchain.errors import QueryError
from offchain.query.cluster import (  # noqa: F401 (re-exported: where partitions run)
    ClusterLost, ClusterUnavailable, DaskOptions, SchedulerUnreachable, client_for, close_clients, forget,
    portable_fetch)
from offchain.onion.bfv import evaluator
from offchain.onion.paillier import PaillierPublicKey
from offchain.onion.peel import PeeledKeys
from offchain.query.plan import EncryptedQuery

if TYPE_CHECKING:
    from offchain.query.engine import Engine, EncryptedResult

log = logging.getLogger("tds.query")


class ObjectDirectory:
    """A fetch every worker can use without the objects being shipped: one file per CID."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root)

    def put(self, cid: str, blob: bytes) -> None:
        Path(self.root, cid).write_bytes(blob)

    def __call__(self, cid: str) -> bytes:
        try:
            return Path(self.root, cid).read_bytes()
        except FileNotFoundError:
            raise QueryError(f"object {cid} is not in {self.root}") from None


def partitions(manifest: dict, parts: int) -> list[tuple[dict, int]]:
    """(sub-manifest naming only its chunks, first row) for ``parts`` contiguous partitions."""
    chunks = [c for c in manifest["chunks"] if c["rows"]]
    parts = max(1, min(parts, len(chunks)))
    out, offset = [], 0
    for p in range(parts):
        mine = chunks[p * len(chunks) // parts:(p + 1) * len(chunks) // parts]
        rows = sum(c["rows"] for c in mine)
        out.append(({**manifest, "chunks": mine, "row_count": rows}, offset))
        offset += rows
    return out


def _run_partition(manifest: dict, fetch: Any, peeled: dict, query: dict, offset: int,
                   track_rows: bool) -> tuple[dict, list]:
    from offchain.query.engine import Engine
    q = EncryptedQuery.from_dict(query)
    engine = Engine({manifest["dataset_id"]: manifest}, fetch, PeeledKeys.from_dict(peeled), track_rows=track_rows,
                    distributed=False)
    result = engine.run(q)
    members = [None if g.members is None else [offset + i for i in g.members["left"]] for g in result.groups]
    return result.to_dict(full_bfv=True), members


# what a client raises when its scheduler goes away under it (futures cancelled with
# "scheduler-connection-lost", a closed comm); an error raised by a task itself is not among them
_LOST = (CancelledError, CommClosedError)


def run_partitioned(engine: "Engine", q: EncryptedQuery, options: DaskOptions) -> "EncryptedResult":
    """Run ``q`` over partitions of its dataset on the cluster and merge the partial results. If the
    scheduler goes away mid-query, every partition is resubmitted once over a fresh connection;
    if that fails too, :class:`ClusterLost` (never a result merged from some partitions)."""
    if q.join:
        raise QueryError("a JOIN is not partitioned; run it on one process")
    manifest = engine.manifests[q.datasets["left"]]
    try:
        return merge(manifest, q, _gather(engine, q, options, manifest))
    except _LOST as exc:
        first = f"{type(exc).__name__}: {exc}"
    log.warning("Dask scheduler %s lost mid-query (%s); resubmitting every partition",
                options.scheduler or "(local)", first)
    forget(options)
    try:
        return merge(manifest, q, _gather(engine, q, options, manifest))
    except SchedulerUnreachable as exc:
        raise ClusterLost(exc.scheduler, f"{first}; then {exc.reason}") from None
    except _LOST as exc:
        raise ClusterLost(options.scheduler or "(local)", f"{first}; then {type(exc).__name__}: {exc}") from None


def _gather(engine: "Engine", q: EncryptedQuery, options: DaskOptions, manifest: dict) -> list[tuple[dict, list]]:
    client = client_for(options)
    workers = len(client.scheduler_info().get("workers", {}))
    if not workers:
        try:
            client.wait_for_workers(1, timeout=options.connect_timeout)
        except TimeoutError:
            raise ClusterUnavailable(options.scheduler or "(local)", "has no workers",
                                     f"start one or more 'dask worker {options.scheduler}'") from None
        workers = len(client.scheduler_info().get("workers", {}))
    parts = partitions(manifest, options.partitions or 2 * max(1, workers))
    fetch = client.scatter(portable_fetch(engine.fetch), broadcast=True, hash=False)
    peeled = (engine.peeled or PeeledKeys()).to_dict()
    futures = [client.submit(_run_partition, sub, fetch, peeled, q.to_dict(), offset, engine.track_rows,
                             retries=options.retries, pure=False) for sub, offset in parts]
    return client.gather(futures)


def merge(manifest: dict, q: EncryptedQuery, partials: list[tuple[dict, list]]) -> "EncryptedResult":
    """One result from the partitions' results (same groups, counts and ciphertexts as one run)."""
    from offchain.query.columns import DatasetView
    from offchain.query.engine import EncryptedResult, GroupResult
    view = DatasetView(manifest, lambda cid: b"", None)
    pub = PaillierPublicKey.from_dict(manifest["hom"]["public"]) if manifest.get("hom") else None
    merged: dict[bytes | None, GroupResult] = {}
    plans = set()
    for result_dict, members in partials:
        result = EncryptedResult.from_dict(result_dict)
        plans.add(result.plan)
        for g, mem in zip(result.groups, members):
            into = merged.get(g.label)
            if into is None:
                merged[g.label] = g
                g.members = None if mem is None else {"left": list(mem)}
                continue
            into.rows += g.rows
            for side, c in g.hom.items():
                assert pub is not None
                into.hom[side] = int(into.hom[side] * c % pub.n2) if side in into.hom else c
            for col, ct in g.bfv.items():
                into.bfv[col] = evaluator(view.bfv_columns[col].params).add_bytes(into.bfv.get(col, b""), ct)
            for name, code in g.codes.items():
                old = into.codes.get(name)
                into.codes[name] = code if old is None else (min if name.startswith("min:") else max)(old, code)
            if mem is not None and into.members is not None:
                into.members["left"] += mem
    groups = [merged[k] for k in sorted(merged, key=lambda x: x or b"")]
    for g in groups:
        if view.layout is not None and g.hom:
            view.layout.check_rows(g.rows)
        for col in g.bfv:
            view.bfv_columns[col].check_rows(g.rows)
    plan = plans.pop() if len(plans) == 1 else "scan"
    return EncryptedResult(q.query_hash, q.datasets, groups, plan)


def worker_pids(client: Any) -> dict[str, int]:
    """Worker address → process id (for fault tests and monitoring)."""
    return client.run(os.getpid)
