"""Audit-log queries (000 §12.3.1.2–3): the chain's events as trail entries, filtered.

Each entry has the seed's fields — unique id, actor (operator subject), time, action, object
(data / grant / job ids) and result (with error code) — plus the DID bound to the actor and
the event it was read from. Who may see what: operators, regulators and the monitor see every
entry; any other authenticated participant sees the entries it is the actor of or the payee /
recipient of (its own operations), whatever filters it asks for.
"""
from __future__ import annotations

from datetime import datetime, timezone
from eth_utils import is_address, to_checksum_address

from audit.events import ChainReader
from audit.trail import ACTIONS, TrailEntry, build_trail, chain_entries
from tds.gateway.errors import BadRequest

AUDIT_ACTIONS = sorted({action for action, _ in ACTIONS.values()})


def parse_time(value: str | None, name: str) -> int | None:
    """Unix seconds, or an ISO-8601 time (``2026-05-01``, ``2026-05-01T12:00:00Z``)."""
    if value is None or value == "":
        return None
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("invalid-time", f"{name}={value!r} is neither unix seconds nor an ISO-8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp())


def _involves(entry: TrailEntry, account: str) -> bool:
    return entry.actor == account or entry.object.get("payee") == account or entry.object.get("to") == account


def query_events(reader: ChainReader, *, actor: str | None = None, asset: int | None = None,
                 action: str | None = None, since: int | None = None, until: int | None = None,
                 visible_to: str | None = None) -> list[TrailEntry]:
    """Entries matching every filter given; ``visible_to`` (an account) keeps only its own.

    ``actor`` is an address or a DID; ``asset`` narrows to that asset's trail (its grants,
    applications, jobs, settlements, anchors); ``since`` / ``until`` bound the block time.
    """
    if action is not None and action not in AUDIT_ACTIONS:
        raise BadRequest("invalid-action", f"action {action!r} is not one of: {', '.join(AUDIT_ACTIONS)}")
    if since is not None and until is not None and since > until:
        raise BadRequest("invalid-time", f"from ({since}) is after to ({until})")
    by_address = None
    if actor is not None:
        if is_address(actor):
            by_address = to_checksum_address(actor)
        elif not actor.startswith("did:"):
            raise BadRequest("invalid-actor", f"actor {actor!r} is neither an address nor a DID")
    entries = build_trail(reader, asset) if asset is not None else chain_entries(reader)
    out = []
    for e in entries:
        if actor is not None and (e.actor != by_address if by_address else e.actor_did != actor):
            continue
        if action is not None and e.action != action:
            continue
        if (since is not None and e.time < since) or (until is not None and e.time > until):
            continue
        if visible_to is not None and not _involves(e, visible_to):
            continue
        out.append(e)
    return out

