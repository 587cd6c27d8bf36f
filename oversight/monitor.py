"""``tds monitor run``: the monitor as a long-running process.

Each step reads one confirmed chain window and whatever the watched logs gained, evaluates the
rules, and commits cursor, log positions, evaluator state and the raised alerts in one journal
transaction (:mod:`oversight.journal`). Then it works off the alerts' actions: write the alert
to the alert log, freeze each grant (after checking the chain), notify, anchor the alert log.
Killed at any point, a restart resumes from the last commit: no event is evaluated twice or
skipped, so no alert is duplicated or missed, and a freeze is never sent twice — the freezer
looks for this monitor's ``GrantFrozen`` since the alert was committed before sending.

The chain events come from the shared event index when the monitor is given one
(:class:`oversight.index_source.IndexFollower`), else from the node (:class:`ChainFollower`); the
cursor, the journal and the freeze (a chain transaction, checked on chain first) are the same.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3

from audit.anchor import Anchorer
from chain.config import Settings
from chain.deploy import bind
from chain.errors import TdsError
from chain.retry import is_transient
from chain.system import role_id
from chain.tx import Sender
from oversight.actions import Freezer, Notifier, NotifyFailed
from oversight.alerts import Alert, AlertLog
from oversight.index_source import IndexFollower, index_lookup
from oversight.journal import MonitorJournal
from oversight.rules import Evaluator, RuleSet
from oversight.access_logs import AccessLogTail
from oversight.source_alerts import read_source_alerts
from oversight.sources import (ChainFollower, Context, OpLogTail, chain_lookup, observation_from_record,
                               observations_from_events)

log = logging.getLogger("tds.oversight")
NOTIFY_RETRY_S = 30.0      # a failed notification is retried this often (the alert stays open)


class NotMonitor(TdsError):
    """The monitor's account does not hold MONITOR on Authorizations."""

    def __init__(self, address: str, authorizations: str):
        self.address, self.authorizations = address, authorizations
        super().__init__(f"{address} does not hold MONITOR on Authorizations {authorizations}; the admin grants it "
                         f"(chain/system.py wires dev account 2 on the embedded chain)")


@dataclass
class MonitorOptions:
    """What ``tds monitor run`` was asked to do (configuration lives in :mod:`chain.config`)."""

    confirmations: int = 1
    poll_s: float = 0.5
    oplogs: Sequence[Path] = ()             # key services' operation-log folders
    access_logs: Sequence[Path] = ()        # gateway / key-service access logs (AccessRecord lines)
    source_alerts: Sequence[Path] = ()      # live sources' alerts.jsonl files (raised as alerts as they are)
    anchor: bool = True
    max_range: int = 2000
    start_block: int | None = None


@dataclass
class StepResult:
    alerts: list[Alert] = field(default_factory=list)
    window: tuple[int, int] | None = None
    caught_up: bool = True


def work_dir(settings: Settings, chain_id: int, authorizations: str) -> Path:
    """Where the monitor keeps journal and alert log (and the regulator its reviews) for one deployment."""
    return settings.home / "oversight" / f"{chain_id}-{authorizations.lower()[2:10]}"


class Monitor:
    """Follows the chain and logs, evaluates the rules and acts on the alerts, exactly once."""

    def __init__(self, w3: Web3, deployment: dict[str, Any], account: LocalAccount, did: str, rules: RuleSet,
                 folder: Path, notifiers: Sequence[Notifier] = (), options: MonitorOptions | None = None,
                 crash: Callable[[str], None] | None = None, index: Any = None):
        self.w3, self.deployment, self.rules = w3, deployment, rules
        self.options = options or MonitorOptions()
        self.notifiers = list(notifiers)
        self.crash = crash or (lambda point: None)   # tests kill the monitor at named points
        self.c = {n: bind(w3, deployment, n) for n in deployment["contracts"]}
        auth = self.c["Authorizations"]
        if not auth.functions.hasRole(role_id("MONITOR"), account.address).call():
            raise NotMonitor(account.address, auth.address)
        self.sender = Sender(w3, account)
        self.freezer = Freezer(auth, self.sender)
        self.index = index                           # an audit.index.EventIndex to read events from, or None
        if index is not None:
            self.follower: Any = IndexFollower(index, w3, confirmations=self.options.confirmations,
                                               max_range=self.options.max_range)
        else:
            self.follower = ChainFollower(w3, self.c, confirmations=self.options.confirmations,
                                          max_range=self.options.max_range)
        self.folder = folder
        self.journal = MonitorJournal(folder / "journal.sqlite")
        self.journal.bind_to(f"{w3.eth.chain_id}:{auth.address}", account.address)
        self.alert_log = AlertLog(folder / "alerts", did, account.address)
        self.anchorer = Anchorer(self.alert_log.oplog, self.c["Evidence"], self.sender, w3,
                                 int(deployment.get("block") or 0))
        self.start_block = self.options.start_block if self.options.start_block is not None \
            else int(deployment.get("block") or 0)
        cursor, snap = self.journal.state()
        self.cursor = cursor
        self.evaluator = Evaluator(rules, snap.get("evaluator"))
        self.context = Context.from_json(snap.get("context"),
                                         index_lookup(index) if index is not None else chain_lookup(self.c))
        self.positions: dict[str, Any] = dict(snap.get("logs") or {})
        self._retry_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._anchor_due = True                      # anchor whatever a previous run left open

    # ------------------------------------------------------------------ evaluate and commit
    def step(self) -> StepResult:
        """Act on leftovers, then evaluate one confirmed window and the new log records."""
        self.drain()
        window = self.follower.next_window(self.cursor, self.start_block)
        observations = []
        if window is not None:
            observations += observations_from_events(window.events, window.times, self.context)
        positions = dict(self.positions)
        for folder in self.options.oplogs:
            records, positions[str(folder)] = OpLogTail(Path(folder)).read(positions.get(str(folder)))
            observations += [o for o in (observation_from_record(r, self.context) for r in records) if o is not None]
        for path in self.options.access_logs:
            records, positions[f"access:{path}"] = AccessLogTail(path).read(positions.get(f"access:{path}"))
            observations += [o for r in records for o in r.observations()]
        raised = []                                   # source alerts are alerts already (oversight.source_alerts)
        for path in self.options.source_alerts:
            found, positions[f"sources:{path}"] = read_source_alerts(path, positions.get(f"sources:{path}"))
            raised += found
        if window is None and positions == self.positions:
            return StepResult()
        alerts = self.evaluator.feed(observations) + raised  # feed also drops what no window can count any more
        cursor = (window.end, window.end_hash) if window is not None else self.cursor
        since = self.w3.eth.block_number + 1           # a freeze for these alerts is mined after this
        snapshot = {"evaluator": self.evaluator.snapshot(), "context": self.context.to_json(), "logs": positions}
        self.journal.commit(cursor, snapshot, alerts, since)
        self.cursor, self.positions = cursor, positions
        for a in alerts:
            log.warning("alert %s: %s [%s] %s", a.id, a.rule, a.severity, a.detail)
        self.crash("committed")
        self.drain()
        caught_up = window is None or window.end >= self.follower.confirmed_head()
        return StepResult(alerts, (window.start, window.end) if window else None, caught_up)

    # ------------------------------------------------------------------ act
    def drain(self) -> None:
        """Do every action of every open alert not yet done; anchor the alert log."""
        pending = self.journal.pending()
        for p in pending:
            a = p.alert
            if "logged" not in p.done:
                self.alert_log.record_alert(a)
                self.crash("logged")
                self.journal.mark(a.id, "logged")
                self._anchor_due = True
            if "freeze" in a.actions:
                for grant in a.grants:
                    if f"freeze:{grant}" in p.done:
                        continue
                    outcome, tx = self.freezer.freeze(grant, a.reason_code, p.since_block)
                    log.warning("alert %s: grant %d %s (tx %s)", a.id, grant, outcome, tx)
                    self.crash("frozen")
                    self.journal.record_freeze(a.id, grant, outcome, tx)
                    self.alert_log.record_freeze(a, grant, outcome, tx)
                    self.journal.mark(a.id, f"freeze:{grant}")
                    self._anchor_due = True
        for p in pending:
            if "notify" in p.alert.actions:
                self._notify(p.alert, p.done)
        if self._anchor_due and self.options.anchor:
            self.anchorer.anchor()
            self._anchor_due = False
            self.crash("anchored")
        for p in self.journal.pending():
            if "logged" in p.done and not self._missing(p.alert, p.done):
                self.journal.finish(p.alert.id)

    def _missing(self, a: Alert, done: frozenset[str]) -> list[str]:
        need = [f"freeze:{g}" for g in a.grants] if "freeze" in a.actions else []
        need += [n.name for n in self.notifiers] if "notify" in a.actions else []
        return [s for s in need if s not in done]

    def _notify(self, a: Alert, done: frozenset[str]) -> None:
        for n in self.notifiers:
            key = f"{a.id}|{n.name}"
            if n.name in done or self._retry_at.get(key, 0.0) > time.monotonic():
                continue
            try:
                n.send(a)
            except NotifyFailed as exc:
                log.warning("alert %s: %s (retrying in %.0f s)", a.id, exc, NOTIFY_RETRY_S)
                self._retry_at[key] = time.monotonic() + NOTIFY_RETRY_S
                continue
            self.crash("notified")
            self.journal.mark(a.id, n.name)

    # ------------------------------------------------------------------ loop
    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def run(self, *, once: bool = False, on_alert: Callable[[Alert], None] | None = None) -> None:
        """Step until stopped; with ``once``, until every confirmed block and log line is evaluated
        and every action done."""
        while not self._stop.is_set():
            try:
                result = self.step()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("node unreachable (%s: %s); retrying", type(exc).__name__, exc)
                self._stop.wait(self.options.poll_s)
                continue
            for a in result.alerts:
                if on_alert is not None:
                    on_alert(a)
            if once and result.caught_up and not result.alerts:
                self.drain()
                return
            if result.caught_up:
                self._stop.wait(self.options.poll_s)

    def close(self) -> None:
        self.journal.close()
