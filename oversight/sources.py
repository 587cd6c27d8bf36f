"""What the monitor reads, turned into :class:`oversight.rules.Observation` s.

* **Chain events** of the deployment — ``JobRequested``, ``JobFailed``, ``OracleFailureRecorded``
  (Jobs), ``GrantIssued`` (Authorizations), ``AssetRegistered`` / ``Transfer`` (AssetRegistry:
  who holds an asset, for per-provider rules) and ``AssetRated`` (QualityRatings) — read by a
  :class:`ChainFollower` in windows at least ``confirmations`` blocks deep and decoded with the
  deployment's ABIs (:class:`audit.events.LogDecoder`). A reverted request leaves no event, so
  refusals are seen where they are recorded: ``JobFailed`` reason codes and the logs below.
* **Operation logs** of key services (:class:`audit.oplog.OpLog` folders): a ``failed`` record is
  a refusal (its ``error_code``), an ``ok`` ``key-release`` a key-service call. Read by
  :class:`OpLogTail` from a position that survives the log's batches being closed.
* **Access logs** of gateways and key services: JSON lines in the :class:`AccessRecord` shape,
  one per HTTP request, with the client's IP (read by :class:`JsonlTail`).

Positions (block cursor, log offsets) are returned, never stored here: the monitor commits them
with its evaluator state in one transaction.
"""
from __future__ import annotations

import json
import logging
from functools import lru_cache
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound

from audit.events import ChainEvent, LogDecoder
from audit.oplog import Batch, OpRecord
from chain.retry import with_backoff
from oversight.rules import Observation

log = logging.getLogger("tds.oversight")

WATCHED = {"Jobs": ("JobRequested", "JobFailed", "OracleFailureRecorded"),
           "Authorizations": ("GrantIssued",),
           "AssetRegistry": ("AssetRegistered", "Transfer"),
           "QualityRatings": ("AssetRated",)}


@dataclass(frozen=True)
class AccessRecord:
    """One HTTP request at a gateway or key service, as the monitor reads it (one JSON line).

    ``status`` is the HTTP status; a refused request (401/403/409/429) carries the refusal's
    ``error`` code (``OperationOutOfScope``, ``RateLimited`` …)."""

    id: str
    time: float
    source: str                 # "gateway" | "keyservice"
    client_ip: str
    method: str = "GET"
    path: str = "/"
    status: int = 200
    consumer: str | None = None
    grant: int | None = None
    asset: int | None = None
    job: int | None = None
    error: str | None = None
    did: str | None = None      # the authenticated caller's DID and account, if any
    account: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def observations(self) -> list[Observation]:
        """The access itself, and a refusal if the request was refused with an error code."""
        ref = f"log:{self.id}"
        out = [Observation("access", ref, self.time, grant=self.grant, asset=self.asset,
                           consumer=_checksum(self.consumer), client_ip=self.client_ip)]
        if self.status >= 400 and self.error:
            out.append(Observation("refusal", ref, self.time, grant=self.grant, asset=self.asset,
                                   consumer=_checksum(self.consumer), code=self.error))
        return out


@lru_cache(maxsize=65536)
def _checksum(address: Any) -> str | None:
    return Web3.to_checksum_address(address) if isinstance(address, str) and Web3.is_address(address) else None


@dataclass
class Context:
    """What observations need beyond one event: grant → (asset, consumer), asset → holder.
    JSON-able (the monitor commits it with its cursor); ``lookup`` reads the chain for ids seen
    before the monitor's first block."""

    grants: dict[str, list[Any]] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)
    lookup: Callable[[str, int], Any] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"grants": self.grants, "holders": self.holders}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None, lookup: Callable[[str, int], Any] | None = None) -> "Context":
        d = d or {}
        return cls(dict(d.get("grants") or {}), dict(d.get("holders") or {}), lookup)

    def grant(self, grant_id: int) -> tuple[int | None, str | None]:
        hit = self.grants.get(str(grant_id))
        if hit is None and self.lookup is not None:
            hit = self.lookup("grant", grant_id)
            if hit is not None:
                self.grants[str(grant_id)] = hit
        return (hit[0], hit[1]) if hit else (None, None)

    def holder(self, asset_id: int | None) -> str | None:
        if asset_id is None:
            return None
        hit = self.holders.get(str(asset_id))
        if hit is None and self.lookup is not None:
            hit = self.lookup("holder", asset_id)
            if hit is not None:
                self.holders[str(asset_id)] = hit
        return hit


def chain_lookup(contracts: dict[str, Contract]) -> Callable[[str, int], Any]:
    """Context lookups answered by the contracts (for grants and assets older than the cursor)."""
    def lookup(what: str, ident: int) -> Any:
        try:
            if what == "grant":
                g = contracts["Authorizations"].functions.grantOf(ident).call()
                return [int(g[8]), g[0]]
            return contracts["AssetRegistry"].functions.ownerOf(ident).call()
        except Exception:  # unknown id (reverts): the observation simply lacks the field
            return None
    return lookup


def observations_from_events(events: Iterable[ChainEvent], times: dict[int, int], ctx: Context) -> list[Observation]:
    """Observations of decoded chain events (``times``: block → timestamp); updates ``ctx``."""
    out: list[Observation] = []
    for ev in events:
        a, ref, t = ev.args, ev.uid, float(times[ev.block])
        if ev.name == "GrantIssued":
            ctx.grants[str(a["grantId"])] = [int(a["assetId"]), a["consumer"]]
        elif ev.name == "AssetRegistered":
            ctx.holders[str(a["assetId"])] = a["provider"]
        elif ev.name == "Transfer" and ev.contract == "AssetRegistry":
            ctx.holders[str(a["tokenId"])] = a["to"]
        elif ev.name == "JobRequested":
            asset = int(a["assetId"])
            out.append(Observation("job", ref, t, ev.block, int(a["grantId"]), asset, a["consumer"],
                                   ctx.holder(asset)))
        elif ev.name == "JobFailed":
            grant = int(a["jobId"]) >> 32          # job ids are grantId << 32 | use index
            asset, consumer = ctx.grant(grant)
            out.append(Observation("job_failed", ref, t, ev.block, grant, asset, consumer, ctx.holder(asset),
                                   a["oracle"], int(a["reasonCode"])))
        elif ev.name == "OracleFailureRecorded":
            out.append(Observation("oracle_failure", ref, t, ev.block, int(a["jobId"]) >> 32, oracle=a["oracle"],
                                   code=int(a["reasonCode"])))
        elif ev.name == "AssetRated":
            asset = int(a["assetId"])
            out.append(Observation("rating", ref, t, ev.block, int(a["grantId"]), asset, a["consumer"],
                                   ctx.holder(asset), score=float(a["score"])))
    return out


def observation_from_record(rec: OpRecord, ctx: Context | None = None) -> Observation | None:
    """A key service's log record as an observation: a refusal, a key-service call, or None."""
    obj = rec.object
    grant = obj.get("grant")
    grant = int(grant) if isinstance(grant, (int, str)) and str(grant).isdigit() else None
    asset, consumer = ctx.grant(grant) if (ctx is not None and grant is not None) else (None, None)
    consumer = _checksum(obj.get("consumer")) or consumer
    provider = _checksum(rec.actor_address)
    if rec.result == "failed":
        return Observation("refusal", f"log:{rec.id}", rec.time, None, grant, asset, consumer, provider,
                           code=rec.error_code)
    if rec.action == "key-release":
        return Observation("call", f"log:{rec.id}", rec.time, None, grant, asset, consumer, provider,
                           oracle=_checksum(obj.get("requester")))
    return None


# --- followers and tails --------------------------------------------------------------------
@dataclass(frozen=True)
class ChainWindow:
    """A confirmed block range: its decoded events, block times and the end block's hash."""

    start: int
    end: int
    end_hash: str
    events: list[ChainEvent]
    times: dict[int, int]
    reorged: bool = False


class ChainFollower:
    """Reads the watched events of a deployment in confirmed windows from a caller-kept cursor.

    A window ends ``confirmations`` blocks below the head. If the cursor block's hash changed (a
    reorg deeper than the confirmations) the window is flagged ``reorged`` — alerts already raised
    stand as evidence; events of the new branch are read from the cursor on."""

    def __init__(self, w3: Web3, contracts: dict[str, Contract], *, confirmations: int = 1, max_range: int = 2000):
        self.w3 = w3
        self.confirmations = confirmations
        self.max_range = max_range
        watched = {n: c for n, c in contracts.items() if n in WATCHED}
        self.decoder = LogDecoder(w3, watched)
        self.addresses = [c.address for c in watched.values()]
        self.topics = [self._topic(c, e) for n, c in watched.items() for e in WATCHED[n]]

    @staticmethod
    def _topic(contract: Contract, event: str) -> str:
        from eth_utils import event_abi_to_log_topic

        abi = next(e for e in contract.abi if e.get("type") == "event" and e["name"] == event)
        return "0x" + event_abi_to_log_topic(abi).hex()

    def block_hash(self, number: int) -> str:
        try:
            return "0x" + bytes(with_backoff(lambda: self.w3.eth.get_block(number))["hash"]).hex()
        except BlockNotFound:
            return ""

    def confirmed_head(self) -> int:
        """The last block a window may end at now (``confirmations`` below the head)."""
        return int(with_backoff(lambda: self.w3.eth.block_number)) - self.confirmations

    def next_window(self, cursor: tuple[int, str] | None, start_block: int) -> ChainWindow | None:
        """The next confirmed window after ``cursor`` (block, hash), or None if none is confirmed."""
        safe = with_backoff(lambda: self.w3.eth.block_number) - self.confirmations
        reorged = False
        if cursor is None:
            start = start_block
        else:
            start = cursor[0] + 1
            reorged = bool(cursor[1]) and self.block_hash(cursor[0]) != cursor[1]
            if reorged:
                log.warning("block %d changed below the cursor (reorg deeper than %d confirmations)",
                            cursor[0], self.confirmations)
        if start > safe:
            return None
        end = min(safe, start + self.max_range - 1)
        logs = with_backoff(lambda: self.w3.eth.get_logs({"fromBlock": start, "toBlock": end,
                                                          "address": self.addresses, "topics": [self.topics]}))
        events = sorted((e for e in map(self.decoder.decode, logs) if e is not None), key=lambda e: e.position)
        times = {b: int(with_backoff(lambda b=b: self.w3.eth.get_block(b))["timestamp"])
                 for b in sorted({e.block for e in events})}
        return ChainWindow(start, end, self.block_hash(end), events, times, reorged)


def _complete_lines(data: bytes) -> bytes:
    """``data`` up to its last newline (a writer may be half-way through a line)."""
    cut = data.rfind(b"\n")
    return data[:cut + 1] if cut >= 0 else b""


class OpLogTail:
    """New records of one operation-log folder since a position ``{"batches": n, "offset": k}``.

    ``OpLog.close_batch`` moves the open file's bytes unchanged into ``batch-<n>.jsonl``; the
    first ``offset`` bytes of that batch were already read from the open file, so they are
    skipped there and nothing is read twice or missed."""

    def __init__(self, folder: Path, producer: str = ""):
        self.folder = Path(folder)
        self.producer = producer

    def read(self, pos: dict[str, int] | None) -> tuple[list[OpRecord], dict[str, int]]:
        done, offset = (pos or {}).get("batches", 0), (pos or {}).get("offset", 0)
        records: list[OpRecord] = []
        batches = sorted(self.folder.glob("batch-*.jsonl"))
        for path in batches[done:]:
            data = path.read_bytes()[offset:]
            records += Batch.from_jsonl(self.producer, data, str(path)).records
            done, offset = done + 1, 0
        open_file = self.folder / "open.jsonl"
        if open_file.exists():
            data = _complete_lines(open_file.read_bytes()[offset:])
            records += Batch.from_jsonl(self.producer, data, str(open_file)).records
            offset += len(data)
        return records, {"batches": done, "offset": offset}


class JsonlTail:
    """New :class:`AccessRecord` lines of one JSON-lines file since a byte ``offset``."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self, offset: int | None) -> tuple[list[AccessRecord], int]:
        offset = offset or 0
        if not self.path.exists():
            return [], offset
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            data = _complete_lines(fh.read())
        out = []
        for n, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                try:
                    out.append(AccessRecord(**json.loads(line)))
                except (ValueError, TypeError) as exc:
                    log.warning("%s: skipped a line that is not an access record (%s)", self.path, exc)
        return out, offset + len(data)
