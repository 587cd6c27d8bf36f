"""Reading the access logs gateways and key services write (:mod:`offchain.keyservice.access_log`),
across their rotations, for the monitor's ``network_region`` and refusal rules.

A log is named by its live file (``access.jsonl``); rotation renames it, bytes unchanged, to
``access-<seq>.jsonl`` and starts a new one. A position ``{"seq": s, "offset": k}`` says: every
rotated file up to ``s`` is read, and ``k`` bytes of the next one (rotated ``s + 1`` if it exists
by now, else the live file). So nothing is read twice or skipped across a rotation, only what the
writer's bound deleted before the monitor came to it (logged).
"""
from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path

from chain.config import Settings
from offchain.keyservice.access_log import rotated_segments
from oversight.sources import AccessRecord

log = logging.getLogger("tds.oversight")
ACCESS_LOG = "access.jsonl"
_FIELDS = {f.name for f in fields(AccessRecord)}


def parse_records(data: bytes, where: str) -> list[AccessRecord]:
    """The access records of complete JSON lines (fields a newer writer adds are ignored)."""
    out = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(AccessRecord(**{k: v for k, v in d.items() if k in _FIELDS}))
        except (ValueError, TypeError) as exc:
            log.warning("%s: skipped a line that is not an access record (%s)", where, exc)
    return out


def _complete(data: bytes) -> bytes:
    cut = data.rfind(b"\n")
    return data[:cut + 1] if cut >= 0 else b""


class AccessLogTail:
    """New records of one rotating access log since a position (see the module docstring)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def read(self, pos: dict[str, int] | int | None) -> tuple[list[AccessRecord], dict[str, int]]:
        if isinstance(pos, int):                      # a plain byte offset (a journal from before rotation)
            pos = {"seq": 0, "offset": pos}
        seq, offset = (pos or {}).get("seq", 0), (pos or {}).get("offset", 0)
        records: list[AccessRecord] = []
        while True:
            for n, path in rotated_segments(self.path):
                if n <= seq:
                    continue
                if n > seq + 1:
                    log.warning("%s: rotated files %d..%d were deleted before they were read", self.path, seq + 1, n - 1)
                    offset = 0
                data = path.read_bytes()[offset:]
                records += parse_records(data, str(path))
                seq, offset = n, 0
            try:
                fh = open(self.path, "rb")  # noqa: SIM115  (closed below; the listing is re-checked first)
            except FileNotFoundError:
                return records, {"seq": seq, "offset": offset}
            with fh:
                if any(n > seq for n, _ in rotated_segments(self.path)):
                    continue                          # rotated between the listing and the open: read it first
                fh.seek(offset)
                data = _complete(fh.read())
            records += parse_records(data, str(self.path))
            return records, {"seq": seq, "offset": offset + len(data)}


def discover_access_logs(settings: Settings) -> list[Path]:
    """The access logs under ``$TDS_HOME`` now: each key service's (``provider/*/access.jsonl``) and
    the gateway's (``gateway/access.jsonl``)."""
    home = settings.home
    return [*sorted(home.glob(f"provider/*/{ACCESS_LOG}")), *sorted(home.glob(f"gateway/{ACCESS_LOG}"))]
