"""The scan plan over one dataset, vectorised: WHERE and GROUP BY as numpy masks over the opened
DET codes and order words, then per group either the product of the selected Paillier row
ciphertexts or, for BFV columns, Σ_blocks block ⊙ mask (a plaintext 0/1 mask per block and
group; a block the group covers entirely is added without a product, one it misses is skipped).
Block work is split over forked processes; the partial sums add up to exactly the same
ciphertext (addition mod q is exact and the NTT is linear)."""
from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any

import numpy as np

from offchain.onion.bfv import evaluator
from offchain.query.columns import DatasetView, code_words, lex_compare
from offchain.query.plan import EncryptedQuery, EqToken, RangeToken, split_ref

PARALLEL_MIN_WORK = 48       # block × group products below which forking costs more than it saves


def selection(view: DatasetView, tokens: tuple, side: str = "left") -> np.ndarray:
    """Boolean row mask of the predicates of ``side`` (DET equality, order ranges)."""
    mask = np.ones(view.rows, dtype=bool)
    for tok in tokens:
        if tok.side != side:
            continue
        if isinstance(tok, EqToken):
            codes, labels = view.eq_codes(tok.column)
            try:
                mask &= codes == labels.index(tok.ciphertext)
            except ValueError:
                mask[:] = False
        elif isinstance(tok, RangeToken):
            if tok.empty:
                mask[:] = False
                continue
            w = view.ord_words(tok.column)
            width = view.m["columns"][tok.column]["ord"]["width"]
            if tok.low is not None:
                mask &= lex_compare(w, code_words(tok.low, width), ge=True)
            if tok.high is not None:
                mask &= lex_compare(w, code_words(tok.high, width), ge=False)
    return mask


def groups_of(view: DatasetView, mask: np.ndarray, group_by: str | None) -> list[tuple[bytes | None, np.ndarray]]:
    """(label, sorted member rows) per group, ordered by label bytes (as the engine reports)."""
    rows = np.flatnonzero(mask)
    if not group_by:
        return [(None, rows)]
    codes, labels = view.eq_codes(split_ref(group_by)[1])
    sel = codes[rows]
    order = np.argsort(sel, kind="stable")
    sorted_codes, sorted_rows = sel[order], rows[order]
    cuts = np.flatnonzero(np.diff(sorted_codes)) + 1
    out = [(labels[int(part_codes[0])], part_rows)
           for part_codes, part_rows in zip(np.split(sorted_codes, cuts), np.split(sorted_rows, cuts)) if len(part_rows)]
    return sorted(out, key=lambda g: g[0] or b"")


def extreme_code(view: DatasetView, column: str, members: np.ndarray, func: str) -> bytes:
    """The smallest / largest order code among ``members``."""
    w = view.ord_words(column)[members]
    order = np.lexsort(w.T[::-1])
    return view.ord_code(column, int(members[order[0] if func == "min" else order[-1]]))


# --- BFV: Σ block ⊙ mask per group ------------------------------------------------------------
_WORK: dict[str, Any] = {}


def _bfv_partial(blocks: list, groups: list[np.ndarray], params: Any) -> list[bytes]:
    ev = evaluator(params)
    accs: list[Any] = [None] * len(groups)
    for start, n, ct in blocks:
        for g, members in enumerate(groups):
            lo, hi = np.searchsorted(members, [start, start + n])
            if hi == lo:
                continue
            if hi - lo == n:                       # the group holds the whole block
                accs[g] = ev.add_into(accs[g], ct, owned=False)
                continue
            bits = np.zeros(n, dtype=np.int64)
            bits[members[lo:hi] - start] = 1
            accs[g] = ev.add_into(accs[g], ev.masked(ct, ev.mask(bits, ct.parms_id())), owned=True)
    return [ev.finish(a) for a in accs]


def _bfv_slice(bounds: tuple[int, int]) -> list[bytes]:
    return _bfv_partial(_WORK["blocks"][bounds[0]:bounds[1]], _WORK["groups"], _WORK["params"])


def _spare_cores() -> int:
    """Cores not already busy (the 1-minute load average, ours included): forking onto a
    saturated machine costs more than it gains. The result is the same either way."""
    cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return cpus
    return max(1, min(cpus, int(cpus - busy + 1.5)))


def bfv_sums(view: DatasetView, column: str, groups: list[np.ndarray], processes: int = 1) -> list[bytes]:
    """The slot-wise encrypted sum of ``column`` over each group's rows (b"" for no rows)."""
    bc = view.bfv_columns[column]
    blocks = view.bfv_blocks(column)
    work = sum(1 for _ in blocks) * max(1, len(groups))
    if processes <= 1 or work < PARALLEL_MIN_WORK or len(blocks) < 2 or "fork" not in mp.get_all_start_methods():
        return _bfv_partial(blocks, groups, bc.params)
    procs = min(processes, _spare_cores(), len(blocks))
    if procs <= 1:
        return _bfv_partial(blocks, groups, bc.params)
    step = (len(blocks) + procs - 1) // procs
    _WORK.update(blocks=blocks, groups=groups, params=bc.params)
    try:
        with mp.get_context("fork").Pool(procs) as pool:
            parts = pool.map(_bfv_slice, [(i, min(len(blocks), i + step)) for i in range(0, len(blocks), step)])
    finally:
        _WORK.clear()
    ev = evaluator(bc.params)
    out = parts[0]
    for part in parts[1:]:
        out = [ev.add_bytes(a, b) for a, b in zip(out, part)]
    return out


def scan(q: EncryptedQuery, view: DatasetView, processes: int, track_rows: bool) -> list:
    """Every group of a single-dataset query, with its encrypted aggregates."""
    from offchain.query.engine import GroupResult, product
    mask = selection(view, q.where)
    groups = groups_of(view, mask, q.group_by)
    summed = {a.column for a in q.aggregates if a.func in ("sum", "avg") and a.column}
    bfv_cols = sorted(c for c in summed if c in view.bfv_columns)
    paillier = bool(summed - set(bfv_cols)) or (not summed and view.pub is not None)
    bfv = {c: bfv_sums(view, c, [m for _, m in groups], processes) for c in bfv_cols}
    out = []
    for g, (label, members) in enumerate(groups):
        res = GroupResult(label, int(len(members)))
        if track_rows:
            res.members = {"left": members.tolist()}
        if paillier:
            assert view.layout is not None and view.pub is not None
            view.layout.check_rows(len(members))
            hom = view.hom()
            res.hom["left"] = int(product([hom[i] for i in members.tolist()], view.pub.n2, processes))
        for c in bfv_cols:
            view.bfv_columns[c].check_rows(len(members))
            res.bfv[c] = bfv[c][g]
        for agg in q.aggregates:
            if agg.func in ("min", "max") and len(members):
                res.codes[f"{agg.func}:{agg.column}"] = extreme_code(view, agg.column or "", members, agg.func)
        out.append(res)
    return out
