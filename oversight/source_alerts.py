"""Live-source alerts (offchain/sources: ``$TDS_HOME/sources/alerts.jsonl``) raised through the
monitor (issue 15: source monitoring alerts go "through the monitor of the oversight issue").

Each new line — a source down (``connection_lost``), failing over, refusing our credentials, a
sync lagging, its quality drifting or rows quarantined — becomes an :class:`Alert` of rule
``source-<kind>`` on subject ``source:<name>``, notified like every other alert and written to the
same anchored alert log. Nothing is frozen: no grant is at fault. The evidence is the line's
place (``log:sources:<file>:<byte offset>``), from which the alert id is derived, so a restart
that re-reads a line raises the same id, never a second alert (the journal keeps ids once).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from chain.config import Settings
from oversight.alerts import Alert

log = logging.getLogger("tds.oversight")
ALERTS_FILE = "alerts.jsonl"
SEVERITY = {"connection_lost": "severe", "auth_refused": "severe", "quality_drift": "warning",
            "sync_lag": "warning", "quarantine": "warning", "failover": "info"}
SOURCE_REASON_CODE = 0      # no freeze, so no freeze reason


def source_alert(rec: dict[str, Any], ref: str, trigger: str | None = None) -> Alert:
    """The monitor's alert for one source alert line ``rec`` found at ``ref`` (``trigger``, default
    ``ref``: what makes its id unique — the file's full path and the line's offset)."""
    kind, name = str(rec.get("kind", "unknown")), str(rec.get("source", "?"))
    rule, subject = f"source-{kind}", f"source:{name}"
    count = rec.get("count")
    detail = f"source {name}: {kind.replace('_', ' ')}" + (f" ({count})" if count else "") + \
        (f": {rec['first_reason']}" if rec.get("first_reason") else "")
    return Alert(id=Alert.make_id(rule, subject, trigger or ref), rule=rule, kind=f"source_{kind}",
                 severity=SEVERITY.get(kind, "warning"), subject=subject, grants=(), evidence=(ref,),
                 time=float(rec.get("time") or 0.0), block=None, reason_code=SOURCE_REASON_CODE,
                 actions=("notify",), detail=detail)


def read_source_alerts(path: Path | str, offset: int | None) -> tuple[list[Alert], int]:
    """Alerts for the complete lines of ``path`` after byte ``offset``; the new offset."""
    path, offset = Path(path), offset or 0
    if not path.exists():
        return [], offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    data = data[:data.rfind(b"\n") + 1]
    out, at = [], offset
    for line in data.splitlines(keepends=True):
        if line.strip():
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise TypeError("not an object")
                out.append(source_alert(rec, f"log:sources:{path.name}:{at}", f"{path.resolve()}:{at}"))
            except (ValueError, TypeError) as exc:
                log.warning("%s: skipped a line that is not a source alert (%s)", path, exc)
        at += len(line)
    return out, offset + len(data)


def discover_source_alerts(settings: Settings) -> list[Path]:
    """The live sources' alert file under ``$TDS_HOME`` (``TDS_SOURCES_DIR``), if it exists."""
    path = settings.sources_dir / ALERTS_FILE
    return [path] if path.exists() else []
