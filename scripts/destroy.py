"""Destroy step: the consumer, done with the data, destroys its copies of the results and closes
each of its grants with a destruction proof — a JSON statement whose keccak256 goes on chain
(``Authorizations.close``) and is anchored as evidence (``Evidence.anchorHash``, kind
``DESTRUCTION``, subject = the grant id). The result files the proof lists (name and hash) are
then deleted. A closed grant can no longer be used.

    brownie run scripts/destroy.py --network tds-anvil              (after scripts/rate.py)

The proofs are written to ``$TDS_HOME/scripts/proofs/grant-<id>-destruction.json``; the audit
step checks each against the hash recorded on chain (``tds audit verify --doc FILE`` does too).
"""
from __future__ import annotations

import json
import time

from eth_utils import keccak

from ._common import Step, fail

CLOSED = 3  # IAuthorizations.GrantStatus { None, Active, Revoked, Closed }


def main() -> dict:
    step = Step("destroy")
    grants = step.need("grant", "grants")
    consumer = step.identity("consumer")
    auth, evidence = step.space.c["Authorizations"], step.space.c["Evidence"]
    folder = step.work / "proofs"
    folder.mkdir(parents=True, exist_ok=True)
    proofs = step.state.setdefault("destruction", {})
    results = sorted((step.work / "results").glob("job-*.json"))  # the consumer's copies of the answers
    for name, g in grants.items():
        if name in proofs:
            step.say(f"grant #{g['id']} ({name}) already closed, proof {proofs[name]['file']}")
            continue
        copies = results if name == "sales" else []
        proof = {"format": "tds-destruction-proof/1", "grant": g["id"], "asset": g["asset"], "by": consumer.did,
                 "account": consumer.address,
                 "destroyed": [{"file": p.name, "keccak256": "0x" + keccak(p.read_bytes()).hex()} for p in copies],
                 "statement": "every copy of data and results obtained under this grant has been deleted",
                 "at": int(time.time())}
        data = json.dumps(proof, sort_keys=True, indent=1).encode() + b"\n"
        path = folder / f"grant-{g['id']}-destruction.json"
        path.write_bytes(data)
        h = keccak(data)
        step.space.send(consumer.account, auth.functions.close(g["id"], h))
        step.space.send(consumer.account, evidence.functions.anchorHash(h, keccak(text="DESTRUCTION"), g["id"]))
        proofs[name] = {"grant": g["id"], "file": str(path), "hash": "0x" + h.hex()}
        for p in copies:
            p.unlink()
        step.save()
        step.say(f"grant #{g['id']} ({name}) closed with destruction proof 0x{h.hex()[:16]}… ({path.name})")
    still_open = [n for n, g in grants.items() if auth.functions.grantOf(g["id"]).call()[4] != CLOSED]
    step.done(closed={n: p["grant"] for n, p in proofs.items()})
    if still_open:
        fail(f"grants not closed: {still_open}")
    return proofs
