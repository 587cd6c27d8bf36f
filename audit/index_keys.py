"""What an indexed event names, as ``(kind, key)`` pairs stored in ``event_keys``: the ids (asset,
grant, application, job, workflow, collaboration, batch, anchored subject), the hash an Evidence
anchor records, and the accounts (actor, payee, recipient, producer, node, bound DID). A reader
then fetches one entity's events by SQL — an asset's trail, a job's history, the audit entries an
account may see — instead of decoding every event of the chain. Pure functions: no database.
"""
from __future__ import annotations

from typing import Any

from audit.events import ChainEvent
from audit.trail import ACTIONS, REFUND_SHARE, ZERO

# event argument → key kind (the same ids the trail's scope follows)
ARG_KINDS = {"assetId": "asset", "tokenId": "asset", "grantId": "grant", "applicationId": "application",
             "jobId": "job", "workflowId": "workflow", "batchId": "batch", "subjectId": "subject",
             "payee": "payee", "producer": "producer"}


def key_text(value: Any) -> str:
    """The stored form of a key: decimal for ints, lower-case 0x-hex for addresses and bytes,
    any other text (a DID) as it is."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text.lower() if text.startswith("0x") else text


def is_audited(ev: ChainEvent) -> bool:
    """True if ``ev`` is an audit-log entry (:func:`audit.trail.chain_entries` shows it)."""
    return (ev.contract, ev.name) in ACTIONS and not (ev.name == "Transfer" and ev.args.get("from") == ZERO)


def actor_of(ev: ChainEvent, contract_address: str) -> str | None:
    """The account an audit entry names as the actor (the contract itself for automatic events)."""
    found = ACTIONS.get((ev.contract, ev.name))
    if found is None:
        return None
    return ev.args[found[1]] if found[1] else contract_address


def keys_of(ev: ChainEvent) -> set[tuple[str, str]]:
    """Every ``(kind, key)`` ``ev`` names."""
    a = ev.args
    out: set[tuple[str, str]] = set()
    for arg, kind in ARG_KINDS.items():
        if arg in a and not isinstance(a[arg], (list, tuple, dict)):
            out.add((kind, key_text(a[arg])))
    if ev.contract == "Collaborations":
        if "id" in a:
            out.add(("collab", key_text(a["id"])))
        if ev.name == "Credited":  # jobId is a grant use (grantId << 32 | use), or the collaboration on a refund
            out.discard(("job", key_text(a["jobId"])))
            if a["share"] == REFUND_SHARE:
                out.add(("collab", key_text(a["jobId"])))
            else:
                out.add(("grant", key_text(a["jobId"] >> 32)))
                out.add(("use", key_text(a["jobId"])))
        if ev.name == "StepGrantConsumed":
            out.add(("use", key_text(a["useId"])))
    if ev.contract == "Evidence" and ev.name == "HashAnchored":
        out.add(("hash", key_text(a["hash"])))
    if ev.name == "Transfer":
        out.add(("to", key_text(a["to"])))
    if ev.contract == "IdentityRegistry" and ev.name == "IdentityBound":
        out.add(("did", a["did"]))
    if ev.contract == "NodeRegistry" and "node" in a:
        out.add(("node", key_text(a["node"])))
    actor = actor_of(ev, ev.address)
    if actor:
        out.add(("actor", key_text(actor)))
    return out
