"""Running a source: build its connector, sync once or on its schedule, record versions.

``anchor`` (optional) records a committed version on the certificate — the CLI passes one that
calls ``AssetRegistry.recordVersion(assetId, manifest hash, previous hash)`` through
:func:`chain.versions.record_version`; versions not yet recorded are recorded first on the next
run (oldest first, so the chain's history follows the manifests' hash chain), so a crash between
commit and transaction only delays the record."""
from __future__ import annotations

import datetime as _dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from offchain.sources.monitor import Backoff, SourceMonitor
from offchain.sources.pipeline import Appender, BatchResult, KeyHolder
from offchain.sources.schedule import Schedule
from offchain.sources.spec import SourceSpec
from offchain.sources.state import SourceState

Anchor = Callable[[str, "str | None"], str]
"""``anchor(manifest hash 0x…, previous version's hash or None) -> transaction hash`` (or a
marker such as ``already-recorded`` / ``outside-history``, kept as the version's record)."""


@dataclass
class SourceHome:
    """Where a provider's sources live: the state file, version histories and alerts."""

    folder: Path

    @property
    def state_file(self) -> Path:
        return self.folder / "state.sqlite"

    @property
    def alerts_file(self) -> Path:
        return self.folder / "alerts.jsonl"

    def history_file(self, name: str) -> Path:
        return self.folder / "versions" / f"{name}.jsonl"


@dataclass
class SyncReport:
    """What one sync pass did."""

    source: str
    rows: int = 0
    quarantined: int = 0
    versions: list[int] = field(default_factory=list)
    anchored: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, results: list[BatchResult]) -> None:
        for r in results:
            self.rows += r.rows
            self.quarantined += r.quarantined
            if r.version is not None:
                self.versions.append(r.version)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SourceRunner:
    """Syncs sources of one :class:`SourceHome` into the content store."""

    def __init__(self, home: SourceHome, keys: KeyHolder, add_bytes: Callable[[bytes], str],
                 fetch: Callable[[str], bytes], *, processes: int = 1, backoff: Backoff = Backoff(),
                 anchor: Anchor | None = None, progress: Callable[[str, int], None] | None = None) -> None:
        self.home = home
        self.state = SourceState(home.state_file)
        self.monitor = SourceMonitor(self.state, home.alerts_file)
        self.keys, self.add_bytes, self.fetch = keys, add_bytes, fetch
        self.processes, self.backoff, self.anchor = processes, backoff, anchor
        self.progress = progress or (lambda name, n: None)

    def close(self) -> None:
        self.state.close()

    def appender(self, spec: SourceSpec) -> Appender:
        return Appender(spec, self.state, self.keys, self.add_bytes, self.fetch, self.home.history_file(spec.name),
                        self.monitor, self.processes)

    def connector(self, spec: SourceSpec) -> Any:
        app, tick = self.appender(spec), (lambda n: self.progress(spec.name, n))
        if spec.kind in ("postgres", "sqlite"):
            from offchain.sources.database import DatabaseSource
            return DatabaseSource(spec, app, self.monitor, self.backoff, tick)
        if spec.kind == "mqtt":
            from offchain.sources.mqtt import MqttSource
            return MqttSource(spec, app, self.monitor, self.backoff, tick)
        from offchain.sources.rest import RestSource
        return RestSource(spec, app, self.monitor, self.backoff, tick)

    def record_versions(self, name: str) -> list[str]:
        """Record every committed, not yet recorded version on chain (oldest first)."""
        if self.anchor is None:
            return []
        out = []
        for v in self.state.versions(name):
            if v.anchored_tx is None:
                tx = self.anchor(v.manifest_hash, v.previous_hash)   # the manifest's own hash-chain link
                self.state.set_anchored(name, v.version, tx)
                out.append(tx)
        return out

    def sync_once(self, name: str, *, stop: threading.Event | None = None) -> SyncReport:
        """One pass: databases and REST until caught up; MQTT until the queue stays empty."""
        spec = self.state.spec(name)
        report, t0 = SyncReport(name), time.time()
        report.anchored += self.record_versions(name)
        conn = self.connector(spec)
        try:
            if spec.kind == "mqtt":
                before = len(self.state.versions(name))
                conn.run(stop=stop, idle_timeout=max(2.0, 2 * spec.batch_seconds))
                stats = conn.stats
                report.rows, report.quarantined = stats.rows, stats.quarantined
                report.versions = [v.version for v in self.state.versions(name)[before:]]
            else:
                report.add(conn.sync())
        finally:
            (conn.stop if spec.kind == "mqtt" else conn.close)()
        report.anchored += self.record_versions(name)
        report.seconds = time.time() - t0
        return report

    def run(self, name: str, *, stop: threading.Event, on_pass: Callable[[SyncReport], None] | None = None) -> None:
        """Sync on the source's schedule until ``stop`` is set (MQTT: consume continuously)."""
        spec = self.state.spec(name)
        if spec.kind == "mqtt":
            conn = self.connector(spec)
            try:
                conn.run(stop=stop)
            finally:
                conn.stop()
            return
        schedule = Schedule.of(spec.every, spec.cron)
        while not stop.is_set():
            if schedule.cron is not None:
                stop.wait(schedule.delay_after(_dt.datetime.now()))
                if stop.is_set():
                    break
            try:
                report = self.sync_once(name)
                if on_pass:
                    on_pass(report)
            except Exception as exc:  # the monitor recorded it; keep the schedule going
                self.monitor.failed(name, spec.url, exc)
            if schedule.cron is None:
                stop.wait(schedule.delay_after(_dt.datetime.now()))
