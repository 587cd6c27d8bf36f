"""Rate step: the consumer rates the quality of the data it used under its grant (1–5, once per
grant; only the grant's consumer may rate).

    brownie run scripts/rate.py --network tds-anvil                 (after scripts/result.py)
    brownie run scripts/rate.py main 4 --network tds-anvil          (a score other than 5)
"""
from __future__ import annotations

from ._common import Step


def main(score: str = "5") -> dict:
    step = Step("rate")
    grant = step.need("grant", "grants", "sales")
    ratings = step.space.c["QualityRatings"]
    if not ratings.functions.isRated(grant["id"]).call():
        step.space.send(step.identity("consumer").account, ratings.functions.rate(grant["id"], int(score)))
    count, total, mean100 = ratings.functions.ratingOf(grant["asset"]).call()
    step.state["rating"] = {"grant": grant["id"], "asset": grant["asset"], "count": count, "mean": mean100 / 100}
    step.done(**step.state["rating"])
    step.say(f"grant #{grant['id']} rated; asset #{grant['asset']} now has {count} rating(s), mean {mean100 / 100:.2f}")
    return step.state["rating"]
