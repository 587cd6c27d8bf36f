"""The provider's key service, as pure library code (the HTTP service and the oracle wrap it).

It is the only holder of inner secret keys. For a consumer's query under a grant it
(1) checks the grant allows every operation and the policy has the onions, (2) turns plaintext
constants into tokens and peels only the RND layers needed (:meth:`KeyService.prepare`), and
after the worker ran (3) opens exactly the returned aggregates — never rows — refusing groups
smaller than the dataset's minimum group size, and returns the plaintext answer with a
structured release record (:meth:`KeyService.open`). Sealing the answer to the consumer's
key-agreement key is the identity package's job.

Packed BFV aggregates are opened only from the key service's *own* recomputation: one BFV
decryption opens every slot, so :meth:`KeyService.open` recomputes the encrypted result from the
content store (``fetch``) with the query's tokens and refuses a worker's result that differs
(:class:`ResultRejected`); each column total is then reduced (rotate-and-sum), noise-flooded and
decrypted by :meth:`~offchain.onion.bfvkey.BfvSecretKey.open_total`, which never decrypts a
ciphertext whose slots still differ."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterable

from offchain.canonical import canonical_hash
from offchain.errors import GrantRefused, KeyAuthenticationError, PolicyError, QueryError
from offchain.ingest.schema import Schema
from offchain.onion.bfv import BfvColumn
from offchain.onion.dataset import order_int, scaled_value
from offchain.onion.keys import Keyring
from offchain.onion.packing import COUNT_SLOT, PackingLayout
from offchain.onion.peel import PeeledKeys, peel
from offchain.ingest.classification import Classification
from offchain.onion.policy import EQ, ORD, DatasetPolicy, ReleaseRules, exposure
from offchain.query.engine import EncryptedResult, Engine, bfv_fingerprint
from offchain.query.plan import EncryptedQuery, Eq, EqToken, Query, RangeToken, split_ref, split_version

if TYPE_CHECKING:
    from offchain.keyservice.privacy import DpTerms

RELEASE_FORMAT = "tds-release/1"


@dataclass(frozen=True)
class Grant:
    """The off-chain view of an authorization: who, which datasets, which operations
    (``"sum:amount"``, ``"range:age"``, ``"group_by:region"``, ``"join:cid"``, ``"count"``)."""

    grant_id: str
    consumer: str
    datasets: frozenset[str]
    operations: frozenset[str]
    expires_at: int | None = None
    price: int = 0
    dp: "DpTerms | None" = None       # the provider's privacy option on this grant (noise + budget)

    @classmethod
    def covering(cls, query: Query, operations: Iterable[str], consumer: str = "",
                 grant_id: str = "ad-hoc", price: int = 0) -> "Grant":
        """A grant of ``operations`` over exactly the query's dataset(s)."""
        refs = {query.dataset} | ({query.join.dataset} if query.join else set())
        datasets = {split_version(d)[0] for d in refs}
        return cls(grant_id, consumer, frozenset(datasets), frozenset(operations), price=price)


def parse_operation(op: str) -> tuple[str, str, str | None]:
    """``"sum:right.amount"`` -> ("sum", "right", "amount"); ``"count"`` -> ("count", "left", None)."""
    name, _, ref = op.partition(":")
    if not ref:
        return name, "left", None
    side, col = split_ref(ref)
    return name, side, col


def grant_exposure(manifest: dict, operations: Iterable[str], consumer: str = "", price: int = 0,
                   rules: ReleaseRules = ReleaseRules()) -> dict:
    """What granting ``operations`` on this dataset exposes, field by field (which onions get
    peeled and what DET / order layers leak) — shown to the provider before signing. Canonical
    JSON with a hash, so the UI can show exactly what the signature covers. ``right.`` refs
    are the joined dataset's columns: pass that dataset's manifest for those."""
    policy = DatasetPolicy.from_dict(manifest["policy"])
    cls = Classification(manifest["classification"]["dataset"], manifest["classification"]["fields"])
    pairs, unknown = [], []
    for op in sorted(set(operations)):
        name, _, col = parse_operation(op)
        if col is None:
            continue            # COUNT needs no onion and exposes only the row count
        if col not in policy.fields:
            unknown.append(op)
            continue
        pairs.append((name, col))
    items = [e.to_dict() for e in exposure(policy, cls, pairs, consumer, price, rules)]
    peeled = sorted({(e["column"], e["onion"]) for e in items if e["allowed"] and e["onion"] in (EQ, ORD)})
    rank = {"n/a": -1, "none": 0, "low": 1, "medium": 2, "high": 3}
    worst = max((e["severity"] for e in items if e["allowed"]), key=rank.__getitem__, default="low")
    out = {"format": "tds-exposure/1", "dataset_id": manifest["dataset_id"], "consumer": consumer,
           "price": price, "classification": cls.dataset,
           "min_group_size": policy.min_group_size, "fields": items,
           "peeled_layers": [{"column": c, "onion": o} for c, o in peeled],
           "worst_severity": worst, "refused": [f"{e['operation']}:{e['column']}" for e in items if not e["allowed"]],
           "unknown": unknown}
    out["hash"] = canonical_hash(out)
    return out


@dataclass
class Release:
    answer: dict
    record: dict


class ResultRejected(GrantRefused):
    """The oracle's encrypted result is not the result of the committed query over the data."""


def same_result(own: EncryptedResult, theirs: EncryptedResult) -> bool:
    """Two encrypted results are the same answer: same query, datasets, groups, row counts,
    homomorphic sums (Paillier products, BFV sums) and order codes — all deterministic."""
    if own.query_hash != theirs.query_hash or own.datasets != theirs.datasets:
        return False
    if len(own.groups) != len(theirs.groups):
        return False
    return all(a.label == b.label and a.rows == b.rows and a.hom == b.hom and a.codes == b.codes
               and _fingerprints(a.bfv) == _fingerprints(b.bfv) for a, b in zip(own.groups, theirs.groups))


def _fingerprints(bfv: dict[str, bytes]) -> dict[str, bytes]:
    return {c: bfv_fingerprint(v) for c, v in bfv.items()}


def bfv_column(manifest: dict, column: str) -> BfvColumn | None:
    """The column's BFV layout, or None when it is on Paillier (every pre-BFV manifest)."""
    d = (manifest.get("bfv") or {}).get("columns", {}).get(column)
    return BfvColumn.from_dict(d) if d else None


class KeyService:
    """``rules`` (optional) make release depend on consumer identity and price: leaky layers
    (DET / order) of sensitive fields go only to trusted consumers or at a high enough price."""

    def __init__(self, keyring: Keyring, manifests: dict[str, dict],
                 clock: Callable[[], float] = time.time, rules: ReleaseRules | None = None,
                 fetch: Callable[[str], bytes] | None = None) -> None:
        self.keyring, self.manifests, self.clock, self.rules = keyring, manifests, clock, rules
        self.fetch = fetch       # the content store: BFV results are recomputed from it before opening

    # helpers ---------------------------------------------------------------------------------
    def _manifest(self, dataset_id: str) -> dict:
        try:
            return self.manifests[dataset_id]
        except KeyError:
            raise QueryError(f"unknown dataset {dataset_id!r}") from None

    @staticmethod
    def _refs(query: Query) -> dict[str, str]:
        """Side -> dataset reference as the query names it (``<id>`` or ``<id>@v<n>``)."""
        return {"left": query.dataset, **({"right": query.join.dataset} if query.join else {})}

    def _sides(self, query: Query) -> dict[str, dict]:
        sides = {"left": self._manifest(query.dataset)}
        if query.join:
            sides["right"] = self._manifest(query.join.dataset)
        return sides

    def check(self, query: Query, grant: Grant) -> None:
        """Raise :class:`GrantRefused` unless ``grant`` covers the whole query."""
        now = self.clock()
        if grant.expires_at is not None and now > grant.expires_at:
            raise GrantRefused(f"grant {grant.grant_id} expired at {grant.expires_at}")
        for m in self._sides(query).values():
            if m["dataset_id"] not in grant.datasets:
                raise GrantRefused(f"grant {grant.grant_id} does not cover dataset {m['dataset_id']}")
        for op in sorted(query.operations()):
            if op not in grant.operations:
                raise GrantRefused(f"grant {grant.grant_id} does not allow it", op)
        if self.rules is not None:
            for side, m in self._sides(query).items():
                ops = [op for op in query.operations() if parse_operation(op)[1] == side]
                bare = [op.replace("right.", "") for op in ops]
                ex = grant_exposure(m, bare, grant.consumer, grant.price, self.rules)
                if ex["refused"]:
                    raise GrantRefused(f"release rules refuse it for {grant.consumer or 'this consumer'} "
                                       f"at price {grant.price}", ex["refused"][0], code="ReleaseRulesRefuse")

    # the names the SPEC's step 7 uses ---------------------------------------------------------
    def release_layer_keys(self, grant_ops: Iterable[str] | Grant, query: Query
                           ) -> tuple[EncryptedQuery, PeeledKeys]:
        """Step 7, before the worker runs: tokens + the RND layer keys this query needs."""
        grant = grant_ops if isinstance(grant_ops, Grant) else Grant.covering(query, grant_ops)
        return self.prepare(query, grant)

    def open_aggregate(self, encrypted_result: "EncryptedResult | dict", grant_ops: Iterable[str] | Grant,
                       query: Query, min_group: int | None = None) -> Release:
        """Step 7, after the worker ran: open exactly the aggregate (``encrypted_result`` may be
        its JSON form); ``min_group`` can only raise the datasets' minimum group size."""
        grant = grant_ops if isinstance(grant_ops, Grant) else Grant.covering(query, grant_ops)
        result = (EncryptedResult.from_dict(encrypted_result) if isinstance(encrypted_result, dict)
                  else encrypted_result)
        return self.open(query, grant, result, min_group)

    # prepare ---------------------------------------------------------------------------------
    def prepare(self, query: Query, grant: Grant) -> tuple[EncryptedQuery, PeeledKeys]:
        """Tokens for the constants and the RND keys the plan needs — nothing else."""
        self.check(query, grant)
        sides = self._sides(query)
        needs: dict[str, set[tuple[str, str]]] = {s: set() for s in sides}

        def need(ref: str, operation: str) -> tuple[str, str]:
            side, col = split_ref(ref)
            policy = DatasetPolicy.from_dict(sides[side]["policy"])
            onion = policy.require(col, operation)
            if onion in (EQ, ORD):
                needs[side].add((col, onion))
            return side, col

        tokens: list[EqToken | RangeToken] = []
        for pred in query.where:
            if isinstance(pred, Eq):
                side, col = need(pred.column, "equality")
                meta = sides[side]["columns"][col][EQ]
                field = Schema.from_dict(sides[side]["schema"]).field(col)
                value = field.parse(pred.value, None) if isinstance(pred.value, str) else pred.value
                ct = self.keyring.det(meta["det"]).encrypt(value, meta["domain"])
                tokens.append(EqToken(side, col, ct))
            else:
                side, col = need(pred.column, "range")
                tokens.append(self._range_token(sides[side], side, col, pred.low, pred.high))
        for agg in query.aggregates:
            if agg.column:
                need(agg.column, agg.func)
        if query.group_by:
            need(query.group_by, "group_by")
        if query.join:
            ls, lc = need(query.join.left_on, "join")
            rs, rc = need("right." + query.join.right_on, "join")
            lm, rm = sides["left"]["columns"][lc][EQ], sides["right"]["columns"][rc][EQ]
            if (lm["det"], lm["domain"]) != (rm["det"], rm["domain"]):
                raise PolicyError(lc, "join", f"not joinable with {rc!r}: different DET key or domain")
        peeled = PeeledKeys()
        for side, m in sides.items():
            peeled.merge(peel(m, self.keyring, needs[side]))
        enc = EncryptedQuery(query.hash, self._refs(query),
                             query.aggregates, tuple(tokens), query.group_by, query.join)
        return enc, peeled

    def _range_token(self, manifest: dict, side: str, col: str, low: Any, high: Any) -> RangeToken:
        field = Schema.from_dict(manifest["schema"]).field(col)
        key = self.keyring.order(manifest["columns"][col][ORD]["ope"])

        def conv(v: Any) -> int | None:
            if v is None:
                return None
            return order_int(field, field.parse(v, None) if isinstance(v, str) else
                             (Decimal(v).quantize(Decimal(1).scaleb(-field.decimals))
                              if field.type == "decimal" else v))

        lo, hi = conv(low), conv(high)
        if (lo is not None and lo > key.high) or (hi is not None and hi < key.low) or \
                (lo is not None and hi is not None and lo > hi):
            return RangeToken(side, col, None, None, empty=True)
        lo_code = None if lo is None or lo <= key.low else key.encrypt(lo, col)
        hi_code = None if hi is None or hi >= key.high else key.encrypt(hi, col)
        return RangeToken(side, col, lo_code, hi_code)

    # open ------------------------------------------------------------------------------------
    def uses_bfv(self, query: Query) -> bool:
        """True if a SUM / AVG of ``query`` reads a column on the packed BFV layer."""
        sides = self._sides(query)
        return any(bfv_column(sides[split_ref(a.column)[0]], split_ref(a.column)[1]) is not None
                   for a in query.aggregates if a.func in ("sum", "avg") and a.column)

    def recompute(self, query: Query, grant: Grant) -> EncryptedResult:
        """The encrypted result of ``query`` computed here, from the content store."""
        if self.fetch is None:
            raise GrantRefused("BFV aggregates are opened only from the key service's own recomputation, and "
                               "this key service has no content store", code="Misconfigured")
        enc, peeled = self.prepare(query, grant)
        return Engine({d: self._manifest(d) for d in enc.datasets.values()}, self.fetch, peeled).run(enc)

    def open(self, query: Query, grant: Grant, result: EncryptedResult,
             min_group: int | None = None) -> Release:
        """Decrypt exactly the aggregates of ``result`` that ``query`` asked for. A result with
        BFV aggregates is recomputed here first and opened only if identical to our own."""
        self.check(query, grant)
        if self.uses_bfv(query):
            own = self.recompute(query, grant)
            if not same_result(own, result):
                raise ResultRejected("the encrypted result is not this query's result over the data "
                                     "(recomputed by the key service)", code="ResultRejected")
            result = own
        return self.open_recomputed(query, grant, result, min_group)

    def open_recomputed(self, query: Query, grant: Grant, result: EncryptedResult,
                        min_group: int | None = None) -> Release:
        """:meth:`open` for a result the caller computed itself from the store (the provider's
        release path recomputes every result before opening it)."""
        self.check(query, grant)
        if result.query_hash != query.hash:
            raise GrantRefused("result is for a different query")
        if result.datasets != self._refs(query):
            raise GrantRefused("result is over other datasets than the query")
        sides = self._sides(query)
        k = max([min_group or 1] + [DatasetPolicy.from_dict(m["policy"]).min_group_size
                                    for m in sides.values()])
        columns = ([query.group_by] if query.group_by else []) + [a.label for a in query.aggregates]
        rows_out, suppressed, total_rows = [], 0, 0
        for g in result.groups:
            if g.rows < k:
                if query.group_by:
                    suppressed += 1
                    continue
                raise GrantRefused(f"aggregate over {g.rows} rows is below the minimum group size {k}")
            sums = {side: self._open_hom(sides[side], c, g.rows) for side, c in g.hom.items()}
            row: list[Any] = []
            if query.group_by:
                side, col = split_ref(query.group_by)
                meta = sides[side]["columns"][col][EQ]
                row.append(self.keyring.det(meta["det"]).decrypt(g.label or b"", meta["domain"]))
            for agg in query.aggregates:
                if agg.func == "count":
                    row.append(g.rows)
                    continue
                side, col = split_ref(agg.column or "")
                bcol = bfv_column(sides[side], col) if agg.func in ("sum", "avg") else None
                if bcol is not None:
                    total = self._open_bfv(sides[side], bcol, g.bfv.get(col), g.rows, agg.label)
                    row.append(total if agg.func == "sum" else Decimal(total) / Decimal(g.rows))
                elif agg.func in ("sum", "avg"):
                    if side not in sums:
                        raise GrantRefused(f"result lacks the HOM aggregate for {agg.column}")
                    total = sums[side][col]
                    row.append(total if agg.func == "sum" else Decimal(total) / Decimal(g.rows))
                else:
                    code = g.codes.get(f"{agg.func}:{agg.column}")
                    if code is None:
                        raise GrantRefused(f"result lacks {agg.label}")
                    m = sides[side]
                    plain = self.keyring.order(m["columns"][col][ORD]["ope"]).decrypt(code)
                    row.append(scaled_value(Schema.from_dict(m["schema"]).field(col), plain))
            rows_out.append(row)
            total_rows += g.rows
        answer = {"columns": columns, "rows": rows_out, "suppressed_groups": suppressed}
        record = {"format": RELEASE_FORMAT, "release_id": secrets.token_hex(16),
                  "grant_id": grant.grant_id, "consumer": grant.consumer,
                  "datasets": sorted(m["dataset_id"] for m in sides.values()),
                  "query_hash": query.hash, "operations": sorted(query.operations()),
                  "plan": result.plan, "groups_released": len(rows_out),
                  "groups_suppressed": suppressed, "rows_aggregated": total_rows,
                  "min_group_size": k, "answer_hash": canonical_hash(answer),
                  "released_at": int(self.clock())}
        return Release(answer, record)

    def _open_bfv(self, manifest: dict, column: BfvColumn, aggregate: bytes | None, rows: int, label: str) -> Any:
        """One BFV column total: reduced, flooded and decrypted by the key (never slot by slot)."""
        if aggregate is None:
            raise GrantRefused(f"result lacks the BFV aggregate for {label}")
        column.check_rows(rows)           # the modulus was sized for at most max_rows rows
        if not aggregate:                  # no rows contributed: nothing to decrypt
            return column.total(0, rows)
        if aggregate.startswith(b"sha256:"):
            raise GrantRefused(f"{label}: a fingerprint, not a ciphertext — only the key service's own "
                               "recomputation is opened", code="ResultRejected")
        key = self.keyring.bfv(manifest["bfv"]["key"])
        return column.total(key.open_total(column.params, aggregate), rows)

    def _open_hom(self, manifest: dict, ciphertext: int, rows: int) -> dict[str, Any]:
        hom = manifest["hom"]
        key = self.keyring.hom(hom["key"])
        layout = PackingLayout.from_dict(hom["layout"])
        layout.check_rows(rows)      # slots cannot have carried: rows <= max_rows
        plain = key.decrypt(ciphertext, bound_bits=layout.bits)
        if plain >> layout.bits:     # impossible for an honest sum: wrong key or forged input
            raise KeyAuthenticationError(hom["key"], "aggregate (bits set beyond the packing layout)")
        sums = layout.decode_sums(plain, rows)
        if layout.has_count and sums[COUNT_SLOT] != rows:
            raise KeyAuthenticationError(hom["key"], f"aggregate (count slot {sums[COUNT_SLOT]} != {rows} rows)")
        return sums
