"""The auditor's verdicts on collaborations (multi-party DAGs), from chain events and the store:

- ``collab-order``   — every step opened only after each step it depends on had completed
  (dependencies read from ``Collaborations.stepOf``), and no step completed before it opened;
- ``collab-payment`` — a completed step's credited shares sum exactly to the prices of the grant
  uses it consumed (per use id, in the collaboration's token), the compute share to the step's
  coordinator; a termination refunds exactly the steps that did not complete;
- ``collab-result``  — an output step's stored result hashes to its anchored ``resultHash``: a
  sealed PSI result by keccak256 of its bytes, MPC outputs by keccak256 over the keccak256 of
  each node's sealed output share in node order (the engine's ``outputs_hash``).
Intermediate results are never published; their anchored hashes are listed, not checked."""
from __future__ import annotations

import base64
import json
from typing import Any, Callable

from eth_utils import keccak

from audit.events import ChainEvent, ChainReader
from audit.trail import SHARES

Fetch = Callable[[str], "bytes | None"]
REFUND = SHARES.index("refund")
COMPUTE = SHARES.index("compute-provider")
RESULT_FORMAT = "tds-collab-result/1"


def _verdict(step: str, subject: str, ok: bool | None, detail: str) -> dict[str, Any]:
    status = "skip" if ok is None else ("pass" if ok else "fail")
    return {"step": step, "subject": subject, "ok": ok is not False, "status": status, "detail": detail,
            "refs": {}}


def _sel(reader: ChainReader, name: str, **match: Any) -> list[ChainEvent]:
    return reader.select("Collaborations", name, **match)


def verify_order(reader: ChainReader, collab_id: int) -> dict[str, Any]:
    subject = f"collaboration {collab_id}"
    opened = {e.args["step"]: e for e in _sel(reader, "StepOpened", id=collab_id)}
    done = {e.args["step"]: e for e in _sel(reader, "StepCompleted", id=collab_id)}
    fn = reader.contracts["Collaborations"].functions
    for step, ev in opened.items():
        deps = fn.stepOf(collab_id, step).call()[0][2]
        for d in range(32):
            if deps >> d & 1 and (d not in done or done[d].position > ev.position):
                return _verdict("collab-order", subject, False, f"step {step} opened before step {d} completed")
    for step, ev in done.items():
        if step not in opened or opened[step].position > ev.position:
            return _verdict("collab-order", subject, False, f"step {step} completed without having opened")
    return _verdict("collab-order", subject, True,
                    f"{len(opened)} step(s) opened only after their inputs completed; {len(done)} completed")


def verify_step_payment(reader: ChainReader, done: ChainEvent) -> dict[str, Any]:
    collab_id, step = done.args["id"], done.args["step"]
    subject = f"collaboration {collab_id} step {step}"
    uses = {e.args["useId"]: e.args["price"] for e in _sel(reader, "StepGrantConsumed", id=collab_id)
            if e.args["step"] == step}
    credits = [c for c in reader.select("Collaborations", "Credited") if c.args["jobId"] in uses]
    for use, price in uses.items():
        paid = sum(c.args["amount"] for c in credits if c.args["jobId"] == use and c.args["share"] != REFUND)
        if paid != price:
            return _verdict("collab-payment", subject, False, f"use {use:#x}: credited {paid}, price {price}")
    wrong = [c for c in credits if c.args["share"] == COMPUTE and c.args["payee"] != done.args["coordinator"]]
    if wrong:
        return _verdict("collab-payment", subject, False, "a compute share went to someone other than the coordinator")
    return _verdict("collab-payment", subject, True,
                    f"{len(uses)} grant use(s) paid exactly at their price ({sum(uses.values())} in total)")


def verify_refund(reader: ChainReader, end: ChainEvent) -> dict[str, Any]:
    collab_id = end.args["id"]
    subject = f"collaboration {collab_id}"
    completed = {e.args["step"] for e in _sel(reader, "StepCompleted", id=collab_id)}
    owed = sum(e.args["price"] for e in _sel(reader, "StepGrantConsumed", id=collab_id)
               if e.args["step"] not in completed)
    refund = end.args["refund"]
    return _verdict("collab-payment", subject, refund == owed,
                    f"terminated at step {end.args['step']} (reason {end.args['reasonCode']:#x}): refund {refund}, "
                    f"steps not completed cost {owed}")


def verify_step_result(done: ChainEvent, fetch: Fetch, cid_text: Callable[[bytes], str]) -> dict[str, Any]:
    collab_id, step = done.args["id"], done.args["step"]
    subject = f"collaboration {collab_id} step {step}"
    want = bytes(done.args["resultHash"])
    if not done.args["resultCid"]:
        return _verdict("collab-result", subject, None, f"intermediate result, not published; anchored hash "
                                                        f"0x{want.hex()}")
    cid = cid_text(bytes(done.args["resultCid"]))
    try:
        data = fetch(cid)
    except Exception as exc:  # noqa: BLE001 - the store is down or lost it: a skip, not a failure
        data, why = None, f"{type(exc).__name__}: {exc}"
    else:
        why = "not in the content store"
    if data is None:
        return _verdict("collab-result", subject, None, f"result {cid} {why}; not checked")
    got = keccak(data)
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("format") == RESULT_FORMAT and doc.get("engine") == "mpc":
        got = keccak(b"".join(keccak(base64.b64decode(s)) for s in doc["outputs"]))
        what = f"MPC output shares of {len(doc['outputs'])} nodes"
    else:
        what = f"sealed result ({len(data)} bytes)"
    ok = got == want
    return _verdict("collab-result", subject, ok,
                    f"{what} in {cid} hash to {'the anchored resultHash' if ok else '0x' + got.hex() + ', chain says 0x' + want.hex()}")


def verify_collaborations(reader: ChainReader, events: list[ChainEvent], fetch: Fetch | None,
                          cid_text: Callable[[bytes], str]) -> list[dict[str, Any]]:
    """Every collaboration verdict for the events of a trail (or the whole deployment)."""
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for ev in events:
        if ev.contract != "Collaborations":
            continue
        found = []
        if ev.name == "CollaborationRequested" and ev.args["id"] not in seen:
            seen.add(ev.args["id"])
            found.append(verify_order(reader, ev.args["id"]))
        elif ev.name == "StepCompleted":
            found.append(verify_step_payment(reader, ev))
            if fetch is not None:
                found.append(verify_step_result(ev, fetch, cid_text))
        elif ev.name == "CollaborationTerminated":
            found.append(verify_refund(reader, ev))
        for v in found:
            v["refs"] = {"collaboration": ev.args["id"]}
        out += found
    return out
