"""The gateway's access log: one JSON line per request (client IP, authenticated DID and account,
path, grant/job/asset ids from the route, status, refusal code) for the oversight monitor's
``network_region`` and refusal rules — :mod:`offchain.keyservice.access_log` with the gateway's
conventions (refusal code in the body's ``error``; the authenticated account is the participant
recorded as ``consumer``).

``create_app`` does not add it by itself; whoever serves the app does, before it starts::

    install_access_log(app, gateway_access_log(settings))
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from chain.config import Settings
from offchain.keyservice.access_log import AccessLog, install


def gateway_access_log(settings: Settings) -> Path:
    """Where the gateway of ``settings`` writes its access log: ``$TDS_HOME/gateway/access.jsonl``
    (where ``tds monitor run --discover`` looks)."""
    return settings.home / "gateway" / "access.jsonl"


def install_access_log(app: Any, path: Path | str, **options: Any) -> AccessLog:
    """Record every request ``app`` answers in ``path`` (``options``: ``max_bytes``, ``keep``,
    ``flush_s`` of :class:`AccessLog`); returns the log (also ``app.state.access_log``)."""
    return install(app, path, "gateway", error_key="error", consumer_is_caller=True, **options)
