"""Where a query's partitions run: the Dask cluster connection, the rule that decides when a table
is partitioned, and the errors that name a cluster which cannot be used.

A service (``tds oracle run``, ``tds provider serve``) sets the process's rule once with
:func:`configure`: tables of at least ``min_rows`` rows run on ``--scheduler tcp://HOST:PORT``, or
without it on a local cluster of this machine; smaller tables stay in the process. An engine built
with ``distributed=None`` follows that rule (none set: one process, as for library callers).

A scheduler that does not answer is :class:`SchedulerUnreachable`; one that goes away while a
query's partitions run is :class:`ClusterLost` once the partitions have been resubmitted to a
fresh connection and that failed too. Both name the address and the fix; neither ever yields a
partial answer (the merge needs every partition)."""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import TdsError

# the default size from which a table's partitions run on a cluster: below it one process scans
# the table in well under a second (bench.table: 1 M rows, 0.1–0.8 s warm) and scheduling costs more
PARTITION_ROWS = 2_000_000
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DaskOptions:
    """Where partitions run: ``scheduler`` (``tcp://HOST:PORT``) or a local cluster of
    ``workers`` processes; ``partitions`` (default: 2 per worker, at most one per chunk)."""

    scheduler: str | None = None
    workers: int = 2
    partitions: int | None = None
    retries: int = 2
    connect_timeout: float = CONNECT_TIMEOUT_S


class ClusterUnavailable(TdsError, ConnectionError):
    """The Dask cluster a query's partitions need cannot be used (not the consumer's fault). A
    connection-level error: a service that meets it answers "unavailable, retry", never a refusal."""

    def __init__(self, scheduler: str, reason: str, fix: str) -> None:
        self.scheduler, self.reason, self.fix = scheduler, reason, fix
        super().__init__(f"Dask scheduler {scheduler}: {reason}; {fix}")


class SchedulerUnreachable(ClusterUnavailable):
    """No scheduler answers at the address (never started, stopped, wrong port, firewall)."""

    def __init__(self, scheduler: str, detail: str) -> None:
        super().__init__(scheduler, f"does not answer ({detail})",
                         f"start it ('dask scheduler --host HOST --port PORT' and one or more "
                         f"'dask worker {scheduler}') or leave --scheduler out to use a local cluster")


class ClusterLost(ClusterUnavailable):
    """The scheduler went away while partitions ran, and resubmitting them did not succeed."""

    def __init__(self, scheduler: str, detail: str) -> None:
        super().__init__(scheduler, f"went away mid-query and the partitions could not be rerun ({detail})",
                         "restart the scheduler and its workers (nothing was answered from part of the table)")


_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client_for(options: DaskOptions) -> Any:
    """A running Dask client for the options (a local cluster is started once and kept); a
    client whose scheduler went away is replaced by a fresh connection."""
    from dask.distributed import Client, LocalCluster
    key = options.scheduler or f"local:{options.workers}"
    with _lock:
        client = _clients.get(key)
        if client is not None and client.status == "running":
            return client
        if client is not None:
            _close(client)
            del _clients[key]
        if options.scheduler:
            _knock(options.scheduler, options.connect_timeout)
            try:
                client = Client(options.scheduler, set_as_default=False, timeout=options.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise SchedulerUnreachable(options.scheduler, f"{type(exc).__name__}: {exc}") from None
        else:
            cluster = LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster, set_as_default=False)
        _clients[key] = client
        return client


def _knock(scheduler: str, timeout: float) -> None:
    """Fail at once when nothing listens at a TCP scheduler address (Dask's client would keep
    retrying a refused connection until its timeout)."""
    from urllib.parse import urlsplit
    url = urlsplit(scheduler)
    if url.scheme != "tcp" or not url.hostname or not url.port:
        return
    try:
        socket.create_connection((url.hostname, url.port), timeout=timeout).close()
    except OSError as exc:
        raise SchedulerUnreachable(scheduler, exc.strerror or type(exc).__name__) from None


def forget(options: DaskOptions) -> None:
    """Drop (and close) the cached client of ``options``: the next :func:`client_for` reconnects."""
    with _lock:
        client = _clients.pop(options.scheduler or f"local:{options.workers}", None)
    if client is not None:
        _close(client)


def _close(client: Any) -> None:
    cluster = getattr(client, "cluster", None)
    try:
        client.close(timeout=2)
    except Exception:  # noqa: BLE001 - closing a client whose scheduler died may itself fail
        pass
    if cluster is not None:
        cluster.close()


def close_clients() -> None:
    """Close every client (and local cluster) this process started."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        _close(client)


def check_scheduler(options: DaskOptions) -> int:
    """Connect now (a service checks at start-up, not at its first big job); the workers it has."""
    client = client_for(options)
    return len(client.scheduler_info().get("workers", {}))


# --- the rule --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Partitioning:
    """Tables of at least ``min_rows`` rows (and more than one chunk) run on ``options``."""

    options: DaskOptions
    min_rows: int = PARTITION_ROWS

    def applies(self, manifest: dict) -> bool:
        chunks = [c for c in manifest.get("chunks", ()) if c.get("rows")]
        return len(chunks) > 1 and int(manifest.get("row_count", 0)) >= self.min_rows


_rule: Partitioning | None = None


def configure(rule: Partitioning | None) -> None:
    """Set the process's partitioning rule (``None``: every query in one process)."""
    global _rule
    _rule = rule


def options_for(manifest: dict) -> DaskOptions | None:
    """Where the process's rule runs a query over ``manifest``: a cluster, or None (here)."""
    rule = _rule
    return rule.options if rule is not None and rule.applies(manifest) else None


# --- fetching on the workers -----------------------------------------------------------------
class StoreReader:
    """The embedded content store as a fetch the workers can open themselves (by its folder): a
    store object holds locks and cannot travel to another process."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root)
        self._store: Any = None

    def __getstate__(self) -> dict:
        return {"root": self.root}

    def __setstate__(self, state: dict) -> None:
        self.root, self._store = state["root"], None

    def __call__(self, cid: str) -> bytes:
        if self._store is None:
            from offchain.store.client import EmbeddedStore
            self._store = EmbeddedStore(self.root)
        return self._store.cat(cid)


def portable_fetch(fetch: Any) -> Any:
    """``fetch`` in a form that can be shipped to the workers (the embedded store by folder)."""
    from offchain.store.client import EmbeddedStore
    owner = getattr(fetch, "__self__", None)
    if isinstance(owner, EmbeddedStore) and getattr(fetch, "__name__", "") == "cat":
        return StoreReader(owner.blocks.root)
    return fetch
