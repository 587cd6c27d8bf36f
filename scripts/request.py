"""Request step: the consumer pays for a range-filtered SUM over provider-a's encrypted sales —
SUM(amount) and COUNT(*) of the rows with 1000 ≤ amount ≤ 3000.

    brownie run scripts/request.py --network tds-anvil              (after scripts/grant.py)

The query goes into the content store under its hash; ``requestJob`` checks the grant, counts
one use and escrows the price in one transaction. Each run requests one more job (the
oracle step computes every job still open).
"""
from __future__ import annotations

from chain.ops import HOM_AGG, OPE_RANGE

from ._common import PRICE, SUM_RANGE, Step


def main() -> dict:
    step = Step("request")
    grant = step.need("grant", "grants", "sales")
    dataset = step.need("register", "assets", "sales", "dataset")
    lo, hi = SUM_RANGE
    query = {"dataset": dataset, "aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", lo, hi]]}
    job_id = step.space.request_job(step.member("consumer"), grant["id"], OPE_RANGE | HOM_AGG, query, step.store,
                                    value=PRICE)
    job = {"id": job_id, "grant": grant["id"], "operation": OPE_RANGE | HOM_AGG, "query": query, "price": PRICE}
    step.state.setdefault("jobs", []).append(job)
    step.done(job=job_id)
    step.say(f"job #{job_id}: SUM(amount), COUNT(*) where {lo} <= amount <= {hi} on grant #{grant['id']}, "
             f"paid {PRICE / 1e18:g} ETH; run the oracle next (scripts/compute.py)")
    return job
