"""Result step: the consumer fetches each completed job's sealed answer from the content store,
checks it against the result hash posted on chain, opens it with its key-agreement key (checking
it was sealed by provider-a's DID) and compares it with the answer computed on the plaintext.

    brownie run scripts/result.py --network tds-anvil               (after scripts/compute.py)

The plaintext comparison is the demonstration's proof that computing on ciphertext gave the
right answer (a real consumer never sees the provider's plaintext). Answers are written to
``$TDS_HOME/scripts/results/job-<id>.json``; exits non-zero if any check fails.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from eth_utils import keccak

from oracle.pipeline import result_cid_text
from did.sealing import open_result

from ._common import Step, fail


def _plain(v: Any) -> Any:
    return int(v) if isinstance(v, Decimal) and v == v.to_integral_value() else v


def expected_answer(rows: list[dict[str, Any]], query: dict[str, Any]) -> list[list[Any]]:
    """SUM(amount), COUNT(*) of the rows inside the query's range, from plaintext rows."""
    (_kind, column, lo, hi), = query["where"]
    inside = [r for r in rows if lo <= r[column] <= hi]
    return [[sum(r["amount"] for r in inside), len(inside)]]


def main() -> dict:
    step = Step("result")
    jobs = step.need("request", "jobs")
    consumer = step.identity("consumer")
    provider_did = step.need("identities", "participants", "provider-a", "did")
    rows = list(step.plaintext("sales").rows())
    folder = step.work / "results"
    folder.mkdir(parents=True, exist_ok=True)
    problems = []
    for job in jobs:
        ev = step.space.completion(job["id"])
        if ev is None:
            fail(f"job {job['id']} has no JobCompleted event yet; run scripts/compute.py first")
        cid = result_cid_text(ev["resultCid"])
        sealed = step.store.cat(cid)
        hash_ok = keccak(sealed) == bytes(ev["resultHash"])
        answer = open_result(consumer, sealed, provider_did, job_id=job["id"])["answer"]
        got = [[_plain(v) for v in row] for row in answer["rows"]]
        want = expected_answer(rows, job["query"])
        job.update(answer=got, expected=want, hashVerified=hash_ok, matches=got == want)
        (folder / f"job-{job['id']}.json").write_text(json.dumps(
            {"job": job["id"], "resultCid": cid, "answer": answer, "expected": want}, indent=1, default=str) + "\n")
        step.say(f"job #{job['id']}: result {cid[:18]}… hash {'verified' if hash_ok else 'MISMATCH'}; "
                 f"answer {got} {'matches' if got == want else 'DIFFERS from'} the plaintext answer {want}")
        if not (hash_ok and got == want):
            problems.append(job["id"])
    step.done(checked=[j["id"] for j in jobs], failed=problems)
    if problems:
        fail(f"results of jobs {problems} do not check out")
    return {"jobs": jobs}
