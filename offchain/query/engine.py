"""The worker's query engine: runs on ciphertext with public keys and peeled RND keys only.

WHERE: DET equality (byte equality of AES-SIV ciphertexts) and order ranges (byte comparison
of fixed-width order codes); GROUP BY a DET column; JOIN two datasets of one provider on DET
columns (shared key and domain); COUNT / SUM / AVG as a product of packed Paillier row
vectors; MIN / MAX as the smallest / largest order code. The result is still ciphertext: the
provider's key service opens it (:mod:`offchain.keyservice.release`)."""
from __future__ import annotations

import bisect
import multiprocessing as mp
from dataclasses import dataclass, field
from typing import Callable

import gmpy2
from gmpy2 import mpz

from offchain.errors import DatasetFormatError, QueryError
from offchain.onion.chunks import split_fixed, split_varlen, unpack_object
from offchain.onion.packing import PackingLayout
from offchain.onion.paillier import PaillierPublicKey
from offchain.onion.peel import PeeledKeys
from offchain.onion.policy import EQ, HOM, ORD
from offchain.query.plan import EncryptedQuery, EqToken, RangeToken, split_ref

Fetch = Callable[[str], bytes]


class _Fixed:
    """A read-only sequence view of fixed-width records in a buffer (for bisect)."""

    def __init__(self, buf: bytes, width: int, count: int) -> None:
        self.buf, self.width, self.count = buf, width, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.buf[i * self.width:(i + 1) * self.width])


class _ChunkIndex:
    """One chunk's opened order index: sorted codes, positions, prefix-product checkpoints."""

    def __init__(self, codes: _Fixed, positions: memoryview, checkpoints: _Fixed, every: int,
                 chunk: dict, view: "DatasetView") -> None:
        self.codes, self.positions, self.checkpoints = codes, positions, checkpoints
        self.every, self.chunk, self.view = every, chunk, view

    def prefix(self, j: int) -> mpz:
        """P[j]: the product of the first j sorted rows' HOM ciphertexts."""
        pub = self.view.pub
        assert pub is not None
        base = j // self.every
        acc = pub.from_bytes(self.checkpoints[base])
        if j % self.every:
            raw, w = self.view._hom_raw(self.chunk), pub.width
            for k in range(base * self.every, j):
                row = int.from_bytes(self.positions[4 * k:4 * k + 4], "big")
                acc = acc * pub.from_bytes(raw[row * w:(row + 1) * w]) % pub.n2
        return acc


class DatasetView:
    """One encrypted dataset as the worker sees it; peeled columns are opened lazily."""

    def __init__(self, manifest: dict, fetch: Fetch, peeled: PeeledKeys) -> None:
        self.m, self.fetch, self.peeled = manifest, fetch, peeled
        self.id = manifest["dataset_id"]
        self._cache: dict[tuple[str, str], list] = {}
        hom = manifest.get("hom")
        self.pub = PaillierPublicKey.from_dict(hom["public"]) if hom else None
        self.layout = PackingLayout.from_dict(hom["layout"]) if hom else None
        self.hom_columns = hom["columns"] if hom else []

    @property
    def rows(self) -> int:
        return self.m["row_count"]

    def _object(self, chunk: dict, column: str, onion: str) -> bytes:
        cid = chunk["objects"].get(f"{column}/{onion}")
        if cid is None:
            raise QueryError(f"dataset {self.id} has no {onion} onion for {column!r}")
        header, hbytes, body = unpack_object(self.fetch(cid))
        if (header.dataset, header.column, header.onion, header.chunk) != (self.id, column, onion, chunk["index"]):
            raise DatasetFormatError(f"object {cid} is not {column}/{onion} chunk {chunk['index']} of {self.id}")
        if onion == HOM:
            return body
        return self.peeled.rnd(header.keys["rnd"]).open(body, hbytes)

    def column(self, column: str, onion: str) -> list:
        key = (column, onion)
        if key not in self._cache:
            out: list = []
            for chunk in self.m["chunks"]:
                if not chunk["rows"]:
                    continue
                body = self._object(chunk, column, onion)
                if onion == EQ:
                    out.extend(split_varlen(body))
                elif onion == ORD:
                    out.extend(split_fixed(body, self.m["columns"][column][ORD]["width"]))
                else:
                    assert self.pub is not None
                    out.extend(mpz(int.from_bytes(c, "big")) for c in split_fixed(body, self.pub.width))
            self._cache[key] = out
        return self._cache[key]

    def hom(self) -> list:
        if self.pub is None:
            raise QueryError(f"dataset {self.id} has no HOM onion")
        return self.column("__hom__", HOM)

    def _hom_raw(self, chunk: dict) -> memoryview:
        key = ("__hom_raw__", str(chunk["index"]))
        if key not in self._cache:
            self._cache[key] = [self._object(chunk, "__hom__", HOM)]
        return self._cache[key][0]

    def order_index(self, column: str) -> list["_ChunkIndex"]:
        key = (column, "ord_index")
        if key not in self._cache:
            assert self.pub is not None
            width, cw = self.m["columns"][column][ORD]["width"], self.pub.width
            parts = []
            for chunk in self.m["chunks"]:
                if not chunk["rows"]:
                    continue
                body, n = memoryview(self._object(chunk, column, "ord_index")), chunk["rows"]
                every = self._index_every(chunk, column)
                codes = _Fixed(body[:n * width], width, n)
                positions = body[n * width:n * width + 4 * n]
                checkpoints = _Fixed(body[n * width + 4 * n:], cw, n // every + 1)
                parts.append(_ChunkIndex(codes, positions, checkpoints, every, chunk, self))
            self._cache[key] = parts
        return self._cache[key]

    def _index_every(self, chunk: dict, column: str) -> int:
        from offchain.onion.chunks import unpack_object as _u
        header, _, _ = _u(self.fetch(chunk["objects"][f"{column}/ord_index"]))
        return int(header.keys.get("checkpoint", 1))

    def has_index(self, column: str) -> bool:
        return bool(self.m["chunks"]) and f"{column}/ord_index" in self.m["chunks"][0]["objects"]


@dataclass
class GroupResult:
    label: bytes | None
    rows: int
    hom: dict[str, int] = field(default_factory=dict)       # side -> Paillier ciphertext
    codes: dict[str, bytes] = field(default_factory=dict)   # "min:col" / "max:col" -> order code
    # side -> the dataset rows this group covers (kept only when the engine tracks rows: the key
    # service's query auditor needs them; never serialised, never sent)
    members: dict[str, list[int]] | None = field(default=None, compare=False, repr=False)


@dataclass
class EncryptedResult:
    query_hash: str
    datasets: dict[str, str]
    groups: list[GroupResult]
    plan: str

    def to_dict(self) -> dict:
        return {"query_hash": self.query_hash, "datasets": self.datasets, "plan": self.plan,
                "groups": [{"label": g.label.hex() if g.label is not None else None, "rows": g.rows,
                            "hom": {s: hex(c) for s, c in sorted(g.hom.items())},
                            "codes": {k: v.hex() for k, v in sorted(g.codes.items())}}
                           for g in self.groups]}

    @classmethod
    def from_dict(cls, d: dict) -> "EncryptedResult":
        """Inverse of :meth:`to_dict` (what the oracle stores or sends to the key service)."""
        try:
            groups = [GroupResult(None if g["label"] is None else bytes.fromhex(g["label"]), int(g["rows"]),
                                  {s: int(c, 16) for s, c in g.get("hom", {}).items()},
                                  {k: bytes.fromhex(v) for k, v in g.get("codes", {}).items()})
                      for g in d["groups"]]
            return cls(str(d["query_hash"]), dict(d["datasets"]), groups, str(d["plan"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise QueryError(f"malformed encrypted result: {exc!r}") from None


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
    """Runs :class:`EncryptedQuery` objects over datasets it can fetch."""

    def __init__(self, manifests: dict[str, dict], fetch: Fetch, peeled: PeeledKeys,
                 processes: int = 1, track_rows: bool = False) -> None:
        self.views = {d: DatasetView(m, fetch, peeled) for d, m in manifests.items()}
        self.processes = processes
        self.track_rows = track_rows

    def view(self, dataset_id: str) -> DatasetView:
        try:
            return self.views[dataset_id]
        except KeyError:
            raise QueryError(f"unknown dataset {dataset_id!r}") from None

    def run(self, q: EncryptedQuery) -> EncryptedResult:
        views = {side: self.view(d) for side, d in q.datasets.items()}
        if self._index_plan_applies(q, views):
            return self._run_index(q, views["left"])
        return self._run_scan(q, views)

    # plans -----------------------------------------------------------------------------------
    def _index_plan_applies(self, q: EncryptedQuery, views: dict[str, DatasetView]) -> bool:
        if q.join or q.group_by or len(q.where) != 1 or not isinstance(q.where[0], RangeToken):
            return False
        tok, left = q.where[0], views["left"]
        return (tok.side == "left" and left.pub is not None and left.has_index(tok.column)
                and all(a.func in ("count", "sum", "avg") for a in q.aggregates))

    def _run_index(self, q: EncryptedQuery, view: DatasetView) -> EncryptedResult:
        tok = q.where[0]
        assert isinstance(tok, RangeToken) and view.pub is not None and view.layout is not None
        n2, rows, acc = view.pub.n2, 0, mpz(1)
        members: list[int] | None = [] if self.track_rows else None
        if not tok.empty:
            offset = 0
            for index in view.order_index(tok.column):
                codes = index.codes
                a = 0 if tok.low is None else bisect.bisect_left(codes, tok.low)
                b = len(codes) if tok.high is None else bisect.bisect_right(codes, tok.high)
                if b > a:
                    rows += b - a
                    pa, pb = index.prefix(a), index.prefix(b)
                    acc = acc * pb % n2 * gmpy2.invert(pa, n2) % n2
                    if members is not None:
                        pos = index.positions
                        members += [offset + int.from_bytes(pos[4 * k:4 * k + 4], "big") for k in range(a, b)]
                offset += len(codes)
        view.layout.check_rows(rows)
        group = GroupResult(None, rows, {"left": int(acc)})
        if members is not None:
            group.members = {"left": sorted(members)}
        return EncryptedResult(q.query_hash, q.datasets, [group], "order_index")

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

    def _run_scan(self, q: EncryptedQuery, views: dict[str, DatasetView]) -> EncryptedResult:
        left = views["left"]
        lsel = self._select(left, "left", q.where)
        if q.join:
            right = views["right"]
            rsel = self._select(right, "right", q.where)
            rkey = right.column(q.join.right_on, EQ)
            by_key: dict[bytes, list[int]] = {}
            for j in rsel:
                by_key.setdefault(rkey[j], []).append(j)
            lkey = left.column(q.join.left_on, EQ)
            pairs = [(i, j) for i in lsel for j in by_key.get(lkey[i], ())]
        else:
            pairs = [(i, -1) for i in lsel]
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
                g.members = {"left": sorted({p[0] for p in members})}
                if q.join:
                    g.members["right"] = sorted({p[1] for p in members})
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
