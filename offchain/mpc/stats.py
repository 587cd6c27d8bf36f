"""Joint statistics on secure types, written on :mod:`offchain.mpc.protocol` (node side).

Every function takes and returns secret-shared values; nothing here opens a value. The only
opening in a session is the k-rule's single bit (:func:`protocol.all_at_least`).

* COUNT: the number of (aligned) rows; SUM: local sum of shares (no communication);
* MEAN / VARIANCE (sample, n-1) / STDDEV: sum and sum of squares (``x @ x``: local products,
  one resharing), converted to the wide type, finished there (square root by Newton);
* MIN / MAX: vectorised tournament; MEDIAN / PERCENTILES (numpy's "linear" rule): Batcher sort;
* PEARSON: sums, sums of squares and ``x @ y`` of two columns, possibly of different providers;
* CROSS-TAB: one-hot group indicators (shared by the key's provider): per-group COUNT is a
  local column sum, per-group SUM is ``x @ onehot`` (one resharing of G values).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offchain.mpc import protocol as pr
from offchain.mpc.errors import MpcSpecError

Secure = Any


@dataclass
class NodeData:
    """What one compute node holds: the public row count and its shares of every column."""

    n: int
    columns: dict[str, Secure] = field(default_factory=dict)      # name -> Row array (n,)
    onehot: dict[str, Secure] = field(default_factory=dict)       # key -> Row array (n, G), integral
    categories: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Output:
    """One named result, still secret-shared; ``labels`` name the entries of a vector result."""

    value: Secure
    integer: bool = False
    labels: list[str] | None = None


def _column(data: NodeData, name: str) -> Secure:
    if name not in data.columns:
        raise MpcSpecError(f"column {name!r} was not shared by any provider")
    return data.columns[name]


def percentile_points(n: int, q: float) -> tuple[int, float]:
    """numpy's default ("linear") rule: position h = (n-1) q/100, value s[lo] + (h-lo)(s[lo+1]-s[lo])."""
    h = (n - 1) * q / 100.0
    lo = min(math.floor(h), n - 1)
    return lo, h - lo


def percentiles(sorted_x: Secure, n: int, qs: list[float]) -> list[Secure]:
    out = []
    for q in qs:
        lo, frac = percentile_points(n, q)
        v = sorted_x[lo]
        if frac > 0 and lo + 1 < n:
            v = v + (sorted_x[lo + 1] - v) * frac
        out.append(v)
    return out


def mean_variance(n: int, s: Secure, q: Secure) -> tuple[Secure, Secure]:
    """Wide mean and sample variance from the Wide sum and sum of squares."""
    mean = s * (1.0 / n)
    return mean, (q - s * mean) * (1.0 / (n - 1))


def pearson(n: int, sa: Secure, sb: Secure, qa: Secure, qb: Secure, pab: Secure) -> Secure:
    """Pearson's r from Wide sums; each variance term gets its own inverse square root so no
    product of two large sums is ever formed."""
    cov = pab - sa * (sb * (1.0 / n))
    va = qa - sa * (sa * (1.0 / n))
    vb = qb - sb * (sb * (1.0 / n))
    return cov * pr.invsqrt(va) * pr.invsqrt(vb)


async def release_allowed(data: NodeData, spec: Any) -> bool:
    """The k-rule inside MPC: the joint count and every cross-tab group must reach
    ``spec.min_group``; one bit is opened."""
    counts = [pr.Row.array(np.array([float(data.n)]), integral=True)]
    if spec.group_by:
        counts.append(pr.total(data.onehot[spec.group_by], axis=0))
    return await pr.all_at_least(pr.concat(counts), spec.min_group)


def compute(data: NodeData, spec: Any) -> dict[str, Output]:
    """All outputs the spec asks for, as secret-shared values named ``op/column[/detail]``."""
    ops, n = set(spec.operations), data.n
    if n < 2 and ops & {"variance", "stddev", "pearson"}:
        raise MpcSpecError(f"{n} row(s): variance, stddev and pearson need at least 2")
    out: dict[str, Output] = {}
    if "count" in ops:
        out["count"] = Output(pr.Row(n), integer=True)
    wide_in: dict[tuple[str, str], Secure] = {}      # (kind, column) -> Row scalar to widen
    for c in spec.columns:
        x = _column(data, c)
        s = pr.total(x)
        if "sum" in ops:
            out[f"sum/{c}"] = Output(s)
        if ops & {"mean", "variance", "stddev"}:
            wide_in[("s", c)] = s
        if ops & {"variance", "stddev"}:
            wide_in[("q", c)] = pr.dot(x, x)
        if ops & {"min", "max", "median", "percentiles"}:
            _order_stats(x, n, c, ops, spec, out)
    if "pearson" in ops:
        a, b = spec.pearson
        xa, xb = _column(data, a), _column(data, b)
        for name, x in ((a, xa), (b, xb)):
            if ("s", name) not in wide_in:
                wide_in[("s", name)] = pr.total(x)
            if ("q", name) not in wide_in:
                wide_in[("q", name)] = pr.dot(x, x)
        wide_in[("p", f"{a},{b}")] = pr.dot(xa, xb)
    if wide_in:
        w = dict(zip(wide_in, pr.widen(list(wide_in.values()))))
        for c in spec.columns:
            if "mean" in ops:
                out[f"mean/{c}"] = Output(w[("s", c)] * (1.0 / n))
            if ops & {"variance", "stddev"}:
                _, var = mean_variance(n, w[("s", c)], w[("q", c)])
                if "variance" in ops:
                    out[f"variance/{c}"] = Output(var)
                if "stddev" in ops:
                    out[f"stddev/{c}"] = Output(pr.sqrt(var))
        if "pearson" in ops:
            a, b = spec.pearson
            r = pearson(n, w[("s", a)], w[("s", b)], w[("q", a)], w[("q", b)], w[("p", f"{a},{b}")])
            out[f"pearson/{a},{b}"] = Output(r)
    if "crosstab" in ops:
        key = spec.group_by
        onehot = data.onehot[key]
        labels = data.categories[key]
        out[f"crosstab/{key}/count"] = Output(pr.total(onehot, axis=0), integer=True, labels=labels)
        for c in spec.columns:
            out[f"crosstab/{key}/sum/{c}"] = Output(pr.dot(_column(data, c), onehot), labels=labels)
    return out


def _order_stats(x: Secure, n: int, c: str, ops: set[str], spec: Any, out: dict[str, Output]) -> None:
    """MIN/MAX by tournament, or all order statistics from one secure sort when a median or a
    percentile is asked for too."""
    qs = [50.0] if "median" in ops else []
    qs += [float(q) for q in spec.percentiles] if "percentiles" in ops else []
    if not qs:
        if "min" in ops:
            out[f"min/{c}"] = Output(pr.extreme(x, largest=False))
        if "max" in ops:
            out[f"max/{c}"] = Output(pr.extreme(x, largest=True))
        return
    s = pr.sort(x)
    if "min" in ops:
        out[f"min/{c}"] = Output(s[0])
    if "max" in ops:
        out[f"max/{c}"] = Output(s[n - 1])
    values = percentiles(s, n, qs)
    if "median" in ops:
        out[f"median/{c}"] = Output(values.pop(0))
    for q, v in zip(spec.percentiles if "percentiles" in ops else [], values):
        out[f"percentile/{c}/{float(q):g}"] = Output(v)
