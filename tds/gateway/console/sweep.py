"""Sealed parameter blocks the console stored for jobs that were never requested: swept.

``POST /console/params`` stores a block once ``requestJob`` with its hash simulates, before the
wallet sends the request (a browser wallet cannot hand the gateway a signed transaction). A block
no ``JobRequested`` names is removed from the content store (unpinned) once its job's deadline has
passed (the request can no longer be made) or :data:`~tds.gateway.console.ledger.PARAMS_GRACE`
after it was stored, whichever comes first; a block a job names is kept and forgotten by the ledger.
Each consumer may have at most :data:`~tds.gateway.console.ledger.MAX_PENDING_PER_ACCOUNT` blocks
waiting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tds.gateway.console.ledger import MAX_PENDING_PER_ACCOUNT, PARAMS_GRACE, ConsoleLedger, PendingParams
from tds.gateway.errors import RateLimited


@dataclass(frozen=True)
class SweepReport:
    """What a sweep did: blocks a job named (kept), blocks removed, blocks still waiting."""

    used: int
    removed: int
    waiting: int


def _requested_hashes(reader: Any, pending: list[PendingParams]) -> set[str]:
    """The pending blocks' hashes some JobRequested names (0x-hex, lower case)."""
    wanted = {p.params_hash for p in pending}
    return {"0x" + bytes(e.args["paramsHash"]).hex() for e in reader.select("Jobs", "JobRequested")
            if "0x" + bytes(e.args["paramsHash"]).hex() in wanted}


def sweep(ledger: ConsoleLedger, reader: Any, content: Any, chain_time: int, now: int,
          consumer: str | None = None) -> SweepReport:
    """Forget the blocks a job names, unpin those that can no longer be (deadline passed) or were
    not within the grace time; only ``consumer``'s when given. ``chain_time`` is the latest block's
    timestamp (the deadline is checked against it), ``now`` the gateway's clock (the grace time)."""
    pending = ledger.pending(consumer)
    if not pending:
        return SweepReport(0, 0, 0)
    used = _requested_hashes(reader, pending)
    n_used = n_removed = 0
    for p in pending:
        if p.params_hash in used:
            ledger.forget_params(p.cid)
            n_used += 1
        elif p.deadline < chain_time or p.stored + PARAMS_GRACE < now:
            if content is not None:
                try:
                    content.unpin(p.cid)
                except Exception:  # already gone: nothing to keep
                    pass
            ledger.forget_params(p.cid)
            n_removed += 1
    return SweepReport(n_used, n_removed, len(pending) - n_used - n_removed)


def check_room(ledger: ConsoleLedger, consumer: str) -> None:
    """429 ``too-many-pending-params`` when ``consumer`` already has the maximum of blocks waiting."""
    waiting = len(ledger.pending(consumer))
    if waiting >= MAX_PENDING_PER_ACCOUNT:
        raise RateLimited("too-many-pending-params",
                          f"{consumer} has {waiting} stored job parameter blocks no job names yet (at most "
                          f"{MAX_PENDING_PER_ACCOUNT}); request those jobs, or wait until they are swept "
                          f"({PARAMS_GRACE // 60} min after storing, or at their deadline)",
                          headers={"Retry-After": "60"})
