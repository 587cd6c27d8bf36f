"""What an export covers: the audit entries of an asset, a participant or a time range, pinned at
one indexed block and cut into parts of a fixed number of rows, with the verdicts about them.

Part ``k`` of a scope pinned at block ``at`` is the same rows whenever it is asked (entries only
ever join a trail or the log after the ones already there), so each part has a well-defined hash,
and the parts' hashes together fix the whole export (:func:`tds.gateway.explorer.export.manifest`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tds.gateway.errors import BadRequest
from tds.gateway.explorer.data import ExplorerData
from tds.gateway.explorer.html import ADDRESS

PART_ROWS = 5000
MAX_PART_ROWS = 50_000


@dataclass(frozen=True)
class ExportAsk:
    """An export request: exactly one scope (asset, participant, or a time range), a part, its size
    and the block the export is pinned at (default: the indexed block)."""

    asset: int | None = None
    participant: str | None = None
    since: str | None = None
    until: str | None = None
    part: int = 1
    rows: int = PART_ROWS
    at: int | None = None

    def scope(self) -> dict[str, Any]:
        """The scope as the document records it."""
        if self.asset is not None:
            return {"kind": "asset", "id": self.asset}
        if self.participant is not None:
            return {"kind": "participant", "id": self.participant}
        return {"kind": "range", "from": self.since, "to": self.until}


@dataclass
class ExportPart:
    """One part of an export: its entries, the verdicts about them, where it sits among the parts."""

    scope: dict[str, Any]
    entries: list[Any]
    verdicts: list[dict[str, Any]]
    part: dict[str, Any]
    at: int


class NotInIndex(LookupError):
    """The scope names an asset or participant the index does not know."""


def _order(e: Any) -> tuple[int, int]:
    return e.block, int(e.id.rpartition(":")[2])


def _ref_ids(entries: list[Any], key: str) -> set[int]:
    return {e.object.get(key) for e in entries} - {None}


def collect(data: ExplorerData, ask: ExportAsk) -> ExportPart:
    """The asked part of the asked scope (raises :class:`NotInIndex`, or ``BadRequest`` for a block
    beyond the index or a part beyond the last)."""
    from tds.gateway.queries import parse_time

    indexed = data.indexed_block()
    at = indexed if ask.at is None else ask.at
    if at is None or indexed is None or at > indexed:
        raise BadRequest("beyond-index", f"at={at}: the index is complete to block {indexed} only")
    size, offset = ask.rows, (ask.part - 1) * ask.rows
    reads = data.reads()
    if ask.asset is not None:
        _, trail = reads.asset_trail(ask.asset)
        if trail is None:
            raise NotInIndex(f"asset {ask.asset}")
        pinned = [e for e in trail if e.block <= at]
        entries, total = pinned[offset:offset + size], len(pinned)
        more, of = offset + size < total, max(1, -(-total // size))
        verdicts = data.verifier.asset(ask.asset, at) or []
    else:
        accounts: list[str | None] = [None]
        if ask.participant is not None:
            if not ask.participant.startswith("did:") and not ADDRESS.match(ask.participant):
                raise BadRequest("invalid-participant", f"participant={ask.participant!r} is neither an address "
                                                        "(0x and 40 hex digits) nor a DID")
            accounts = list(data.accounts_of_did(ask.participant) if ask.participant.startswith("did:")
                            else [data.w3.to_checksum_address(ask.participant)])
            if not accounts:
                raise NotInIndex(f"participant {ask.participant}")
        lo, hi = parse_time(ask.since, "from"), parse_time(ask.until, "to")
        if len(accounts) == 1:  # paged in SQL
            _, total, page = reads.audit_page(visible_to=accounts[0], since=lo, until=hi, offset=offset, limit=size)
            entries = [e for e in page if e.block <= at]
            more = len(entries) == len(page) and offset + size < total
            of: int | None = None if more else ask.part
        else:  # a DID bound to several accounts in turn: their entries merged
            merged: dict[str, Any] = {}
            for acct in accounts:
                merged.update((e.id, e) for e in reads.audit_page(visible_to=acct, since=lo, until=hi,
                                                                  limit=10**7)[2])
            pinned = sorted((e for e in merged.values() if e.block <= at), key=_order)
            entries, total = pinned[offset:offset + size], len(pinned)
            more, of = offset + size < total, max(1, -(-total // size))
        jobs = _ref_ids(entries, "job")
        verdicts = data.verifier.scope(data.assets_of_jobs(jobs), _ref_ids(entries, "batch"), jobs, at)
    if ask.part > 1 and not entries:
        raise BadRequest("no-such-part", f"part {ask.part} of this export is empty: the export ends before it")
    jobs, batches = _ref_ids(entries, "job"), _ref_ids(entries, "batch")
    whole = ask.part == 1 and not more
    mine = [v for v in verdicts if whole or (v.get("refs") or {}).get("job") in jobs
            or (v.get("refs") or {}).get("batch") in batches]
    part = {"number": ask.part, "rows": size, "first_row": offset + 1 if entries else None,
            "last": not more, "of": of}
    return ExportPart(ask.scope(), entries, mine, part, at)
