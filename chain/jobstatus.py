"""Job states as the Jobs contract numbers them (``IJobs.JobStatus``)."""
from __future__ import annotations

NONE, REQUESTED, ACCEPTED, COMPLETED, FAILED, RECLAIMED, CANCELLED = range(7)
SETTLED = frozenset({COMPLETED, FAILED, RECLAIMED, CANCELLED})
NAMES = ("none", "requested", "accepted", "completed", "failed", "reclaimed", "cancelled")  # by value
