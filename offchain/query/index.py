"""The order-index plan (Paillier datasets): a single-range SUM / COUNT / AVG as, per chunk, two
binary searches over the sorted order codes and ``P[b] · P[a]⁻¹ mod n²`` from the checkpointed
prefix products of the HOM ciphertexts (built by :func:`offchain.onion.dataset.build_order_index`)."""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import gmpy2
from gmpy2 import mpz

from offchain.query.plan import EncryptedQuery, RangeToken

if TYPE_CHECKING:
    from offchain.query.columns import DatasetView
    from offchain.query.engine import GroupResult


class Fixed:
    """A read-only sequence view of fixed-width records in a buffer (for bisect)."""

    def __init__(self, buf: bytes | memoryview, width: int, count: int) -> None:
        self.buf, self.width, self.count = buf, width, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.buf[i * self.width:(i + 1) * self.width])


class ChunkIndex:
    """One chunk's opened order index: sorted codes, positions, prefix-product checkpoints."""

    def __init__(self, codes: Fixed, positions: memoryview, checkpoints: Fixed, every: int,
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


def index_plan_applies(q: EncryptedQuery, left: "DatasetView") -> bool:
    """One range predicate, no join or grouping, only COUNT/SUM/AVG over Paillier columns."""
    if q.join or q.group_by or len(q.where) != 1 or not isinstance(q.where[0], RangeToken):
        return False
    tok = q.where[0]
    return (tok.side == "left" and left.pub is not None and left.has_index(tok.column)
            and all(a.func in ("count", "sum", "avg") for a in q.aggregates)
            and not any(a.column in left.bfv_columns for a in q.aggregates if a.column))


def run_index(q: EncryptedQuery, view: "DatasetView", track_rows: bool) -> "GroupResult":
    """The one group of a single-range aggregate, from the order index."""
    from offchain.query.engine import GroupResult
    tok = q.where[0]
    assert isinstance(tok, RangeToken) and view.pub is not None and view.layout is not None
    n2, rows, acc = view.pub.n2, 0, mpz(1)
    members: list[int] | None = [] if track_rows else None
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
    return group
