"""Differential privacy on released aggregates, with OpenDP — the provider's option on a grant.

A grant may carry :class:`DpTerms` (epsilon per query, total budget). The key service then pays
each query out of the grant's budget (:class:`PrivacyLedger`, SQLite) and adds Laplace noise to
every aggregate cell it releases (:func:`noisy_release`):

- COUNT: sensitivity 1 (one row more or less: add/remove-one-row neighbours);
- SUM over a column with public bounds [lo, hi]: sensitivity max(|lo|, |hi|) — the bounds must
  be the range the data is *enforced* to lie in (the packing slot's low/high), not a guess;
- AVG: noisy SUM / noisy COUNT (post-processing), clamped to [lo, hi];
- MIN / MAX: refused (:class:`DpNotSupported`) — one row can move them anywhere in [lo, hi].

``max_contributions`` (default 1) multiplies every sensitivity: with a join one person can
stand in several aggregated rows, so pass that bound or do not offer DP on joins.

Noise comes from OpenDP's ``make_laplace`` on ``atom_domain(T=i64)`` with
``absolute_distance(T=i64)``: the exact discrete Laplace sampler, applied to integers in the
column's smallest unit (cents for a 2-decimal column), so there is no floating-point noise to
attack. The epsilon of one query is split evenly over every noisy quantity of the release
(sequential composition: groups x distinct quantities; COUNT and AVG share the noisy count, SUM
and AVG of one column share the noisy sum). Every scale is checked to be > 0 and OpenDP's own
privacy map to give 0 < epsilon' <= the share: a count over a domain whose size is public can
otherwise come out with no noise at all (a zero scale is an infinite privacy loss).

Not protected by the noise: the group labels and which groups appear (groups below the minimum
group size are still suppressed on exact counts) — keep the query auditor on as well.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from offchain.errors import DpNotSupported, PrivacyBudgetExhausted

FUNCS = ("count", "sum", "avg", "min", "max")
AVG_EXTRA_DECIMALS = 2          # an average of cents is shown to 1/100 of a cent
_I64_SAFE = 1 << 62             # beyond this, noise is drawn at 0 and added (shift invariance)


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class DpTerms:
    """The provider's DP option on a grant: epsilon paid per query and the total budget."""

    epsilon_per_query: float
    budget: float

    def __post_init__(self) -> None:
        eps, budget = _real(self.epsilon_per_query, "epsilon_per_query"), _real(self.budget, "budget")
        if not 0 < eps <= budget:
            raise ValueError(f"DP terms need 0 < epsilon_per_query <= budget, got {eps} and {budget}")
        object.__setattr__(self, "epsilon_per_query", eps)
        object.__setattr__(self, "budget", budget)

    def to_dict(self) -> dict:
        """Numbers as strings (canonical JSON has no floats)."""
        return {"epsilon_per_query": repr(self.epsilon_per_query), "budget": repr(self.budget)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DpTerms:
        """Inverse of :meth:`to_dict` (numbers may also be int, float or Decimal)."""
        extra = set(d) - {"epsilon_per_query", "budget"}
        if extra or not {"epsilon_per_query", "budget"} <= set(d):
            raise ValueError(f"DP terms need exactly epsilon_per_query and budget, got {sorted(d)}")
        return cls(_real(d["epsilon_per_query"], "epsilon_per_query"), _real(d["budget"], "budget"))


# --- noise ---------------------------------------------------------------------------------------
def opendp_version() -> str:
    """The installed OpenDP version (reported with every release)."""
    return importlib.metadata.version("opendp")


@cache
def _dp() -> Any:
    import opendp.prelude as dp
    dp.enable_features("contrib")
    return dp


def laplace_measurement(sensitivity: int, epsilon: float) -> tuple[Any, float]:
    """An OpenDP integer Laplace measurement that is ``epsilon``-DP for inputs that differ by
    ``sensitivity`` (integer units), and its scale. Raises unless scale > 0 and OpenDP's privacy
    map gives 0 < loss <= epsilon."""
    if not (isinstance(sensitivity, int) and 0 < sensitivity < _I64_SAFE):
        raise ValueError(f"sensitivity must be a positive 63-bit integer, got {sensitivity!r}")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be finite and > 0, got {epsilon!r}")
    dp = _dp()
    scale = sensitivity / epsilon
    for _ in range(8):      # OpenDP rounds its map conservatively: widen until it fits
        meas = dp.m.make_laplace(dp.atom_domain(T="i64"), dp.absolute_distance(T="i64"), scale=scale)
        loss = meas.map(sensitivity)
        if loss <= epsilon:
            break
        scale = math.nextafter(scale * (1 + 1e-12), math.inf)
    if not (scale > 0 and math.isfinite(scale) and 0 < loss <= epsilon):
        raise RuntimeError(f"OpenDP Laplace for sensitivity {sensitivity} gave scale {scale} and "
                           f"privacy loss {loss}, not 0 < loss <= {epsilon}: refusing to release")
    return meas, scale


def _noisy(meas: Any, value: int) -> int:
    if -_I64_SAFE < value < _I64_SAFE:
        return int(meas(value))
    return value + int(meas(0))     # x + Z: the same law, without i64 overflow


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _places(value: Any) -> int:
    exp = _dec(value).as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def _units(value: Any, places: int) -> int:
    return int(_dec(value).scaleb(places).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


_LABEL = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")


def noisy_release(columns: list[str], rows: list[list], funcs: dict[str, tuple], epsilon: float, *,
                  counts: list[int] | None = None, max_contributions: int = 1
                  ) -> tuple[list[list], dict]:
    """Add OpenDP Laplace noise to every aggregate cell of an opened answer.

    ``funcs`` maps an aggregate column's label to ``(func, lo, hi)`` or ``(func, lo, hi,
    decimals)``: ``func`` in count/sum/avg (min/max raise :class:`DpNotSupported`), ``lo``/``hi``
    the column's enforced bounds (ignored for count; their decimal places, or ``decimals``, give
    the column's precision). Columns not in ``funcs`` (group labels) pass through. AVG needs each
    group's row count: a count column in the answer or ``counts``. Returns the noisy rows (COUNT
    an int >= 0, SUM int/Decimal as given with the column's places, AVG a Decimal) and a report:
    mechanism, epsilon, per-cell sensitivity, scale and epsilon (numbers as strings)."""
    eps = _real(epsilon, "epsilon")
    if eps <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
    if not isinstance(max_contributions, int) or max_contributions < 1:
        raise ValueError(f"max_contributions must be an int >= 1, got {max_contributions!r}")
    if counts is not None and len(counts) != len(rows):
        raise ValueError(f"counts has {len(counts)} entries for {len(rows)} rows")
    specs: dict[int, tuple[str, str, Any, Any]] = {}          # column index -> (func, key, lo, hi)
    places: dict[str, int] = {}                                # sum key -> decimal places
    count_col = None
    for label, spec in funcs.items():
        if label not in columns:
            raise ValueError(f"funcs names {label!r}, which is not a column of the answer {columns}")
        if not isinstance(spec, (tuple, list)) or len(spec) not in (3, 4):
            raise ValueError(f"funcs[{label!r}] must be (func, lo, hi[, decimals]), got {spec!r}")
        func, lo, hi = str(spec[0]).lower(), spec[1], spec[2]
        m = _LABEL.match(label)
        column = m.group(2) if m else label
        if func not in FUNCS:
            raise ValueError(f"funcs[{label!r}]: unknown aggregate {func!r} (one of {FUNCS})")
        if func in ("min", "max"):
            raise DpNotSupported(func, column, f"{func.upper()} cannot be released under differential "
                                 "privacy here: a single row can set it anywhere in the column's range")
        idx = columns.index(label)
        if func == "count":
            specs[idx], count_col = (func, "count", None, None), idx
            continue
        if lo is None or hi is None or _dec(lo) > _dec(hi):
            raise ValueError(f"funcs[{label!r}]: {func} needs public bounds lo <= hi, got {lo!r}, {hi!r}")
        key = f"sum:{column}:{_dec(lo)}:{_dec(hi)}"
        p = max(_places(lo), _places(hi), int(spec[3]) if len(spec) == 4 else 0,
                places.get(key, 0), *(_places(r[idx]) for r in rows if func == "sum"))
        places[key] = p
        if max(abs(_dec(lo)), abs(_dec(hi))) == 0:
            raise DpNotSupported(func, column, "bounds [0, 0] give this sum no sensitivity, so "
                                 "no noise; refusing a noise-free release")
        specs[idx] = (func, key, lo, hi)
    keys = sorted({"count" if f == "avg" else k for f, k, _, _ in specs.values()} |
                  {k for f, k, _, _ in specs.values()})
    report: dict[str, Any] = {
        "mechanism": "laplace", "library": f"opendp {opendp_version()}",
        "constructor": "opendp.measurements.make_laplace(atom_domain(T=i64), absolute_distance(T=i64))",
        "epsilon": repr(eps), "composition": "sequential", "max_contributions": max_contributions,
        "measurements": len(rows) * len(keys), "cells": {},
        "post_processing": "COUNT rounded to >= 0; AVG = noisy SUM / max(1, noisy COUNT), clamped to [lo, hi]",
        "not_protected": "group labels and which groups appear",
    }
    if not rows or not keys:
        return [list(r) for r in rows], report
    share = eps / (len(rows) * len(keys))
    report["epsilon_per_measurement"] = repr(share)
    meas: dict[str, tuple[Any, float, int]] = {}               # key -> (measurement, scale, sens)
    for key in keys:
        if key == "count":
            sens = max_contributions
        else:
            _, _, lo, hi = next(s for s in specs.values() if s[1] == key)
            sens = _units(max(abs(_dec(lo)), abs(_dec(hi))), places[key]) * max_contributions
        m_, scale = laplace_measurement(sens, share)
        meas[key] = (m_, scale, sens)
    for idx, (func, key, lo, hi) in sorted(specs.items()):
        p = places.get(key, 0)
        cell = {"function": func, "sensitivity": str(Decimal(meas[key][2]).scaleb(-p)),
                "scale": repr(meas[key][1] / 10 ** p), "epsilon": repr(share)}
        if func == "avg":
            cell.update(count_scale=repr(meas["count"][1]), epsilon=repr(2 * share))
        report["cells"][columns[idx]] = cell
    out = []
    for r, row in enumerate(rows):
        n_exact = counts[r] if counts is not None else (row[count_col] if count_col is not None else None)
        exact: dict[str, int] = {}
        for idx, (func, key, _, _) in specs.items():
            if func == "count":
                exact["count"] = int(row[idx])
            elif func == "sum":
                exact[key] = _units(row[idx], places[key])
            else:
                if n_exact is None:
                    raise ValueError(f"{columns[idx]} under DP needs each group's row count: "
                                     "include count(*) in the query or pass counts=")
                exact.setdefault("count", int(n_exact))
                exact.setdefault(key, _units(_dec(row[idx]) * int(n_exact), places[key]))
        noisy = {key: _noisy(meas[key][0], value) for key, value in exact.items()}
        new = list(row)
        for idx, (func, key, lo, hi) in specs.items():
            value, p = row[idx], places.get(key, 0)
            if func == "count":
                new[idx] = max(0, noisy["count"])
            elif func == "sum":
                total = Decimal(noisy[key]).scaleb(-p)
                new[idx] = (noisy[key] if isinstance(value, int) and p == 0 else
                            float(total) if isinstance(value, float) else total.quantize(Decimal(1).scaleb(-p)))
            else:
                avg = Decimal(noisy[key]).scaleb(-p) / max(1, noisy["count"])
                avg = min(max(avg, _dec(lo)), _dec(hi)).quantize(Decimal(1).scaleb(-p - AVG_EXTRA_DECIMALS))
                new[idx] = float(avg) if isinstance(value, float) else avg
        out.append(new)
    return out, report


# --- budget ledger ---------------------------------------------------------------------------------
def _enc(v: Any) -> Any:
    if isinstance(v, Decimal):
        return {"$decimal": str(v)}
    if isinstance(v, _dt.datetime):
        return {"$datetime": v.isoformat()}
    if isinstance(v, _dt.date):
        return {"$date": v.isoformat()}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    return v


def _dec_json(d: dict) -> Any:
    if len(d) == 1:
        (tag, s), = d.items()
        conv = {"$decimal": Decimal, "$datetime": _dt.datetime.fromisoformat,
                "$date": _dt.date.fromisoformat, "$bytes": bytes.fromhex}.get(tag)
        if conv:
            return conv(s)
    return d


class PrivacyLedger:
    """Epsilon spent per grant (SQLite, WAL, thread-safe), idempotent per job id."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("""CREATE TABLE IF NOT EXISTS dp_spends (
            grant_id TEXT NOT NULL, job_id INTEGER NOT NULL, epsilon TEXT NOT NULL,
            spent_at REAL NOT NULL, answer TEXT, PRIMARY KEY (grant_id, job_id))""")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def spent(self, grant_id: str) -> float:
        """Epsilon spent so far under ``grant_id``."""
        with self._lock:
            return float(self._spent(grant_id))

    def remaining(self, grant_id: str, budget: float) -> float:
        """Budget left under ``grant_id`` (never below 0)."""
        return float(max(Decimal(0), _dec(_real(budget, "budget")) - self._spent(grant_id)))

    def spend(self, grant_id: str, epsilon: float, budget: float, job_id: int) -> float:
        """Pay ``epsilon`` for job ``job_id`` and return what remains; a job already paid for is
        not paid again. Raises :class:`PrivacyBudgetExhausted` if it would exceed ``budget``."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                left = self._pay(grant_id, epsilon, budget, job_id, None)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return left

    def release(self, grant_id: str, terms: DpTerms, job_id: int, columns: list[str], rows: list[list],
                funcs: dict[str, tuple], *, counts: list[int] | None = None,
                max_contributions: int = 1) -> tuple[list[list], dict]:
        """Pay ``terms.epsilon_per_query`` and return :func:`noisy_release` of the answer, in one
        transaction. A retry of ``job_id`` returns the answer stored the first time (fresh noise
        on a retry would let the consumer average it away)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT answer FROM dp_spends WHERE grant_id=? AND job_id=?",
                                       (grant_id, job_id)).fetchone()
                if row is not None and row[0] is not None:
                    self._db.execute("COMMIT")
                    stored = json.loads(row[0], object_hook=_dec_json)
                    left = float(max(Decimal(0), _dec(terms.budget) - self._spent(grant_id)))
                    return stored["rows"], {**stored["report"], "replayed": True,
                                            "remaining_budget": repr(left)}
                if row is not None:
                    raise ValueError(f"job {job_id} was paid for with spend() but has no stored "
                                     "answer: release it through release() only")
                noisy, report = noisy_release(columns, rows, funcs, terms.epsilon_per_query,
                                              counts=counts, max_contributions=max_contributions)
                answer = json.dumps({"rows": noisy, "report": report}, default=_enc)
                report["remaining_budget"] = repr(self._pay(grant_id, terms.epsilon_per_query,
                                                            terms.budget, job_id, answer))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return noisy, report

    # internals ------------------------------------------------------------------------------
    def _spent(self, grant_id: str) -> Decimal:
        with self._lock:
            rows = self._db.execute("SELECT epsilon FROM dp_spends WHERE grant_id=?", (grant_id,))
            return sum((Decimal(e) for e, in rows), Decimal(0))

    def _pay(self, grant_id: str, epsilon: float, budget: float, job_id: int, answer: str | None) -> float:
        eps, cap = _dec(_real(epsilon, "epsilon")), _dec(_real(budget, "budget"))
        if eps <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        spent = self._spent(grant_id)
        if self._db.execute("SELECT 1 FROM dp_spends WHERE grant_id=? AND job_id=?",
                            (grant_id, job_id)).fetchone():
            return float(max(Decimal(0), cap - spent))
        if spent + eps > cap:
            raise PrivacyBudgetExhausted(grant_id, float(spent), float(eps), float(cap))
        self._db.execute("INSERT INTO dp_spends (grant_id, job_id, epsilon, spent_at, answer) "
                         "VALUES (?,?,?,?,?)", (grant_id, int(job_id), str(eps), time.time(), answer))
        return float(cap - spent - eps)
