"""Source monitoring (000 §9.4.1): connection state, sync lag, quality drift, alerts, and
calls retried with exponential backoff that fail over to the standby URL.

Alerts are JSON lines (``$TDS_HOME/sources/alerts.jsonl``) the oversight monitor can tail:

``{"source": name, "kind": kind, "count": n, "first_reason": text, "time": unix seconds}``

with ``kind`` one of ``quarantine`` (rows set aside by a committed batch), ``quality_drift``
(a batch's overall score fell more than the threshold below the recent mean),
``connection_lost`` (every retry on every URL failed), ``failover`` (now reading the standby)
and ``auth_refused``."""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from chain.retry import is_transient
from offchain.sources.errors import SourceAuthRefused, SourceUnavailable
from offchain.sources.state import Quarantined, SourceState

T = TypeVar("T")
ALERT_KINDS = ("quarantine", "quality_drift", "connection_lost", "failover", "auth_refused")


@dataclass(frozen=True)
class AlertRecord:
    """One alert line: which source, what kind, how many rows/events, the first reason, when."""

    source: str
    kind: str
    count: int
    first_reason: str
    time: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def read_alerts(path: Path) -> list[AlertRecord]:
    """Every alert in the file, oldest first."""
    if not path.exists():
        return []
    return [AlertRecord(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


@dataclass(frozen=True)
class Backoff:
    """Retry policy: ``attempts`` per URL, sleeping base·2^k (±25 %, at most ``cap``)."""

    attempts: int = 5
    base: float = 0.2
    cap: float = 10.0

    def delay(self, k: int) -> float:
        return min(self.cap, self.base * 2 ** k) * random.uniform(0.75, 1.25)


class SourceMonitor:
    """Records each source's health in the state file and raises alert lines."""

    def __init__(self, state: SourceState, alerts: Path, *, drift_threshold: str = "0.05", window: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        self.state, self.alerts, self.clock = state, Path(alerts), clock
        self.drift_threshold, self.window = Decimal(drift_threshold), window

    def alert(self, source: str, kind: str, count: int, first_reason: str) -> AlertRecord:
        rec = AlertRecord(source, kind, count, first_reason, self.clock())
        self.alerts.parent.mkdir(parents=True, exist_ok=True)
        with open(self.alerts, "a", encoding="utf-8") as fh:
            fh.write(rec.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return rec

    def _update(self, source: str, **changes: Any) -> dict:
        doc = self.state.status(source)
        doc.update(changes)
        self.state.set_status(source, doc)
        return doc

    def connected(self, source: str, url: str, standby: bool) -> None:
        doc = self.state.status(source)
        if standby and not doc.get("using_standby"):
            self.alert(source, "failover", 1, f"primary unreachable; reading the standby {url}")
        self._update(source, connection="connected", url=url, using_standby=standby, since=self.clock(),
                     consecutive_failures=0)

    def failed(self, source: str, url: str, exc: BaseException) -> None:
        doc = self.state.status(source)
        self._update(source, connection="retrying", last_error=f"{type(exc).__name__}: {exc}"[:500],
                     last_error_at=self.clock(), consecutive_failures=doc.get("consecutive_failures", 0) + 1)

    def lost(self, source: str, exc: BaseException) -> None:
        self._update(source, connection="down")
        kind = "auth_refused" if isinstance(exc, SourceAuthRefused) else "connection_lost"
        self.alert(source, kind, 1, str(exc)[:500])

    def committed(self, source: str, *, rows: int, quarantined: Sequence[Quarantined], overall: str | None,
                  lag_s: float | None, version: int | None) -> None:
        """After a batch commits: counters, lag, quality drift; alerts for quarantine and drift."""
        doc = self.state.status(source)
        scores = list(doc.get("recent_quality", []))
        drift = None
        if overall is not None:
            if scores:
                baseline = sum(Decimal(s) for s in scores) / len(scores)
                drift = baseline - Decimal(overall)
                if drift > self.drift_threshold:
                    self.alert(source, "quality_drift", rows,
                               f"overall quality {overall} is {drift:.4f} below the recent mean {baseline:.4f}")
            scores = (scores + [overall])[-self.window:]
        if quarantined:
            self.alert(source, "quarantine", len(quarantined), quarantined[0].reason)
        self._update(source, last_commit=self.clock(), last_version=version, lag_s=lag_s,
                     rows_total=doc.get("rows_total", 0) + rows,
                     quarantined_total=doc.get("quarantined_total", 0) + len(quarantined),
                     recent_quality=scores, quality=overall,
                     quality_drift=str(drift) if drift is not None else None)

    def call(self, source: str, urls: Sequence[str], fn: Callable[[str], T], backoff: Backoff = Backoff(),
             sleep: Callable[[float], None] = time.sleep) -> T:
        """``fn(url)`` on the primary with backoff, then on the standby; connection state is
        recorded on the way. Credentials refused or non-transient errors are not retried."""
        last: BaseException | None = None
        for i, url in enumerate(urls):
            for k in range(backoff.attempts):
                try:
                    out = fn(url)
                except SourceAuthRefused as exc:
                    self.lost(source, exc)
                    raise
                except Exception as exc:
                    if not transient(exc):
                        raise
                    last = exc
                    self.failed(source, url, exc)
                    if k < backoff.attempts - 1:
                        sleep(backoff.delay(k))
                    continue
                self.connected(source, url, standby=i > 0)
                return out
        err = SourceUnavailable(source, " / ".join(urls), f"{type(last).__name__}: {last}")
        self.lost(source, err)
        raise err


def transient(exc: BaseException) -> bool:
    """Network-level failures worth retrying: sockets, timeouts, database disconnects, HTTP 5xx."""
    if is_transient(exc):
        return True
    name = type(exc).__name__
    if name in {"OperationalError", "InterfaceError", "DisconnectionError", "ConnectError", "ReadError",
                "RemoteProtocolError", "PoolTimeout", "ServerUnavailable"}:
        return True
    return any(transient(e) for e in (exc.__cause__,) if e is not None and e is not exc)
