"""The worker's view of one encrypted dataset: chunks opened lazily, kept in a shared cache.

Opened forms are cached by the object's CID (content-addressed, so immutable) and the form —
across queries, jobs and engines in one process (:data:`SHARED_CACHE`, bounded by bytes,
least recently used first out). An RND-sealed object is served from the cache only to a caller
holding the key over it (checked against the manifest's key id before every lookup), so the
cache never hands a layer to a query whose grant did not peel it.

Vectorised forms for the scan plan: an order column as big-endian 64-bit words (lexicographic
comparison in numpy), a DET column as integer codes plus the table of distinct ciphertexts, a
BFV column as its blocks in NTT form (ready for plaintext-mask products)."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
from gmpy2 import mpz

from chain.crypto_profile import require_profile
from offchain.errors import DatasetFormatError, QueryError
from offchain.onion.bfv import BfvColumn, evaluator
from offchain.onion.chunks import split_fixed, split_varlen, unpack_object
from offchain.onion.dataset import check_object_digest, check_profile
from offchain.onion.packing import PackingLayout
from offchain.onion.paillier import PaillierPublicKey
from offchain.onion.peel import PeeledKeys
from offchain.onion.policy import BFV, EQ, HOM, ORD

Fetch = Callable[[str], bytes]


class ChunkCache:
    """Opened chunk forms by (CID, form), bounded by ``max_bytes`` (LRU). Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self._items: OrderedDict[tuple[str, str], tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_or_load(self, key: tuple[str, str], load: Callable[[], tuple[Any, int]]) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return hit[0]
            self.misses += 1
        value, size = load()
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size)
                self.size += size
            while self.size > self.max_bytes and len(self._items) > 1:
                _, (_, s) = self._items.popitem(last=False)
                self.size -= s
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


SHARED_CACHE = ChunkCache(int(os.environ.get("TDS_CHUNK_CACHE_MB", "1024")) << 20)


def words(raw: bytes | memoryview, width: int) -> np.ndarray:
    """Fixed-width big-endian codes as rows of uint64 words (most significant first)."""
    n, k = len(raw) // width, (width + 7) // 8
    padded = np.zeros((n, 8 * k), dtype=np.uint8)
    padded[:, 8 * k - width:] = np.frombuffer(raw, dtype=np.uint8).reshape(n, width)
    return padded.view(">u8").astype(np.uint64).reshape(n, k)


def code_words(code: bytes, width: int) -> np.ndarray:
    return words(code, width)[0]


def lex_compare(w: np.ndarray, token: np.ndarray, ge: bool) -> np.ndarray:
    """Rows of ``w`` >= token (``ge``) or <= token, lexicographically over the words."""
    out = np.full(len(w), True)           # equal so far → inclusive bound holds
    for j in range(w.shape[1] - 1, -1, -1):
        col, t = w[:, j], token[j]
        out = (col > t if ge else col < t) | ((col == t) & out)
    return out


class DatasetView:
    """One encrypted dataset as the worker sees it; peeled columns are opened lazily."""

    def __init__(self, manifest: dict, fetch: Fetch, peeled: PeeledKeys | None,
                 cache: ChunkCache | None = None) -> None:
        self.m, self.fetch, self.peeled = manifest, fetch, peeled
        self.cache = cache if cache is not None else SHARED_CACHE
        self.id = manifest["dataset_id"]
        profile = check_profile(manifest)       # the profile in force must be the dataset's …
        for key_id, (dataset, _, _) in (peeled.scope.items() if peeled else ()):
            if dataset == self.id:              # … and that of every layer key given for it
                require_profile(profile, peeled.keys[key_id].profile, f"layer key {key_id}")
        self._cache: dict[tuple[str, str], Any] = {}
        hom = manifest.get("hom")
        self.pub = PaillierPublicKey.from_dict(hom["public"]) if hom else None
        self.layout = PackingLayout.from_dict(hom["layout"]) if hom else None
        self.hom_columns = hom["columns"] if hom else []
        bfv = manifest.get("bfv") or {}
        self.bfv_columns = {c: BfvColumn.from_dict(d) for c, d in bfv.get("columns", {}).items()}

    @property
    def rows(self) -> int:
        return self.m["row_count"]

    def chunks(self) -> list[dict]:
        return [c for c in self.m["chunks"] if c["rows"]]

    def _cid(self, chunk: dict, column: str, onion: str) -> str:
        cid = chunk["objects"].get(f"{column}/{onion}")
        if cid is None:
            raise QueryError(f"dataset {self.id} has no {onion} onion for {column!r}")
        return cid

    def _object(self, chunk: dict, column: str, onion: str) -> bytes:
        cid = self._cid(chunk, column, onion)
        raw = self.fetch(cid)
        check_object_digest(self.m, chunk, f"{column}/{onion}", raw)
        header, hbytes, body = unpack_object(raw)
        if (header.dataset, header.column, header.onion, header.chunk) != (self.id, column, onion, chunk["index"]):
            raise DatasetFormatError(f"object {cid} is not {column}/{onion} chunk {chunk['index']} of {self.id}")
        if onion in (HOM, BFV):
            return bytes(body)
        if self.peeled is None:
            raise QueryError(f"no layer keys to open {column}/{onion}")
        return self.peeled.rnd(header.keys["rnd"]).open(body, hbytes)

    def _opened(self, chunk: dict, column: str, onion: str, form: str, make: Callable[[bytes], Any]) -> Any:
        """A chunk's opened form from the shared cache, after checking the caller holds its key."""
        if onion in (EQ, ORD, "ord_index"):
            meta = self.m["columns"][column][ORD if onion == "ord_index" else onion]
            if self.peeled is None:
                raise QueryError(f"no layer keys to open {column}/{onion}")
            self.peeled.rnd(meta["rnd"])      # KeyNotFound unless this query was given the key
        cid = self._cid(chunk, column, onion)

        def load() -> tuple[Any, int]:
            body = self._object(chunk, column, onion)
            value = make(body)
            return value, _size_of(value, len(body))
        return self.cache.get_or_load((cid, form), load)

    # list forms (the join path and the order-index plan) ------------------------------------------
    def column(self, column: str, onion: str) -> list:
        key = (column, onion)
        if key not in self._cache:
            out: list = []
            for chunk in self.chunks():
                if onion == EQ:
                    out.extend(self._opened(chunk, column, EQ, "eq-list", split_varlen))
                elif onion == ORD:
                    w = self.m["columns"][column][ORD]["width"]
                    out.extend(self._opened(chunk, column, ORD, "ord-list", lambda b, w=w: split_fixed(b, w)))
                else:
                    out.extend(self.hom_chunk(chunk))
            self._cache[key] = out
        return self._cache[key]

    def hom(self) -> list:
        if self.pub is None:
            raise QueryError(f"dataset {self.id} has no HOM onion")
        return self.column("__hom__", HOM)

    def hom_chunk(self, chunk: dict) -> list:
        assert self.pub is not None
        w = self.pub.width
        return self._opened(chunk, "__hom__", HOM, "hom-mpz",
                            lambda b: [mpz(int.from_bytes(c, "big")) for c in split_fixed(b, w)])

    def _hom_raw(self, chunk: dict) -> bytes:
        return self._opened(chunk, "__hom__", HOM, "raw", lambda b: b)

    def order_index(self, column: str) -> list:
        from offchain.query.index import ChunkIndex, Fixed
        key = (column, "ord_index")
        if key not in self._cache:
            assert self.pub is not None
            width, cw = self.m["columns"][column][ORD]["width"], self.pub.width
            parts = []
            for chunk in self.chunks():
                body, n = memoryview(self._object(chunk, column, "ord_index")), chunk["rows"]
                every = self._index_every(chunk, column)
                codes = Fixed(body[:n * width], width, n)
                positions = body[n * width:n * width + 4 * n]
                checkpoints = Fixed(body[n * width + 4 * n:], cw, n // every + 1)
                parts.append(ChunkIndex(codes, positions, checkpoints, every, chunk, self))
            self._cache[key] = parts
        return self._cache[key]

    def _index_every(self, chunk: dict, column: str) -> int:
        header, _, _ = unpack_object(self.fetch(chunk["objects"][f"{column}/ord_index"]))
        return int(header.keys.get("checkpoint", 1))

    def has_index(self, column: str) -> bool:
        return bool(self.m["chunks"]) and f"{column}/ord_index" in self.m["chunks"][0]["objects"]

    # vectorised forms (the scan plan) -------------------------------------------------------------
    def ord_words(self, column: str) -> np.ndarray:
        """Every row's order code as uint64 words (rows × words)."""
        key = (column, "ord-words")
        if key not in self._cache:
            w = self.m["columns"][column][ORD]["width"]
            parts = [self._opened(c, column, ORD, "ord-words", lambda b: words(b, w)) for c in self.chunks()]
            self._cache[key] = np.concatenate(parts) if parts else np.zeros((0, (w + 7) // 8), np.uint64)
        return self._cache[key]

    def ord_code(self, column: str, row: int) -> bytes:
        """The order code of one row, as bytes (MIN / MAX results)."""
        w = self.m["columns"][column][ORD]["width"]
        k = (w + 7) // 8
        return self.ord_words(column)[row].astype(">u8").tobytes()[8 * k - w:]

    def eq_codes(self, column: str) -> tuple[np.ndarray, list[bytes]]:
        """Every row's DET ciphertext as an integer code, and the distinct ciphertexts by code."""
        key = (column, "eq-codes")
        if key not in self._cache:
            labels: dict[bytes, int] = {}
            parts = []
            for chunk in self.chunks():
                local, table = self._opened(chunk, column, EQ, "eq-codes", _dict_encode)
                remap = np.array([labels.setdefault(lbl, len(labels)) for lbl in table], dtype=np.int32)
                parts.append(remap[local] if len(table) else local)
            codes = np.concatenate(parts) if parts else np.zeros(0, np.int32)
            self._cache[key] = (codes, list(labels))
        return self._cache[key]

    def bfv_blocks(self, column: str) -> list[tuple[int, int, Any]]:
        """(first row, rows, NTT-form ciphertext) of every block of a BFV column."""
        key = (column, "bfv-blocks")
        if key not in self._cache:
            bc = self.bfv_columns[column]
            ev, out, offset = evaluator(bc.params), [], 0
            for chunk in self.chunks():
                cts = self._opened(chunk, column, BFV, "bfv-ntt", lambda b: [ev.load(x) for x in split_varlen(b)])
                slots = bc.params.slots
                for j, ct in enumerate(cts):
                    start = j * slots
                    out.append((offset + start, min(chunk["rows"], start + slots) - start, ct))
                offset += chunk["rows"]
            self._cache[key] = out
        return self._cache[key]


def _dict_encode(body: bytes) -> tuple[np.ndarray, list[bytes]]:
    labels: dict[bytes, int] = {}
    codes = np.fromiter((labels.setdefault(v, len(labels)) for v in split_varlen(body)), dtype=np.int32)
    return codes, list(labels)


def _size_of(value: Any, raw: int) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, tuple):
        return sum(_size_of(v, 0) for v in value) + raw // 4
    if isinstance(value, list) and value and type(value[0]).__name__ == "Ciphertext":
        return 2 * value[0].coeff_modulus_size() * value[0].poly_modulus_degree() * 8 * len(value)
    return raw * (3 if isinstance(value, list) else 1)
