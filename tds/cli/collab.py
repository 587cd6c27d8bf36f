"""``tds collab validate|submit|status|cancel`` (collaboration description files) and
``tds node add|list|status|heartbeat|disable|enable|remove`` (the node registry)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from chain import collab as cc
from tds.cli.deployed import Deployed
from tds.cli.output import console, emit_json
from tds.cli.refusals import BadInput, NotYours, StateRefused, iso, onchain
from tds.cli.wallet import WalletChoice, wallet_options

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))


def _plan(file: Path):
    from oracle.collab.description import load, plan

    return plan(load(file))


@click.group()
def collab() -> None:
    """Multi-party collaborations: one description file, one transaction, a DAG of steps."""


@collab.command("validate")
@_FILE
@click.option("--offline", is_flag=True, help="Check the file alone, not against the chain.")
@_JSON
def collab_validate(file: Path, offline: bool, as_json: bool) -> None:
    """Check FILE (shape, graph, engine parameters; then grants, nodes and identities on chain)."""
    p = _plan(file)
    quote = None
    if not offline:
        from oracle.collab.checks import check

        problems, quote = check(Deployed.open().space, p)
        if problems:
            raise StateRefused("the collaboration cannot be submitted:\n  " + "\n  ".join(problems))
    out = {"valid": True, "name": p.description.name, "descriptionHash": "0x" + p.description_hash.hex(),
           "steps": [{"index": s.index, "id": s.step.id, "engine": s.step.engine, "after": list(s.after),
                      "grants": list(s.request.grant_ids), "output": s.step.output} for s in p.steps]}
    if quote:
        out |= {"paymentToken": quote.payment_token, "price": str(quote.total)}
    if as_json:
        emit_json(out)
        return
    console.print(f"{file}: valid ({len(p.steps)} steps)" + (f", price {quote.total} wei" if quote else ""))
    for s in p.steps:
        after = ", ".join(p.steps[a].step.id for a in s.after) or "-"
        console.print(f"  [{s.index}] {s.step.id:12} {s.step.engine:4} after {after:16} grants "
                      f"{', '.join(map(str, s.request.grant_ids))}{'  (output)' if s.step.output else ''}")


@collab.command("submit")
@_FILE
@_JSON
@wallet_options
@onchain
def collab_submit(file: Path, as_json: bool, wallet: WalletChoice) -> None:
    """Consumer: check FILE against the chain, publish it, then start the collaboration (pays every grant)."""
    from oracle.collab.checks import check
    from oracle.collab.description import canonical

    p = _plan(file)
    d = Deployed.open()
    problems, quote = check(d.space, p)
    if problems:
        raise StateRefused("the collaboration cannot be submitted:\n  " + "\n  ".join(problems))
    me = d.signer(wallet)
    if me.address != to_checksum_address(p.description.participants.consumer.address):
        raise NotYours(f"the description names consumer {p.description.participants.consumer.address}; "
                       f"you sign as {me.address}")
    store = d.store()
    store.add_bytes(canonical(p.description.model_dump(mode="json")), cid_version=1)
    for s in p.steps:
        store.add_bytes(canonical(s.document), cid_version=1)
    cid = cc.request_collaboration(d.space, me, p.description_hash, p.requests(),
                                   p.description.environment.step_timeout, quote.total)
    if as_json:
        emit_json({"collaborationId": cid, "price": str(quote.total)})
    else:
        console.print(f"collaboration {cid} started ({len(p.steps)} steps, {quote.total} wei in escrow)")


def _resolve(d: Deployed, target: str) -> int:
    if target.isdigit():
        return int(target)
    path = Path(target)
    if not path.exists():
        raise BadInput(f"{target} is neither a collaboration id nor a description file")
    digest = _plan(path).description_hash
    logs = d.c["Collaborations"].events.CollaborationRequested().get_logs(from_block=d.deployment["block"])
    found = [e["args"]["id"] for e in logs if bytes(e["args"]["descriptionHash"]) == digest]
    if not found:
        raise StateRefused(f"no collaboration on chain was started from {target}")
    return found[-1]


@collab.command("status")
@click.argument("target")
@_JSON
@onchain
def collab_status(target: str, as_json: bool) -> None:
    """Show a collaboration (TARGET: its id or its description file) step by step."""
    d = Deployed.open()
    cid = _resolve(d, target)
    info = cc.collaboration(d.space, cid)
    steps = cc.steps_of(d.space, cid)
    out = {"collaborationId": cid, "status": info["status"].name.lower(), "initiator": info["initiator"],
           "descriptionHash": "0x" + info["description_hash"].hex(),
           "steps": [{"index": s.index, "status": s.status.name.lower(), "grants": list(s.grant_ids),
                      "nodes": list(s.nodes), "deadline": iso(s.deadline) if s.deadline else None,
                      "resultHash": "0x" + s.result_hash.hex() if any(s.result_hash) else None}
                     for s in steps]}
    if as_json:
        emit_json(out)
        return
    console.print(f"collaboration {cid}: {out['status']} (initiator {info['initiator']})")
    for s in out["steps"]:
        console.print(f"  [{s['index']}] {s['status']:10} grants {s['grants']} result {s['resultHash'] or '-'}")


@collab.command("result")
@click.argument("target")
@click.option("--step", "step_id", required=True, help="The output step (its id in the file, or its index).")
@click.option("--identity", "w_identity", metavar="NAME", required=True,
              help="The consumer's 'tds id' identity (its key opens the sealed result).")
@_JSON
def collab_result(target: str, step_id: str, w_identity: str, as_json: bool) -> None:
    """Consumer: fetch an output step's sealed result and open it with your key."""
    from audit.verify import cid_text
    from oracle.collab.coordinator import open_result

    d = Deployed.open()
    cid = _resolve(d, target)
    index = int(step_id) if step_id.isdigit() else None
    if index is None:
        if not Path(target).exists():
            raise BadInput("name the step by its index when TARGET is a collaboration id")
        index = _plan(Path(target)).step(step_id).index
    done = cc.step_results(d.space, cid).get(index)
    if done is None:
        raise StateRefused(f"step {index} of collaboration {cid} has not completed")
    if not done["resultCid"]:
        raise StateRefused(f"step {index} of collaboration {cid} is intermediate: its result is never published")
    result = open_result(WalletChoice(w_identity, None, None).identity_keys(), d.store(),
                         cid_text(bytes(done["resultCid"])))
    if as_json:
        emit_json(result)
    else:
        console.print(json.dumps(result, indent=2, sort_keys=True, default=str))


@collab.command("cancel")
@click.argument("target")
@wallet_options
@onchain
def collab_cancel(target: str, wallet: WalletChoice) -> None:
    """Initiator: stop a collaboration whose open steps are past their deadline (refund, uses back)."""
    d = Deployed.open()
    cid = _resolve(d, target)
    r = cc.cancel(d.space, d.signer(wallet), cid)
    ev = d.c["Collaborations"].events.CollaborationTerminated().process_receipt(r, errors=DISCARD)[0]["args"]
    console.print(f"collaboration {cid} cancelled; {ev['refund']} wei refunded (withdraw from Collaborations)")


# ---------------------------------------------------------------------------- nodes
@click.group()
def node() -> None:
    """Compute and party nodes of multi-party computation (the operator registers them)."""


@node.command("add")
@click.argument("address")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(["compute", "party"]), default="compute", show_default=True)
@click.option("--endpoint", default="", help="The node's service URL.")
@wallet_options
@onchain
def node_add(address: str, name: str, kind: str, endpoint: str, wallet: WalletChoice) -> None:
    """Operator: register ADDRESS (an account bound to a DID) as a node."""
    d = Deployed.open()
    cc.add_node(d.space, d.signer(wallet), to_checksum_address(address), cc.NodeKind[kind.upper()], name, endpoint)
    console.print(f"node {name} ({address}) added as a {kind} node")


@node.command("heartbeat")
@click.option("--every", type=float, default=None, help="Keep sending every N seconds.")
@wallet_options
@onchain
def node_heartbeat(every: float | None, wallet: WalletChoice) -> None:
    """Node: report that this node is alive (once, or --every N seconds)."""
    d = Deployed.open()
    me = d.signer(wallet)
    while True:
        cc.heartbeat(d.space, me)
        console.print(f"heartbeat from {me.address} at block {d.w3.eth.block_number}")
        if every is None:
            return
        time.sleep(every)


@node.command("list")
@_JSON
def node_list(as_json: bool) -> None:
    """Every registered node with its state and whether its heartbeat is current."""
    d = Deployed.open()
    now, interval = d.now(), cc.heartbeat_interval(d.space)
    rows = [{"address": n.address, "name": n.name, "kind": n.kind.name.lower(),
             "state": "active" if n.active else "disabled", "endpoint": n.endpoint,
             "registeredAt": iso(n.registered_at), "lastHeartbeat": iso(n.last_heartbeat),
             "flagged": n.active and now > n.last_heartbeat + interval} for n in cc.list_nodes(d.space)]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        flag = "  MISSED HEARTBEATS" if r["flagged"] else ""
        console.print(f"{r['name']:12} {r['kind']:8} {r['state']:9} {r['address']} {r['endpoint']}{flag}")


@node.command("status")
@click.argument("address")
@_JSON
@onchain
def node_status(address: str, as_json: bool) -> None:
    """One node's record; exits 1 when it is disabled or has missed its heartbeats."""
    d = Deployed.open()
    n = cc.node_of(d.space, to_checksum_address(address))
    silent = d.now() - n.last_heartbeat
    flagged = silent > cc.heartbeat_interval(d.space)
    out = {"address": n.address, "name": n.name, "kind": n.kind.name.lower(), "active": n.active,
           "endpoint": n.endpoint, "lastHeartbeat": iso(n.last_heartbeat), "silentSeconds": silent,
           "flagged": flagged}
    if as_json:
        emit_json(out)
    else:
        console.print(f"{n.name}: {'active' if n.active else 'disabled'}, last heartbeat {silent}s ago"
                      + (" — MISSED HEARTBEATS" if flagged else ""))
    if flagged or not n.active:
        raise SystemExit(1)


@node.command("disable")
@click.argument("address")
@click.option("--reason", type=int, default=0)
@wallet_options
@onchain
def node_disable(address: str, reason: int, wallet: WalletChoice) -> None:
    """Operator: disable a node (it may not be named in new collaborations)."""
    d = Deployed.open()
    d.send(d.signer(wallet), d.c["NodeRegistry"].functions.disableNode(to_checksum_address(address), reason))
    console.print(f"node {address} disabled")


@node.command("remove")
@click.argument("address")
@wallet_options
@onchain
def node_remove(address: str, wallet: WalletChoice) -> None:
    """Operator: remove a node from the registry."""
    d = Deployed.open()
    d.send(d.signer(wallet), d.c["NodeRegistry"].functions.removeNode(to_checksum_address(address)))
    console.print(f"node {address} removed")
