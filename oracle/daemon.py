"""``tds oracle run``: the oracle as a long-running process.

It checks that its DID is bound on chain to its account and that the account holds
COMPUTE_PROVIDER, then runs :class:`oracle.runner.OracleRunner` with the compute pipeline
(providers' key services over HTTP, the content store, queries in worker processes). Every
accept / complete / fail goes into the oracle's operation log, whose batches it anchors through
the Evidence contract every ``anchor_every`` seconds (and once more on a clean stop). SIGTERM
and SIGINT stop it after the current pass; SIGKILL at any point is safe (the journal).
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from web3 import Web3

from did.identity import Identity
from did.registry import IdentityRegistryClient
from audit.anchor import Anchorer
from audit.oplog import OpLog, OpRecord
from chain.deploy import bind, read_deployment
from chain.config import Settings
from chain.errors import TdsError
from oracle.journal import Journal
from did.sealing import ChainDirectory
from oracle.keyservice_client import HttpKeyService, KeyServiceRouter
from oracle.pipeline import JobPipeline
from oracle.runner import OracleRunner

log = logging.getLogger("tds.oracle")


class OracleNotRegistered(TdsError):
    """The oracle's identity is not bound on chain, or its account lacks COMPUTE_PROVIDER."""


@dataclass
class DaemonOptions:
    """What ``tds oracle run`` was asked to do (configuration lives in :mod:`chain.config`)."""

    key_services: dict[str, str]          # provider address -> URL ("*" for the default)
    confirmations: int = 1
    threads: int = 4
    processes: int = 1
    anchor_every: float = 60.0
    idle: float = 0.05
    start_block: int | None = None
    claim: int = 16                       # jobs claimed per acceptJobs (several oracles share a backlog)


def work_dir(settings: Settings, chain_id: int, jobs_address: str) -> Path:
    """Where this oracle keeps its journal and log for one deployment."""
    return settings.home / "oracle" / f"{chain_id}-{jobs_address.lower()[2:10]}"


def check_registration(registry: IdentityRegistryClient, identity: Identity) -> None:
    """Refuse to start unless the chain knows this oracle (says which command fixes it)."""
    on_chain = registry.identity_of(identity.address)
    if on_chain is None or registry.account_of_did(identity.did) != identity.address:
        raise OracleNotRegistered(f"identity {identity.name!r} ({identity.did}) is not bound to {identity.address} "
                                  f"on chain; run 'tds id bind {identity.name}' first")
    if not registry.has_participant_role(identity.address, "COMPUTE_PROVIDER"):
        raise OracleNotRegistered(f"{identity.address} does not hold COMPUTE_PROVIDER on chain; an operator must "
                                  f"grant it ('tds id credential issue … --role COMPUTE_PROVIDER' then 'grant')")


class OracleDaemon:
    """The runner, its pipeline, its log and its anchoring, wired from settings."""

    def __init__(self, settings: Settings, w3: Web3, identity: Identity, store: Any, options: DaemonOptions,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None):
        self.settings, self.w3, self.identity, self.options = settings, w3, identity, options
        deployment = read_deployment(settings.deployment_path(w3.eth.chain_id), w3.eth.chain_id)
        c = {n: bind(w3, deployment, n) for n in ("Jobs", "Authorizations", "AssetRegistry", "Evidence",
                                                  "IdentityRegistry")}
        registry = IdentityRegistryClient(w3, c["IdentityRegistry"], int(deployment.get("block") or 0))
        check_registration(registry, identity)
        services = {a: HttpKeyService(u, identity) for a, u in options.key_services.items() if a != "*"}
        default = HttpKeyService(options.key_services["*"], identity) if "*" in options.key_services else None
        router = KeyServiceRouter(c["Jobs"], c["Authorizations"], c["AssetRegistry"], services, default,
                                  directory=ChainDirectory(c["IdentityRegistry"], deployment["block"]))
        folder = work_dir(settings, w3.eth.chain_id, c["Jobs"].address)
        self.oplog = OpLog(folder / "log", identity.did)
        self._user_event = on_event or (lambda kind, data: None)
        pipeline = JobPipeline(store, router, identity.address, processes=options.processes)
        start = options.start_block if options.start_block is not None else deployment["block"]
        self.runner = OracleRunner(w3, c["Jobs"], identity.account, Journal(folder / "journal.sqlite"), pipeline,
                                   confirmations=options.confirmations, start_block=start, threads=options.threads,
                                   on_event=self._on_event, claim=options.claim)
        self.anchorer = Anchorer(self.oplog, c["Evidence"], self.runner.sender, w3, deployment["block"])
        self.folder = folder
        self._stop = threading.Event()

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        action = {"accepted": "accept", "completed": "complete", "failed": "fail"}[kind]
        failed = kind == "failed"
        self.oplog.append(OpRecord(action=action, actor_did=self.identity.did, actor_address=self.identity.address,
                                   object=dict(data), result="failed" if failed else "ok",
                                   error_code=str(data.get("reason")) if failed else None))
        self._user_event(kind, data)

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def run(self, until: Callable[[], bool] = lambda: False) -> None:
        """Run until stopped (or ``until()``), anchoring the log every ``anchor_every`` seconds."""
        next_anchor = time.monotonic() + self.options.anchor_every

        def stop() -> bool:
            nonlocal next_anchor
            if time.monotonic() >= next_anchor:
                next_anchor = time.monotonic() + self.options.anchor_every
                self._anchor_safely()
            return self._stop.is_set() or until()

        try:
            self.runner.run_forever(idle=self.options.idle, stop=stop)
        finally:
            self._anchor_safely()

    def _anchor_safely(self) -> None:
        try:
            self.anchorer.anchor()
        except Exception as exc:  # the records stay in the batch file; anchoring is retried next time
            log.warning("anchoring the operation log failed: %s: %s", type(exc).__name__, exc)
