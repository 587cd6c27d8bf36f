"""Several oracle processes draining one job queue (``python -m bench.oracle --oracles N``).

Each oracle is a real ``tds oracle run`` process with its own account, DID (bound on chain,
holding COMPUTE_PROVIDER) and TDS_HOME (its journal); all of them talk to the same provider key
service over HTTP and the same content store. A round with n oracles starts them, waits until each
has caught up with the chain, stops them (SIGSTOP), queues a burst of jobs, continues them
(SIGCONT) and times the drain until every job of the burst is completed on chain. The chain is then
counted: one ``JobCompleted`` per job, no ``JobFailed``, none left open, and how many each oracle
accepted (``JobAccepted``) — ``acceptJobs`` skips jobs another oracle holds, so none is done twice.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak

from chain import Member
from chain.accounts import dev_account
from chain.jobstatus import COMPLETED
from did.identity import Identity
from did.registry import IdentityRegistryClient

PASSWORD = "bench-oracle-password"
# dev accounts of the embedded node free in the sandbox world (provider 3, consumer 4, oracle 5)
ORACLE_ACCOUNTS = (5, 6, 7, 8, 9)


@dataclass
class OracleProc:
    """One ``tds oracle run`` process and where it keeps its state."""

    name: str
    address: str
    home: Path
    log: Path
    proc: subprocess.Popen | None = None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (a clean stop anchors its log), SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


def add_oracle(world: Any, name: str, index: int) -> Identity:
    """A compute provider on chain: a fresh DID bound to dev account ``index``, COMPUTE_PROVIDER granted."""
    if name == "oracle":
        return world.identities["oracle"]
    ident = Identity.create(name, dev_account(index))
    IdentityRegistryClient(world.space.w3, world.space.c["IdentityRegistry"]).bind(ident)
    world.space.grant_role(world.operator, Member(name, ident.account, ident.did), "COMPUTE_PROVIDER",
                           keccak(text=f"vc:{name}"))
    return ident


@dataclass
class OracleFleet:
    """``n`` oracle identities, each with its own TDS_HOME, ready to be spawned against one space."""

    root: Path
    env: dict[str, str]                 # TDS_RPC_URL, TDS_DEPLOYMENT, TDS_IPFS_API, TDS_PROJECT_ROOT
    key_service_url: str
    oracles: list[OracleProc] = field(default_factory=list)

    @classmethod
    def create(cls, world: Any, n: int, root: Path, env: dict[str, str], key_service_url: str) -> "OracleFleet":
        if n > len(ORACLE_ACCOUNTS):
            raise ValueError(f"at most {len(ORACLE_ACCOUNTS)} oracles (free dev accounts)")
        fleet = cls(root, env, key_service_url)
        for k in range(n):
            name = "oracle" if k == 0 else f"oracle-{chr(ord('b') + k - 1)}"
            ident = add_oracle(world, name, ORACLE_ACCOUNTS[k])
            home = root / f"{name}-home"
            with warnings.catch_warnings():   # a throw-away key: the low scrypt cost is on purpose
                warnings.simplefilter("ignore")
                ident.save(home / "identities", PASSWORD, overwrite=True, scrypt_n=2**10)
            fleet.oracles.append(OracleProc(name, ident.address, home, root / f"{name}.log"))
        return fleet

    def spawn(self, n: int, threads: int = 4, *extra: str) -> list[OracleProc]:
        """Start the first ``n`` oracles (``tds oracle run``), each under its own TDS_HOME."""
        for o in self.oracles[:n]:
            cmd = [sys.executable, "-c", "from tds.cli import main; main()", "oracle", "run", o.name,
                   "--password-env", "TDS_ORACLE_PASSWORD", "--key-service", self.key_service_url,
                   "--confirmations", "0", "--threads", str(threads), *extra]
            env = {**os.environ, **self.env, "TDS_HOME": str(o.home), "TDS_ORACLE_PASSWORD": PASSWORD}
            with open(o.log, "ab") as fh:
                o.proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                          cwd=self.env.get("TDS_PROJECT_ROOT"), start_new_session=True)
        return self.oracles[:n]

    def wait_ready(self, running: list[OracleProc], w3: Any, timeout: float = 60) -> None:
        """Until each process printed its start line and its journal has caught up with the chain head."""
        deadline = time.monotonic() + timeout
        for o in running:
            while not (o.log.exists() and "on chain" in o.log.read_text(errors="replace")):
                if o.proc is None or o.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{o.name} did not start; its log:\n{_tail(o.log)}")
                time.sleep(0.1)
        head = w3.eth.block_number
        for o in running:
            while not caught_up(o.home, head):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{o.name} did not catch up with block {head}; its log:\n{_tail(o.log)}")
                time.sleep(0.1)

    def stop(self) -> None:
        threads = [threading.Thread(target=o.stop) for o in self.oracles]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def caught_up(home: Path, head: int) -> bool:
    """True when the oracle's journal (under ``home``) follows ``head`` and holds no unfinished job."""
    import sqlite3

    for path in (home / "oracle").glob("*/journal.sqlite"):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT block FROM cursor WHERE name='jobs'").fetchone()
            busy = db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('seen','accepted','computed')").fetchone()[0]
        except sqlite3.Error:
            return False
        finally:
            db.close()
        return row is not None and row[0] >= head and busy == 0
    return False


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def count_on_chain(jobs_contract: Any, from_block: int, job_ids: list[int], oracles: dict[str, str]) -> dict[str, Any]:
    """What the chain says about ``job_ids``: completions per job, failures, open jobs, accepts per oracle."""
    ids = set(job_ids)
    completed = Counter(e["args"]["jobId"] for e in jobs_contract.events.JobCompleted().get_logs(from_block=from_block)
                        if e["args"]["jobId"] in ids)
    failed = [e["args"]["jobId"] for e in jobs_contract.events.JobFailed().get_logs(from_block=from_block)
              if e["args"]["jobId"] in ids]
    names = {a: n for n, a in oracles.items()}
    took = Counter(names.get(e["args"]["oracle"], e["args"]["oracle"])
                   for e in jobs_contract.events.JobAccepted().get_logs(from_block=from_block)
                   if e["args"]["jobId"] in ids)
    left = [j for j in job_ids if jobs_contract.functions.jobOf(j).call()[0][3] != COMPLETED]
    return {"jobs": len(job_ids), "completed_once": sum(1 for j in ids if completed[j] == 1),
            "completed_twice": sum(1 for j in ids if completed[j] > 1), "failed": len(failed),
            "left_open": len(left), "accepted_by": dict(sorted(took.items()))}


def settled_ids(w3: Any, jobs_contract: Any, from_block: int) -> set[int]:
    """Ids of the jobs completed or failed since ``from_block`` (jobId is the first indexed topic)."""
    topics = [jobs_contract.events.JobCompleted().topic, jobs_contract.events.JobFailed().topic]
    logs = w3.eth.get_logs({"address": jobs_contract.address, "fromBlock": from_block, "topics": [topics]})
    return {int.from_bytes(bytes(log["topics"][1]), "big") for log in logs}


def drain_round(world: Any, fleet: OracleFleet, n: int, jobs: int, make_job: Any, threads: int = 4,
                timeout: float = 600) -> dict[str, Any]:
    """One round: n oracles drain a burst of ``jobs`` queued while they were stopped; jobs/s and the count."""
    w3 = world.space.w3
    marks = {o.name: (o.log.stat().st_size if o.log.exists() else 0) for o in fleet.oracles[:n]}
    running = fleet.spawn(n, threads)
    try:
        fleet.wait_ready(running, w3)
        for o in running:
            o.signal(signal.SIGSTOP)
        first_block = w3.eth.block_number + 1
        burst = [make_job(k) for k in range(jobs)]
        t0 = time.perf_counter()
        for o in running:
            o.signal(signal.SIGCONT)
        c = world.space.c["Jobs"]
        deadline = time.monotonic() + timeout
        while True:  # raw logs, ids read from the topics: no ABI decoding in the key service's process
            ended = settled_ids(w3, c, first_block)
            if set(burst) <= ended or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
    finally:
        for o in running:
            o.stop()
    load = round(os.getloadavg()[0], 2)   # the machine's 1-minute load when the drain ended
    warned = []
    for o in running:
        with open(o.log, "rb") as fh:
            fh.seek(marks[o.name])
            warned += [f"{o.name}: {line}" for line in fh.read().decode(errors="replace").splitlines()
                       if " WARNING " in line]
    counts = count_on_chain(c, first_block, burst, {o.name: o.address for o in running})
    return {"oracles": n, "jobs_per_s": round(jobs / elapsed, 2), "drain_s": round(elapsed, 2), "load_1min": load,
            **counts, "oracle_warnings": len(warned), "first_warnings": warned[:5]}


class _ServedApp:
    """A FastAPI app on a free loopback port, in a thread (the provider's key service)."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the key service did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def measure_fleet(rows: int, jobs: int, threads: int, hom_bits: int, oracles: int,
                  log: Any = lambda line: None) -> dict[str, Any]:
    """Rounds with 1..``oracles`` oracle processes on one space; jobs/s of each drain and the counts."""
    import tempfile
    from dataclasses import replace

    from bench.oracle import _query
    from chain.config import load_settings
    from bench.generate import bulk_node
    from chain.node import free_port
    from chain.ops import HOM_AGG, OPE_RANGE
    from offchain.keyservice.service import build_key_service
    from offchain.store.blockstore import BlockStore
    from offchain.store.server import KuboRpcServer
    from tds.sandbox import PRICE, build_world

    with tempfile.TemporaryDirectory(prefix="tds-bench-oracles-") as tmp:
        tmp_path = Path(tmp)
        # a bare anvil (bench.generate.bulk_node): the embedded node's state dump every 5 s, with
        # step traces, grows with every job and stalls JSON-RPC for seconds — it would be measured
        settings = load_settings()
        node, url = bulk_node(settings.node_modules, free_port(), tmp_path / "anvil.log")
        settings = replace(settings, home=tmp_path / "home", rpc_url=url, chain_id=None,
                           deployment_file=tmp_path / "deployment.json")
        served = store_server = fleet = None
        try:
            t0 = time.perf_counter()
            w = build_world(settings, tmp_path, rows=rows, hom_bits=hom_bits, max_uses=10 * jobs * oracles + 200)
            built = build_key_service(settings, w.space.w3, w.identities["provider"], None, w.store,
                                      service=w.key_service)
            served = _ServedApp(built.app, free_port())
            store_server = KuboRpcServer(BlockStore(tmp_path / "store")).start()
            env = {"TDS_RPC_URL": url, "TDS_DEPLOYMENT": str(settings.deployment_file),
                   "TDS_IPFS_API": store_server.multiaddr, "TDS_PROJECT_ROOT": str(settings.project_root)}
            fleet = OracleFleet.create(w, oracles, tmp_path / "oracles", env, served.url)
            log(f"world of {rows} rows and {oracles} oracle identities in {time.perf_counter() - t0:.1f} s")

            def make_job(k: int) -> int:
                return w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, _query(w, k % 400), w.store,
                                           value=PRICE)

            # warm-up, not measured: the key service's first jobs open the dataset's columns, fill its
            # chunk cache and read the chain's key directory; every measured round then starts warm
            drain_round(w, fleet, 1, 4, make_job, threads)
            rounds = []
            for n in range(1, oracles + 1):
                r = drain_round(w, fleet, n, jobs, make_job, threads)
                log(f"{n} oracle(s): {r['jobs_per_s']} jobs/s; {r}")
                rounds.append(r)
        finally:
            if fleet is not None:
                fleet.stop()
            if served is not None:
                served.stop()
            if store_server is not None:
                store_server.stop()
            node.terminate()
            node.wait(timeout=30)
    return {"rows": rows, "jobs": jobs, "threads": threads, "paillier_bits": hom_bits, "rounds": rounds,
            "jobs_per_s_by_oracles": {str(r["oracles"]): r["jobs_per_s"] for r in rounds}}


def fleet_table(r: dict[str, Any]) -> str:
    """The rounds side by side."""
    title = (f"several oracle processes, one queue: {r['rows']} rows, {r['paillier_bits']}-bit Paillier, "
             f"{r['jobs']} jobs per round, {r['threads']} threads each")
    head = (f"{'oracles':>7} {'jobs/s':>8} {'drain s':>8} {'load':>6} {'done once':>10} {'twice':>6} {'failed':>7} "
            f"{'open':>5}  accepted by")
    out = [title, head, "-" * 103]
    for x in r["rounds"]:
        out.append(f"{x['oracles']:>7} {x['jobs_per_s']:>8.2f} {x['drain_s']:>8.2f} {x['load_1min']:>6.1f} "
                   f"{x['completed_once']:>10} "
                   f"{x['completed_twice']:>6} {x['failed']:>7} {x['left_open']:>5}  "
                   + ", ".join(f"{k} {v}" for k, v in x["accepted_by"].items()))
    return "\n".join(out)
