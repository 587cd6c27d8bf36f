"""Compute step: run the oracle in this process until every requested job is settled.

    brownie run scripts/compute.py --network tds-anvil              (after scripts/request.py)

The oracle (:class:`oracle.runner.OracleRunner` with :class:`oracle.pipeline.JobPipeline`, as
``tds/demo.py`` wires it) follows ``JobRequested``, accepts each job, has provider-a's key
service — here in-process, holding the data keys from provider-a's keystore — check the grant on
chain and peel only the layers the job needs, computes on ciphertext, gets the aggregate opened
and sealed to the consumer, stores it and completes the job with the result CID, hash and its
EIP-712 signature. Afterwards the provider's release log and the oracle's operation log are
closed into batches whose Merkle roots are anchored through the Evidence contract.

For a long-running oracle use ``tds provider serve`` and ``tds oracle run`` instead.
"""
from __future__ import annotations

import json
import time

from offchain.keyservice.release import KeyService
from offchain.onion.keystore import Keystore
from audit.oplog import OpLog, OpRecord
from oracle.journal import Journal
from oracle.pipeline import JobPipeline, result_cid_text
from offchain.keyservice.provider import ProviderKeyService
from chain.jobstatus import COMPLETED, SETTLED
from oracle.runner import OracleRunner
from did.sealing import ChainDirectory, provider_sealer
from chain.params import params_key

from ._common import Step, fail, passphrase, tx_hash

TIMEOUT_S = 120.0


def anchor_log(step: Step, oplog: OpLog, who: str) -> dict | None:
    """Close the open records into a batch and anchor its Merkle root (sent by ``who``)."""
    closed = oplog.close_batch()
    if not closed:
        return None
    path, batch = closed
    hi = min(batch.period[1], step.space.now())  # a period may not end after the anchoring block
    lo = min(batch.period[0], hi)
    r = step.space.send(step.identity(who).account, step.space.c["Evidence"].functions.anchorBatch(
        batch.root, len(batch.records), lo, hi, path.name.encode()))
    return {"file": str(path), "records": len(batch.records), "root": "0x" + batch.root.hex(), "tx": tx_hash(r)}


def main() -> dict:
    step = Step("compute")
    jobs = step.need("request", "jobs")
    sales = step.need("register", "assets", "sales")
    provider, oracle = step.identity("provider-a"), step.identity("oracle")
    c, block = step.space.c, step.deployment["block"]

    # provider-a's key service: its data keys and the manifests of its registered datasets
    keyring = Keystore.open(sales["keystore"], passphrase()).keyring()
    mine = {n: a for n, a in step.state["assets"].items() if a["owner"] == "provider-a"}
    manifests = {a["dataset"]: json.loads(step.store.cat(a["manifestCid"])) for a in mine.values()}
    logs = step.work / "logs"
    provider_log = OpLog(logs / "provider-a", provider.did)
    key_service = ProviderKeyService(c["Jobs"], c["Authorizations"], c["AssetRegistry"], provider.address,
                                     provider.did, KeyService(keyring, manifests),
                                     {a["asset"]: {a["dataset"]} for a in mine.values()},
                                     provider_sealer(provider, ChainDirectory(c["IdentityRegistry"], block)),
                                     provider_log, fetch=step.store.cat, sender=step.space.sender(provider.account),
                                     from_block=block, params_key=params_key(provider))

    # the oracle, with its journal (exactly-once across restarts) and its own operation log
    oracle_log = OpLog(logs / "oracle", oracle.did)

    def logged(kind: str, data: dict) -> None:
        failed = kind == "failed"
        oracle_log.append(OpRecord(action={"accepted": "accept", "completed": "complete", "failed": "fail"}[kind],
                                   actor_did=oracle.did, actor_address=oracle.address, object=dict(data),
                                   result="failed" if failed else "ok",
                                   error_code=str(data.get("reason")) if failed else None))
        step.say(f"  oracle: job {data['job']} {kind}" + (f" ({data.get('detail', '')})" if failed else ""))

    journal = Journal(step.work / "oracle" / f"journal-{c['Jobs'].address.lower()}.sqlite")
    runner = OracleRunner(step.w3, c["Jobs"], oracle.account, journal,
                          JobPipeline(step.store, key_service, oracle.address), start_block=block, on_event=logged)
    pending = {j["id"] for j in jobs}
    deadline = time.monotonic() + TIMEOUT_S

    def settled() -> bool:
        for job_id in list(pending):
            if step.space.job(job_id)[0][3] in SETTLED:
                pending.discard(job_id)
        if pending and time.monotonic() > deadline:
            fail(f"jobs {sorted(pending)} not settled within {TIMEOUT_S:.0f} s")
        return not pending

    t0 = time.perf_counter()
    runner.run_forever(idle=0.05, stop=settled)
    runner.pool.shutdown(wait=True)
    step.say(f"oracle: {len(jobs)} job(s) settled in {time.perf_counter() - t0:.2f} s "
             f"({runner.stats.posted} completed by this run)")

    for job in jobs:
        status = step.space.job(job["id"])[0][3]
        ev = step.space.completion(job["id"])
        job["status"] = "completed" if status == COMPLETED else f"status {status}"
        if ev is not None:
            job["resultCid"] = result_cid_text(ev["resultCid"])
            job["resultHash"] = "0x" + bytes(ev["resultHash"]).hex()
    anchored = {who: anchor_log(step, log, who) for who, log in (("provider-a", provider_log), ("oracle", oracle_log))}
    step.state.setdefault("anchored", []).extend(a for a in anchored.values() if a)
    for who, a in anchored.items():
        if a:
            step.say(f"  {who}: {a['records']} log records anchored (Merkle root {a['root'][:18]}…)")
    step.done(completed=[j["id"] for j in jobs if j["status"] == "completed"])
    bad = [j["id"] for j in jobs if j["status"] != "completed"]
    if bad:
        fail(f"jobs {bad} did not complete; see the oracle lines above")
    return {"jobs": jobs, "anchored": anchored}
