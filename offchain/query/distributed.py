"""Partitions of a large table on a Dask distributed cluster.

The dataset's chunks are split into contiguous partitions; each partition is one Dask task that
runs the ordinary single-process engine over a manifest naming only its chunks, and returns its
groups' encrypted partial aggregates. The client merges them: row counts add, Paillier partial
products multiply mod n², BFV partial sums add (exact mod q, so the merged ciphertext is
byte-identical to the single-process one), MIN / MAX codes compare as bytes. Results are therefore
identical to the single-process path.

``DaskOptions(scheduler="tcp://HOST:PORT")`` uses a running cluster; without a scheduler a
``LocalCluster`` with ``workers`` worker processes is started on this machine (once per process).
A worker that dies mid-query loses its tasks; the scheduler reruns them on another worker (up to
``distributed.scheduler.allowed-failures`` times), and ``retries`` reruns a task that raised.
The tasks receive the query's tokens and the peeled RND keys: a Dask cluster is the compute
provider's own machinery, trusted exactly as the oracle process is."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offchain.errors import QueryError
from offchain.onion.bfv import evaluator
from offchain.onion.paillier import PaillierPublicKey
from offchain.onion.peel import PeeledKeys
from offchain.query.plan import EncryptedQuery

if TYPE_CHECKING:
    from offchain.query.engine import Engine, EncryptedResult


@dataclass(frozen=True)
class DaskOptions:
    """Where partitions run: ``scheduler`` (``tcp://HOST:PORT``) or a local cluster of
    ``workers`` processes; ``partitions`` (default: 2 per worker, at most one per chunk)."""

    scheduler: str | None = None
    workers: int = 2
    partitions: int | None = None
    retries: int = 2


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


_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client_for(options: DaskOptions) -> Any:
    """A Dask client for the options (a local cluster is started once and kept)."""
    from dask.distributed import Client, LocalCluster
    key = options.scheduler or f"local:{options.workers}"
    with _lock:
        client = _clients.get(key)
        if client is not None and client.status == "running":
            return client
        if options.scheduler:
            client = Client(options.scheduler, set_as_default=False)
        else:
            cluster = LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster, set_as_default=False)
        _clients[key] = client
        return client


def close_clients() -> None:
    """Close every client (and local cluster) this process started."""
    with _lock:
        for client in _clients.values():
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
        _clients.clear()


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
    engine = Engine({manifest["dataset_id"]: manifest}, fetch, PeeledKeys.from_dict(peeled), track_rows=track_rows)
    result = engine.run(q)
    members = [None if g.members is None else [offset + i for i in g.members["left"]] for g in result.groups]
    return result.to_dict(full_bfv=True), members


def run_partitioned(engine: "Engine", q: EncryptedQuery, options: DaskOptions) -> "EncryptedResult":
    """Run ``q`` over partitions of its dataset on the cluster and merge the partial results."""
    if q.join:
        raise QueryError("a JOIN is not partitioned; run it on one process")
    manifest = engine.manifests[q.datasets["left"]]
    client = client_for(options)
    workers = max(1, len(client.scheduler_info().get("workers", {})) or options.workers)
    parts = partitions(manifest, options.partitions or 2 * workers)
    fetch = client.scatter(engine.fetch, broadcast=True, hash=False)
    peeled = (engine.peeled or PeeledKeys()).to_dict()
    futures = [client.submit(_run_partition, sub, fetch, peeled, q.to_dict(), offset, engine.track_rows,
                             retries=options.retries, pure=False) for sub, offset in parts]
    return merge(manifest, q, client.gather(futures))


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
