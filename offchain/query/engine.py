"""The worker's query engine: runs on ciphertext with public keys and peeled RND keys only.

WHERE: DET equality (byte equality of AES-SIV ciphertexts) and order ranges (byte comparison
of fixed-width order codes); GROUP BY a DET column; JOIN two datasets of one provider on DET
columns (shared key and domain); COUNT / SUM / AVG as a product of packed Paillier row
vectors or, on the packed BFV layer, as Σ block ⊙ 0/1-mask per group (:mod:`.scan`); MIN / MAX
as the smallest / largest order code. Plans: the order index (:mod:`.index`), the vectorised
scan (:mod:`.scan`) and, for joins, the row-pair scan below; with ``distributed`` set the
partitions of a large table run on a Dask cluster (:mod:`.distributed`). The result is still
ciphertext: the provider's key service opens it (:mod:`offchain.keyservice.release`)."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
from dataclasses import dataclass, field
from typing import Any, Callable

from gmpy2 import mpz

from offchain.errors import QueryError
from offchain.onion.peel import PeeledKeys
from offchain.onion.policy import EQ, ORD
from offchain.query.columns import ChunkCache, DatasetView
from offchain.query.index import index_plan_applies, run_index
from offchain.query.plan import EncryptedQuery, EqToken, split_ref
from offchain.query.scan import scan

Fetch = Callable[[str], bytes]
__all__ = ["DatasetView", "Engine", "EncryptedResult", "GroupResult", "bfv_fingerprint", "product"]


@dataclass
class GroupResult:
    label: bytes | None
    rows: int
    hom: dict[str, int] = field(default_factory=dict)       # side -> Paillier ciphertext
    codes: dict[str, bytes] = field(default_factory=dict)   # "min:col" / "max:col" -> order code
    bfv: dict[str, bytes] = field(default_factory=dict)     # BFV column -> slot-wise encrypted sum
    # side -> the dataset rows this group covers (kept only when the engine tracks rows: the key
    # service's query auditor needs them; never serialised, never sent)
    members: dict[str, list[int]] | None = field(default=None, compare=False, repr=False)


@dataclass
class EncryptedResult:
    query_hash: str
    datasets: dict[str, str]
    groups: list[GroupResult]
    plan: str

    def to_dict(self, full_bfv: bool = False) -> dict:
        """JSON form. A BFV aggregate travels as its fingerprint (``sha256:<hex>``, see
        :func:`bfv_fingerprint`): the key service recomputes it and compares, it never opens the
        worker's copy. ``full_bfv`` keeps the ciphertext (partial results merged on Dask)."""
        enc = (lambda v: v.hex()) if full_bfv else (lambda v: bfv_fingerprint(v).decode())
        return {"query_hash": self.query_hash, "datasets": self.datasets, "plan": self.plan,
                "groups": [{"label": g.label.hex() if g.label is not None else None, "rows": g.rows,
                            "hom": {s: hex(c) for s, c in sorted(g.hom.items())},
                            "codes": {k: v.hex() for k, v in sorted(g.codes.items())},
                            **({"bfv": {c: enc(v) for c, v in sorted(g.bfv.items())}} if g.bfv else {})}
                           for g in self.groups]}

    @classmethod
    def from_dict(cls, d: dict) -> "EncryptedResult":
        """Inverse of :meth:`to_dict` (what the oracle stores or sends to the key service)."""
        try:
            groups = [GroupResult(None if g["label"] is None else bytes.fromhex(g["label"]), int(g["rows"]),
                                  {s: int(c, 16) for s, c in g.get("hom", {}).items()},
                                  {k: bytes.fromhex(v) for k, v in g.get("codes", {}).items()},
                                  {c: v.encode() if v.startswith(FINGERPRINT) else bytes.fromhex(v)
                                   for c, v in g.get("bfv", {}).items()})
                      for g in d["groups"]]
            return cls(str(d["query_hash"]), dict(d["datasets"]), groups, str(d["plan"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise QueryError(f"malformed encrypted result: {exc!r}") from None


FINGERPRINT = "sha256:"


def bfv_fingerprint(aggregate: bytes) -> bytes:
    """``b"sha256:<hex>"`` of a BFV aggregate (a fingerprint stays as it is)."""
    if aggregate.startswith(FINGERPRINT.encode()):
        return aggregate
    return (FINGERPRINT + hashlib.sha256(aggregate).hexdigest()).encode()


_PRODUCT_INPUT: list = []


def _product_slice(bounds: tuple[int, int, int]) -> int:
    lo, hi, n2 = bounds
    acc = mpz(1)
    for c in _PRODUCT_INPUT[lo:hi]:
        acc = acc * c % n2
    return int(acc)


def product(cts: list, n2: mpz, processes: int = 1) -> mpz:
    """Homomorphic sum (product mod n²), split over forked processes for long inputs."""
    global _PRODUCT_INPUT
    if processes <= 1 or len(cts) < 20000 or "fork" not in mp.get_all_start_methods():
        acc = mpz(1)
        for c in cts:
            acc = acc * c % n2
        return acc
    _PRODUCT_INPUT = cts
    try:
        step = (len(cts) + processes - 1) // processes
        with mp.get_context("fork").Pool(processes) as pool:
            parts = pool.map(_product_slice, [(i, min(len(cts), i + step), int(n2))
                                              for i in range(0, len(cts), step)])
    finally:
        _PRODUCT_INPUT = []
    acc = mpz(1)
    for p in parts:
        acc = acc * p % n2
    return acc


class Engine:
    """Runs :class:`EncryptedQuery` objects over datasets it can fetch. ``processes``: forked
    workers for products; ``cache``: where opened chunks are kept across queries (default: the
    process-wide :data:`~offchain.query.columns.SHARED_CACHE`); ``distributed``: a
    :class:`~offchain.query.distributed.DaskOptions` to run partitions on a Dask cluster, ``None``
    to follow the process's rule (:func:`offchain.query.cluster.configure`: big tables on the
    service's cluster), ``False`` for this process only."""

    def __init__(self, manifests: dict[str, dict], fetch: Fetch, peeled: PeeledKeys,
                 processes: int = 1, track_rows: bool = False, cache: ChunkCache | None = None,
                 distributed: Any = None) -> None:
        self.manifests, self.fetch, self.peeled = manifests, fetch, peeled
        self.views = {d: DatasetView(m, fetch, peeled, cache) for d, m in manifests.items()}
        self.processes = processes
        self.track_rows = track_rows
        self.distributed = distributed

    def view(self, dataset_id: str) -> DatasetView:
        try:
            return self.views[dataset_id]
        except KeyError:
            raise QueryError(f"unknown dataset {dataset_id!r}") from None

    def run(self, q: EncryptedQuery) -> EncryptedResult:
        views = {side: self.view(d) for side, d in q.datasets.items()}
        options = self._cluster(q)
        if options is not None:
            from offchain.query.distributed import run_partitioned
            return run_partitioned(self, q, options)
        if index_plan_applies(q, views["left"]):
            group = run_index(q, views["left"], self.track_rows)
            return EncryptedResult(q.query_hash, q.datasets, [group], "order_index")
        if q.join:
            return self._run_join(q, views)
        return EncryptedResult(q.query_hash, q.datasets, scan(q, views["left"], self.processes, self.track_rows),
                               "scan")

    def _cluster(self, q: EncryptedQuery) -> Any:
        """The Dask options ``q`` runs on, or None to run it here."""
        if q.join or self.distributed is False:
            return None
        if self.distributed is not None:
            return self.distributed
        from offchain.query.cluster import options_for
        return options_for(self.manifests[q.datasets["left"]])

    # the join plan: row pairs over the list forms ------------------------------------------------
    def _select(self, view: DatasetView, side: str, tokens: tuple) -> list[int]:
        selected = list(range(view.rows))
        for tok in tokens:
            if tok.side != side:
                continue
            if isinstance(tok, EqToken):
                col = view.column(tok.column, EQ)
                selected = [i for i in selected if col[i] == tok.ciphertext]
            elif tok.empty:
                selected = []
            else:
                col, lo, hi = view.column(tok.column, ORD), tok.low, tok.high
                selected = [i for i in selected if (lo is None or col[i] >= lo) and (hi is None or col[i] <= hi)]
        return selected

    def _run_join(self, q: EncryptedQuery, views: dict[str, DatasetView]) -> EncryptedResult:
        assert q.join is not None
        for agg in q.aggregates:
            side, col = split_ref(agg.column or "")
            if agg.func in ("sum", "avg") and col in views[side].bfv_columns:
                raise QueryError(f"{agg.label}: a JOIN repeats rows, and {col!r} is on the packed BFV layer, "
                                 "whose modulus is sized for each row once; aggregate it without a join")
        left, right = views["left"], views["right"]
        lsel = self._select(left, "left", q.where)
        rsel = self._select(right, "right", q.where)
        rkey = right.column(q.join.right_on, EQ)
        by_key: dict[bytes, list[int]] = {}
        for j in rsel:
            by_key.setdefault(rkey[j], []).append(j)
        lkey = left.column(q.join.left_on, EQ)
        pairs = [(i, j) for i in lsel for j in by_key.get(lkey[i], ())]
        groups: dict[bytes | None, list[tuple[int, int]]] = {}
        if q.group_by:
            side, col = split_ref(q.group_by)
            labels = views[side].column(col, EQ)
            pick = 0 if side == "left" else 1
            for p in pairs:
                groups.setdefault(labels[p[pick]], []).append(p)
        else:
            groups[None] = pairs
        hom_sides = self._hom_sides(q, views)
        out = []
        for label in sorted(groups, key=lambda x: x or b""):
            members = groups[label]
            g = GroupResult(label, len(members))
            if self.track_rows:
                g.members = {"left": sorted({p[0] for p in members}), "right": sorted({p[1] for p in members})}
            for side in hom_sides:
                view, pick = views[side], 0 if side == "left" else 1
                assert view.layout is not None and view.pub is not None
                view.layout.check_rows(len(members))
                hom = view.hom()
                g.hom[side] = int(product([hom[p[pick]] for p in members], view.pub.n2, self.processes))
            for agg in q.aggregates:
                if agg.func in ("min", "max") and members:
                    side, col = split_ref(agg.column or "")
                    codes, pick = views[side].column(col, ORD), 0 if side == "left" else 1
                    pickf = min if agg.func == "min" else max
                    g.codes[f"{agg.func}:{agg.column}"] = pickf(codes[p[pick]] for p in members)
            out.append(g)
        return EncryptedResult(q.query_hash, q.datasets, out, "scan")

    @staticmethod
    def _hom_sides(q: EncryptedQuery, views: dict[str, DatasetView]) -> list[str]:
        sides = []
        for agg in q.aggregates:
            if agg.func in ("sum", "avg"):
                side, _ = split_ref(agg.column or "")
                if side not in sides:
                    sides.append(side)
        if not sides and views["left"].pub is not None:
            sides.append("left")   # COUNT is also read from the count slot (a consistency check)
        return sides
