"""One compliance scan: gather the facts, run the checks, open (or reopen) findings with their
transitions anchored, note the ones no longer seen, and push each open finding to its responsible
party with the suggested fix. ``verify`` closes a fixed finding only if a fresh scan of its
category no longer shows it."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chain.errors import TdsError
from did.identity import Identity
from oversight.compliance.checks import CATEGORIES, Violation, run_checks
from oversight.compliance.facts import Facts, gather
from oversight.compliance.findings import (
    OPEN_STATES,
    Finding,
    FindingStore,
    Transition,
    TransitionAnchor,
    TransitionRefused,
)

log = logging.getLogger("tds.compliance")


class FindingStillPresent(TdsError):
    """``verify`` on a finding whose violation a fresh scan still shows."""


class DeliveryFailed(TdsError):
    """A finding could not be pushed to its responsible party (names the target and why)."""


def work_dir(home: Path, chain_id: int, registry: str) -> Path:
    """``$TDS_HOME/compliance/<chain>-<AssetRegistry>/``: the findings store and the transition logs."""
    return home / "compliance" / f"{chain_id}-{registry.lower()}"


class WebhookPush:
    """POSTs a finding as JSON (``type: tds-finding/1``) — to every finding, or with ``party`` set
    only to the findings that party is responsible for. Receivers dedupe by ``id``."""

    def __init__(self, url: str, party: str | None = None, timeout: float = 5.0):
        if not url.startswith(("http://", "https://")):
            raise DeliveryFailed(f"webhook {url!r}: the URL must start with http:// or https://")
        self.url, self.party, self.timeout = url, party, timeout
        self.name = f"webhook:{party + '=' if party else ''}{url}"

    def wants(self, f: Finding) -> bool:
        """True if this push is for ``f``'s responsible party (or for everyone)."""
        return self.party is None or self.party.lower() == f.responsible.lower()

    def send(self, f: Finding) -> None:
        """POST ``f``; raises :class:`DeliveryFailed`."""
        body = {"type": "tds-finding/1", **f.to_json(), "suggested_fix": f.fix}
        try:
            r = httpx.post(self.url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{self.name}: {type(exc).__name__}: {exc}") from None
        if not 200 <= r.status_code < 300:
            raise DeliveryFailed(f"{self.name}: HTTP {r.status_code}")


def parse_push(text: str) -> WebhookPush:
    """``URL`` or ``ADDRESS=URL`` (only that party's findings)."""
    party, sep, url = text.partition("=")
    if sep and party.startswith("0x") and len(party) == 42:
        return WebhookPush(url, party)
    return WebhookPush(text)


@dataclass
class Scanner:
    """What a scan needs: the chain, the store, the scanning account and where the evidence is."""

    w3: Any
    contracts: dict[str, Any]
    from_block: int
    fetch: Callable[[str], bytes]
    account: Any                      # the scanning authority's account (anchors opened/verified)
    actor_did: str
    store: FindingStore
    anchor: TransitionAnchor
    oplogs: tuple[Path, ...] = ()
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    reader: Identity | None = None    # the regulator's identity: opens the sealed documents
    pushes: tuple[WebhookPush, ...] = ()
    index: Any = None                 # an audit.index.EventIndex: read the chain's part from it
    refresh_index: bool = True        # bring the index up to the chain's head before each scan

    def facts(self) -> Facts:
        """The facts at the chain's head: from the event index (first caught up) if the scanner has
        one, else from the node."""
        if self.index is None:
            return gather(self.w3, self.contracts, self.from_block, self.fetch, oplogs=self.oplogs,
                          credentials=self.credentials, reader=self.reader)
        from oversight.compliance.facts_index import gather_indexed

        if self.refresh_index:
            self.index.catch_up()
        return gather_indexed(self.index, self.fetch, from_block=self.from_block, oplogs=self.oplogs,
                              credentials=self.credentials, reader=self.reader)


@dataclass
class ScanResult:
    block: int
    time: int
    violations: list[Violation]
    opened: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    source: str = "chain"             # where the chain's facts were read: "chain" (the node) or "index"

    def to_json(self) -> dict[str, Any]:
        """What one scan did, as JSON (``tds compliance scan --json``)."""
        return {"block": self.block, "time": self.time, "violations": len(self.violations), "opened": self.opened,
                "reopened": self.reopened, "gone": self.gone, "delivered": self.delivered, "failed": self.failed,
                "source": self.source}


def scan(s: Scanner, categories: tuple[str, ...] = CATEGORIES) -> ScanResult:
    """Run the checks of ``categories`` once and bring the store up to date."""
    facts = s.facts()
    violations = run_checks(facts, categories)
    out = ScanResult(facts.block, facts.time, violations, source="chain" if s.index is None else "index")
    now = time.time()
    for v in violations:
        f = s.store.seen(v, facts.block, now)
        if f is None:
            s.store.open(v, facts.block, now, s.account, s.actor_did, s.anchor)
            out.opened.append(v.key)
        elif f.state is None:                       # a crash between insert and anchoring
            s.store.transition(v.key, "opened", s.account, s.actor_did, s.anchor, "found by a compliance scan")
            out.opened.append(v.key)
        elif f.state in ("fixed", "verified"):
            s.store.transition(v.key, "opened", s.account, s.actor_did, s.anchor,
                               f"reopened: still seen at block {facts.block} after it was {f.state}")
            out.reopened.append(v.key)
    out.gone = [f.id for f in s.store.absent({v.key for v in violations}, categories)]
    _push(s, out)
    return out


def _push(s: Scanner, out: ScanResult) -> None:
    for f in s.store.list():
        if f.state not in OPEN_STATES or not f.present:
            continue
        for p in s.pushes:
            if not p.wants(f) or s.store.delivered(f.id, p.name):
                continue
            try:
                p.send(f)
            except DeliveryFailed as exc:
                log.warning("%s (retried at the next scan)", exc)
                out.failed.append(f"{f.id} {p.name}")
                continue
            s.store.mark_delivered(f.id, p.name)
            out.delivered.append(f"{f.id} {p.name}")


def verify(s: Scanner, finding_id: str, note: str = "") -> Transition:
    """Close a fixed finding after a fresh scan of its category no longer shows it."""
    f = s.store.get(finding_id)
    if f.state != "fixed":
        raise TransitionRefused(f"finding {f.id} is {f.state}; only a finding its responsible party reported "
                                f"fixed can be verified")
    present = {v.key for v in run_checks(s.facts(), (f.category,))}
    if f.id in present:
        raise FindingStillPresent(f"finding {f.id} ({f.check} on {f.subject}) is still seen by a fresh scan; "
                                  f"it cannot be verified: {f.fix}")
    return s.store.transition(f.id, "verified", s.account, s.actor_did, s.anchor,
                              note or "a fresh scan no longer shows the violation")


def step(s: Scanner, finding_id: str, to: str, account: Any, actor_did: str, note: str = "") -> Transition:
    """The responsible party acknowledges a finding or reports it fixed (``to``)."""
    return s.store.transition(finding_id, to, account, actor_did, s.anchor, note)
