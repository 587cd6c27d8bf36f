"""Differential privacy on released aggregates (OpenDP Laplace) and the per-grant budget."""
from __future__ import annotations

import math
import sqlite3
import statistics
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from offchain.canonical import canonical_hash
from offchain.errors import DpNotSupported, GrantRefused, PrivacyBudgetExhausted
from offchain.keyservice.privacy import (DpTerms, PrivacyLedger, laplace_measurement, noisy_release,
                                         opendp_version)

COLS = ["region", "count(*)", "sum(amount)", "avg(amount)", "sum(age)"]
ROWS = [["north", 1200, Decimal("12345.50"), Decimal("12345.50") / 1200, 40000],
        ["south", 800, Decimal("9999.99"), Decimal("9999.99") / 800, 30000]]
FUNCS = {"count(*)": ("count", None, None),
         "sum(amount)": ("sum", Decimal("0.00"), Decimal("50.00")),
         "avg(amount)": ("avg", Decimal("0.00"), Decimal("50.00")),
         "sum(age)": ("sum", 0, 120)}


def test_opendp_is_pinned_in_pyproject():
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert f'"opendp=={opendp_version()}"' in text


def test_terms_validate_and_round_trip():
    t = DpTerms(0.5, 2)
    assert (t.epsilon_per_query, t.budget) == (0.5, 2.0)
    assert DpTerms.from_dict(t.to_dict()) == t
    canonical_hash(t.to_dict())                              # no floats in the signed form
    assert DpTerms.from_dict({"epsilon_per_query": Decimal("0.1"), "budget": "1"}).budget == 1.0
    for eps, budget in [(0, 1), (-1, 1), (2, 1), (math.inf, math.inf), (math.nan, 1), (True, 1), ("x", 1)]:
        with pytest.raises(ValueError):
            DpTerms(eps, budget)
    with pytest.raises(ValueError, match="exactly"):
        DpTerms.from_dict({"epsilon_per_query": 1})


def test_every_scale_is_positive_and_types_are_kept():
    out, rep = noisy_release(COLS, ROWS, FUNCS, 1.0)
    assert rep["library"] == f"opendp {opendp_version()}" and rep["mechanism"] == "laplace"
    assert rep["measurements"] == 2 * 3                     # count, sum(amount), sum(age) per group
    assert float(rep["epsilon_per_measurement"]) == pytest.approx(1.0 / 6)
    for label in ("count(*)", "sum(amount)", "avg(amount)", "sum(age)"):
        assert float(rep["cells"][label]["scale"]) > 0
    assert float(rep["cells"]["avg(amount)"]["count_scale"]) > 0
    assert float(rep["cells"]["count(*)"]["scale"]) == pytest.approx(6.0)
    assert float(rep["cells"]["sum(amount)"]["scale"]) == pytest.approx(50 * 6)
    canonical_hash({"rows": out, "report": rep})             # canonical: no floats anywhere
    for row in out:
        assert row[0] in ("north", "south")
        assert isinstance(row[1], int) and row[1] >= 0
        assert isinstance(row[2], Decimal) and row[2].as_tuple().exponent == -2
        assert isinstance(row[3], Decimal) and Decimal(0) <= row[3] <= Decimal(50)
        assert row[3].as_tuple().exponent == -4
        assert isinstance(row[4], int)


def test_laplace_measurement_refuses_a_noise_free_release():
    meas, scale = laplace_measurement(1, 0.5)
    assert scale == pytest.approx(2.0) and 0 < meas.map(1) <= 0.5
    for sens in (0, -1):
        with pytest.raises(ValueError):
            laplace_measurement(sens, 0.5)
    with pytest.raises(ValueError):
        laplace_measurement(1, 0.0)
    # the trap: OpenDP itself happily builds a zero-scale Laplace with infinite privacy loss
    import opendp.prelude as dp
    zero = dp.m.make_laplace(dp.atom_domain(T="i64"), dp.absolute_distance(T="i64"), scale=0.0)
    assert zero(41) == 41 and math.isinf(zero.map(1))


def test_min_max_and_zero_bounds_are_refused():
    for f in ("min", "max"):
        with pytest.raises(DpNotSupported) as e:
            noisy_release(["m"], [[3]], {"m": (f, 0, 10)}, 1.0)
        assert isinstance(e.value, GrantRefused) and e.value.function == f
    with pytest.raises(DpNotSupported, match="no noise"):
        noisy_release(["sum(x)"], [[0]], {"sum(x)": ("sum", 0, 0)}, 1.0)
    with pytest.raises(ValueError, match="bounds"):
        noisy_release(["sum(x)"], [[0]], {"sum(x)": ("sum", None, 5)}, 1.0)
    with pytest.raises(ValueError, match="row count"):
        noisy_release(["avg(x)"], [[Decimal(3)]], {"avg(x)": ("avg", 0, 5)}, 1.0)
    with pytest.raises(ValueError, match="not a column"):
        noisy_release(["a"], [[1]], {"b": ("count", None, None)}, 1.0)


def test_noise_has_the_laplace_spread():
    """Over many draws: noisy != exact, mean ~ exact, std ~ scale * sqrt(2)."""
    draws = 4000
    exact = [[1000, Decimal("5000.00")] for _ in range(draws)]
    out, rep = noisy_release(["count(*)", "sum(v)"], exact,
                             {"count(*)": ("count", None, None), "sum(v)": ("sum", Decimal("-10.00"), Decimal("10.00"))},
                             draws * 2 * 0.2)                # 0.2 per measurement -> count scale 5
    assert float(rep["cells"]["count(*)"]["scale"]) == pytest.approx(5.0)
    assert float(rep["cells"]["sum(v)"]["scale"]) == pytest.approx(50.0)
    for col, scale, centre in ((0, 5.0, 1000), (1, 50.0, 5000)):
        vals = [float(r[col]) for r in out]
        assert sum(v != centre for v in vals) > draws * 0.8
        std = statistics.pstdev(vals)
        assert std == pytest.approx(scale * math.sqrt(2), rel=0.1)
        assert statistics.fmean(vals) == pytest.approx(centre, abs=6 * std / math.sqrt(draws))


def test_avg_uses_counts_and_max_contributions_scales_sensitivity():
    out, rep = noisy_release(["avg(x)"], [[Decimal("2.5")]], {"avg(x)": ("avg", 0, 10, 1)}, 1.0,
                             counts=[10_000])
    assert abs(out[0][0] - Decimal("2.5")) < 1 and out[0][0].as_tuple().exponent == -3
    _, rep3 = noisy_release(["count(*)"], [[50]], {"count(*)": ("count", None, None)}, 1.0,
                            max_contributions=3)
    assert float(rep3["cells"]["count(*)"]["scale"]) == pytest.approx(3.0)
    out, rep = noisy_release(["region"], [["a"]], {}, 1.0)  # nothing to noise
    assert out == [["a"]] and rep["measurements"] == 0


def test_budget_is_spent_refused_and_idempotent_per_job():
    ledger = PrivacyLedger()
    assert ledger.spend("g1", 0.3, 1.0, job_id=1) == pytest.approx(0.7)
    assert ledger.spend("g1", 0.3, 1.0, job_id=1) == pytest.approx(0.7)     # retry: not twice
    assert ledger.spend("g1", 0.3, 1.0, job_id=2) == pytest.approx(0.4)
    assert ledger.spend("g1", 0.3, 1.0, job_id=3) == pytest.approx(0.1)
    with pytest.raises(PrivacyBudgetExhausted) as e:
        ledger.spend("g1", 0.3, 1.0, job_id=4)
    assert isinstance(e.value, GrantRefused)
    assert (e.value.spent, e.value.requested, e.value.budget) == pytest.approx((0.9, 0.3, 1.0))
    assert "spent epsilon 0.9 of 1" in str(e.value)
    assert ledger.remaining("g1", 1.0) == pytest.approx(0.1)
    assert ledger.remaining("g2", 1.0) == 1.0                               # per grant
    # decimal arithmetic: ten spends of 0.1 exactly fill a budget of 1
    for job in range(10):
        ledger.spend("g3", 0.1, 1.0, job)
    assert ledger.remaining("g3", 1.0) == 0.0


def test_release_pays_once_and_replays_the_same_noise(tmp_path):
    path = tmp_path / "dp.sqlite"
    ledger, terms = PrivacyLedger(path), DpTerms(0.5, 1.0)
    first, rep = ledger.release("g", terms, 7, COLS, ROWS, FUNCS)
    assert float(rep["remaining_budget"]) == pytest.approx(0.5)
    ledger.close()
    ledger = PrivacyLedger(path)                                            # survives reopen
    again, rep2 = ledger.release("g", terms, 7, COLS, ROWS, FUNCS)
    assert again == first and rep2["replayed"] and ledger.spent("g") == pytest.approx(0.5)
    ledger.release("g", terms, 8, COLS, ROWS, FUNCS)
    with pytest.raises(PrivacyBudgetExhausted):
        ledger.release("g", terms, 9, COLS, ROWS, FUNCS)
    with pytest.raises(DpNotSupported):                                     # refused: nothing paid
        PrivacyLedger().release("h", terms, 1, ["min(x)"], [[1]], {"min(x)": ("min", 0, 9)})
    assert ledger.remaining("g", 1.0) == 0.0
    ledger.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_spends_never_exceed_the_budget():
    ledger, ok, refused = PrivacyLedger(), [], []

    def worker(job: int) -> None:
        try:
            ok.append(ledger.spend("g", 0.25, 1.0, job))
        except PrivacyBudgetExhausted:
            refused.append(job)

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 4 and len(refused) == 8 and ledger.spent("g") == pytest.approx(1.0)
