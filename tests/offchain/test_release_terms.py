"""What a grant's terms and the provider's rules let out (issue 12, items 9 and 10), on a real
chain: field-level scope from the terms document whose hash the grant carries, release rules at
release time, the query auditor against differencing, and OpenDP noise paid from a budget."""
from __future__ import annotations

from decimal import Decimal

import pytest

from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from offchain.errors import DifferencingRefused, GrantRefused, PrivacyBudgetExhausted
from offchain.keyservice.auditor import QueryAuditor
from offchain.keyservice.privacy import DpTerms, PrivacyLedger
from offchain.keyservice.terms import GrantTermsDoc, publish_terms
from offchain.onion.policy import ReleaseRules
from offchain.query.engine import Engine
from offchain.query.plan import Query
from tds.sandbox import PRICE, build_world

ALL = DET_EQ | OPE_RANGE | HOM_AGG


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from dataclasses import replace

    from chain.config import load_settings
    from chain.node import EmbeddedNode, free_port

    tmp = tmp_path_factory.mktemp("release-terms")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    yield build_world(settings, tmp, sensitive=("amount",))
    node.down(save=False)


@pytest.fixture
def ks(world):
    """The world's key service, restored after each test (auditor, privacy, rules)."""
    k = world.key_service
    saved = (k.auditor, k.privacy, k.service.rules)
    yield k
    k.auditor, k.privacy, k.service.rules = saved


def grant(w, purpose: str, doc: GrantTermsDoc | None = None, price: int = PRICE) -> int:
    asset = next(a for a, ids in w.key_service.datasets_by_asset.items() if w.sales_id in ids)
    digest = publish_terms(doc, w.store.add_bytes) if doc else None
    return w.space.grant_by_signature(w.provider, w.consumer, asset, ALL, max_uses=50, price=price, purpose=purpose,
                                      purpose_hash=digest)


def run(w, grant_id: int, query: dict, ops: int = OPE_RANGE | HOM_AGG) -> dict:
    """Request, accept, compute and release one job; the consumer's opened payload."""
    job = w.space.request_job(w.consumer, grant_id, ops, query, w.store, value=PRICE)
    w.space.send(w.oracle.account, w.space.c["Jobs"].functions.acceptJob(job))
    q = Query.from_dict(query)
    enc, peeled, manifests = w.key_service.prepare(job, q, w.oracle.address)
    result = Engine(manifests, w.store.cat, peeled).run(enc)
    sealed = w.key_service.release(job, q, result, w.oracle.address)
    return w.open(sealed, job_id=job)


def rng(w, lo: int, hi: int) -> dict:
    return {"dataset": w.sales_id, "aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", lo, hi]]}


# ------------------------------------------------------------------ 10. field-level scope

def test_terms_scope_allows_named_fields_only(world, ks):
    w = world
    doc = GrantTermsDoc("revenue totals", frozenset({"sum:amount", "range:amount", "count"}))
    g = grant(w, "scoped", doc)
    out = run(w, g, rng(w, 100, 700))
    sel = [a for _, _, a in w.sales_rows if 100 <= a <= 700]
    assert out["answer"]["rows"][0] == [sum(sel), len(sel)]
    by_region = {"dataset": w.sales_id, "aggregates": [["count"]], "group_by": "region"}
    with pytest.raises(GrantRefused, match="OperationOutOfScope") as exc:
        run(w, g, by_region, DET_EQ | HOM_AGG)
    assert exc.value.operation == "group_by:region"


def test_without_terms_document_the_class_mask_applies_unless_required(world, ks):
    w = world
    g = grant(w, "plain purpose text")  # keccak(purpose): no document behind it
    assert run(w, g, {"dataset": w.sales_id, "aggregates": [["count"]], "group_by": "region"},
               DET_EQ | HOM_AGG)["answer"]["rows"]
    ks.require_terms = True
    try:
        ks._terms.clear()
        with pytest.raises(GrantRefused, match="TermsUnavailable"):
            run(w, g, rng(w, 0, 999))
    finally:
        ks.require_terms = False


def test_release_rules_enforced_at_release(world, ks):
    """Order layers of a sensitive field need a trusted consumer or a high enough price."""
    w = world
    ks.service.rules = ReleaseRules(frozenset(), min_price_leaky=10 * PRICE)
    g = grant(w, "cheap")
    with pytest.raises(GrantRefused, match="ReleaseRulesRefuse"):
        run(w, g, rng(w, 100, 700))
    ks.service.rules = ReleaseRules(frozenset({w.consumer.address}), min_price_leaky=10 * PRICE)
    assert run(w, g, rng(w, 100, 700))["answer"]["rows"][0][1] > 0


# ------------------------------------------------------------------ 9. differencing

def test_query_auditor_refuses_a_difference_of_a_few_rows(world, ks):
    w = world
    ks.auditor = QueryAuditor()
    g = grant(w, "auditor")
    wide = run(w, g, rng(w, 0, 600))["answer"]["rows"][0]
    # one more value of the range: each answer meets k = 3, their difference isolates ~1 row
    narrow_hi = max(a for _, _, a in w.sales_rows if a <= 600)
    with pytest.raises(DifferencingRefused) as exc:
        run(w, g, rng(w, 0, narrow_hi - 1))
    assert exc.value.rule in ("overlap", "complement", "partition", "subset-packing", "container-packing")
    assert wide[1] >= 3
    assert run(w, g, rng(w, 0, 300))["answer"]["rows"][0][1] >= 3  # a genuinely different selection passes


def test_differential_privacy_adds_noise_and_spends_the_budget(world, ks):
    w = world
    ks.privacy = PrivacyLedger()
    doc = GrantTermsDoc("noisy totals", None, DpTerms(epsilon_per_query=1.0, budget=2.0))
    g = grant(w, "dp", doc)
    exact = [a for _, _, a in w.sales_rows if 100 <= a <= 700]
    out = run(w, g, rng(w, 100, 700))
    rel = out["release"]["dp"]
    assert all(Decimal(c["scale"]) > 0 for c in rel["cells"].values())  # noise scale above zero on every cell
    noisy_sum, noisy_count = out["answer"]["rows"][0]
    assert (noisy_sum, noisy_count) != (sum(exact), len(exact))  # Laplace noise at this scale: not exact
    run(w, g, rng(w, 0, 999))
    with pytest.raises(PrivacyBudgetExhausted):
        run(w, g, rng(w, 200, 900))
    minmax = {"dataset": w.sales_id, "aggregates": [["max", "amount"]]}
    g2 = grant(w, "dp-2", GrantTermsDoc("noisy max", None, DpTerms(1.0, 5.0)))
    with pytest.raises(GrantRefused, match="DpNotSupported"):
        run(w, g2, minmax, OPE_RANGE)
