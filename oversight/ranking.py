"""Quality ranking and incentives (002 §3.3.2 step 4): a periodic ranking of assets and providers
by consumers' ratings and completed use, published as a canonical JSON document in the content
store with its keccak-256 anchored on chain (``Evidence.anchorHash`` under kind ``RANKING``), and
the Credits reward of the top providers — minted by the regulator on the development profile, or
proposed to the members' Governor on a consortium profile (a governed action).

The score is a Bayesian mean of the ratings: ``(m·C + Σ scores) / (C + n)`` with prior mean
``m = 3`` and weight ``C = 5`` ratings, so one 5-star rating does not outrank twenty 4.8s; ties
break on completed jobs, then on the lower id. Gathering reads chain events only (an auditor can
recompute the document from the chain and compare it with the anchored hash)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from eth_utils import keccak

RANKING_FORMAT = "tds-ranking/1"
KIND = keccak(text="RANKING")
PRIOR_MEAN, PRIOR_WEIGHT = 3.0, 5


@dataclass
class AssetFacts:
    """What the chain says about one asset over the period."""

    asset: int
    holder: str
    scores: list[int] = field(default_factory=list)
    completed: int = 0


def score(scores: list[int], prior_mean: float = PRIOR_MEAN, prior_weight: int = PRIOR_WEIGHT) -> float:
    """The Bayesian mean rating (prior ``prior_mean`` worth ``prior_weight`` ratings)."""
    return (prior_mean * prior_weight + sum(scores)) / (prior_weight + len(scores))


def _entry(key: str, value: Any, scores: list[int], completed: int) -> dict[str, Any]:
    return {key: value, "score": round(score(scores), 6), "ratings": len(scores),
            "mean": round(sum(scores) / len(scores), 6) if scores else None, "completed_jobs": completed}


def rank(facts: Iterable[AssetFacts]) -> dict[str, list[dict[str, Any]]]:
    """Assets and providers in ranking order (pure)."""
    facts = list(facts)
    assets = [_entry("asset", f.asset, f.scores, f.completed) | {"holder": f.holder} for f in facts]
    assets.sort(key=lambda e: (-e["score"], -e["completed_jobs"], e["asset"]))
    pooled: dict[str, tuple[list[int], int]] = {}
    for f in facts:
        s, c = pooled.get(f.holder, ([], 0))
        pooled[f.holder] = (s + f.scores, c + f.completed)
    providers = [_entry("provider", p, s, c) for p, (s, c) in pooled.items()]
    providers.sort(key=lambda e: (-e["score"], -e["completed_jobs"], e["provider"].lower()))
    for order, e in enumerate(assets + providers):
        e["rank"] = (order if order < len(assets) else order - len(assets)) + 1
    return {"assets": assets, "providers": providers}


def gather(reader: Any, since_block: int = 0, until_block: int | None = None) -> list[AssetFacts]:
    """Facts per asset from a :class:`audit.events.ChainReader`: holders (registration, then
    transfers), ratings and completed jobs with their block in ``[since_block, until_block]``."""
    def within(ev: Any) -> bool:
        return ev.block >= since_block and (until_block is None or ev.block <= until_block)

    facts: dict[int, AssetFacts] = {}
    for ev in reader.select("AssetRegistry", {"AssetRegistered", "Transfer"}):
        if ev.name == "AssetRegistered":
            facts[ev.args["assetId"]] = AssetFacts(ev.args["assetId"], ev.args["provider"])
        elif ev.args.get("tokenId") in facts and int(ev.args["to"], 16) != 0:
            facts[ev.args["tokenId"]].holder = ev.args["to"]
    job_asset = {ev.args["jobId"]: ev.args["assetId"] for ev in reader.select("Jobs", {"JobRequested"})}
    for ev in reader.select("Jobs", {"JobCompleted"}):
        asset = job_asset.get(ev.args["jobId"])
        if asset in facts and within(ev):
            facts[asset].completed += 1
    for ev in reader.select("QualityRatings", {"AssetRated"}):
        if ev.args["assetId"] in facts and within(ev):
            facts[ev.args["assetId"]].scores.append(int(ev.args["score"]))
    return [facts[a] for a in sorted(facts)]


def document(ranking: dict[str, Any], chain_id: int, since_block: int, until_block: int) -> bytes:
    """The published document: canonical JSON (sorted keys, no spaces) — its keccak is anchored."""
    body = {"format": RANKING_FORMAT, "chainId": chain_id, "blocks": [since_block, until_block],
            "method": {"score": "bayesian mean rating", "prior_mean": PRIOR_MEAN, "prior_weight": PRIOR_WEIGHT,
                       "ties": ["completed_jobs desc", "id asc"]}, **ranking}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def rewards(ranking: dict[str, Any], top: int, amount: int) -> tuple[list[str], list[int]]:
    """The ``top`` providers that have at least one rating, each rewarded ``amount`` base units."""
    chosen = [e["provider"] for e in ranking["providers"] if e["ratings"]][:top]
    return chosen, [amount] * len(chosen)
