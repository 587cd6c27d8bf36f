"""Job states as the Jobs contract numbers them (``IJobs.JobStatus``)."""
from __future__ import annotations

NONE, REQUESTED, ACCEPTED, COMPLETED, FAILED, RECLAIMED, CANCELLED, RELEASED = range(8)
SETTLED = frozenset({COMPLETED, FAILED, RECLAIMED, CANCELLED})
NAMES = ("none", "requested", "accepted", "completed", "failed", "reclaimed", "cancelled", "released")  # by value
