"""Encrypt a typed table into an encrypted dataset: a manifest plus columnar chunk objects.

Manifest (canonical JSON, ``tds-dataset/1``): schema, classification, policy, per-column
onions with key ids, the Paillier public key and packing layout, row count, chunk CIDs, the
quality-report hash. Objects are addressed by their Kubo CIDv0, so publishing them to any
store (embedded or Kubo) yields the CIDs already in the manifest.

HOM onion: one Paillier ciphertext per row packing all HOM fields plus a count slot, so one
product of selected rows yields SUM of every HOM field and COUNT at once. For every column
with an order onion an *order index* per chunk is also written (rows sorted by order code with
prefix products of the HOM ciphertexts), sealed under that column's order-onion RND key: once
the order layer is peeled — which already reveals that order — a range SUM costs two binary
searches and one division per chunk instead of a product over the selected rows.

Packed HOM onion (``manifest["bfv"]``, :mod:`offchain.onion.bfv`): the policy puts a HOM column
on BFV from ``BFV_MIN_ROWS`` rows up when its declared range cannot wrap; one object per chunk
and column (``<column>/bfv``) holds that chunk's rows in blocks of N = 8192 slots (seeded
symmetric ciphertexts, length-prefixed). Columns stay on Paillier otherwise; a manifest
without ``bfv`` (every older one) is all-Paillier.

Cryptography profile (docs/crypto-profile.md): a dataset made under ``sm`` records
``"crypto_profile": "sm"`` (RND = SM4-GCM, DET = SM4-SIV, each chunk's SM3 digest beside its CID,
the manifest hash is SM3); without the field a manifest is ``default`` (and keeps its bytes).
Appending, peeling or querying under another profile, or with keys of another, raises
:class:`~chain.crypto_profile.CryptoProfileMismatch`."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Sequence

from gmpy2 import mpz

from chain.crypto_profile import DEFAULT, SM, Profile, configured_profile, get_profile, require_profile
from chain.sm import sm3
from offchain.canonical import canonical_json
from offchain.errors import (BfvLayoutCouldWrap, DatasetFormatError, PackingOverflow, SchemaViolation,
                             SlotRangeError)
from offchain.ingest.classification import Classification
from offchain.ingest.schema import Field, Schema
from offchain.ingest.table import Table
from offchain.onion import keys as K
from offchain.onion.bfv import BfvColumn
from offchain.onion.bfvkey import BfvSecretKey
from offchain.onion.chunks import ChunkHeader, join_varlen, pack_object
from offchain.onion.det import encode_value
from offchain.onion.keys import Keyring
from offchain.onion.packing import PackingLayout, Slot
from offchain.onion.paillier import PaillierPrivateKey
from offchain.onion.parallel import order_encrypt_all, paillier_encrypt_all
from offchain.onion.policy import BFV, BLOB, EQ, HOM, ORD, DatasetPolicy
from offchain.store.unixfs import file_cid

FORMAT = "tds-dataset/1"
DEFAULT_CHUNK_ROWS = 65536
DEFAULT_HOM_BITS = 40   # default slot range when a HOM field declares no min/max: |v| < 2^39


def order_int(f: Field, value: Any) -> int:
    """The integer the order layer and HOM slots see: scaled decimals, day ordinals for dates."""
    if f.type == "date":
        return value.toordinal()
    if f.type == "decimal":
        return int(value.scaleb(f.decimals))
    return value


def _declared_range(f: Field) -> tuple[int, int] | None:
    if f.minimum is None or f.maximum is None:
        return None
    return order_int(f, f.minimum), order_int(f, f.maximum)


def order_bits(f: Field) -> int:
    rng = _declared_range(f)
    if rng is None:
        return 48
    need = max(abs(rng[0]), abs(rng[1]) + 1).bit_length() + 1
    return max(16, min(120, (need + 7) // 8 * 8))


def hom_slot(f: Field) -> Slot:
    rng = _declared_range(f)
    lo, hi = rng if rng else (-(1 << (DEFAULT_HOM_BITS - 1)), (1 << (DEFAULT_HOM_BITS - 1)) - 1)
    return Slot(f.name, lo, hi, f.decimals if f.type == "decimal" else 0)


@dataclass
class EncryptedDataset:
    manifest: dict
    objects: dict[str, bytes] = field(default_factory=dict)

    @property
    def manifest_bytes(self) -> bytes:
        return canonical_json(self.manifest)

    @property
    def manifest_hash(self) -> str:
        return manifest_hash(self.manifest)

    @property
    def manifest_cid(self) -> str:
        return file_cid(self.manifest_bytes)

    @property
    def dataset_id(self) -> str:
        return self.manifest["dataset_id"]

    def get(self, cid: str) -> bytes:
        try:
            return self.objects[cid]
        except KeyError:
            raise DatasetFormatError(f"object {cid} is not part of this dataset") from None

    def publish(self, add_bytes: Callable[[bytes], str]) -> str:
        """Store every object and the manifest (``add_bytes`` returns a CIDv0); returns the
        manifest CID. A store answering other CIDs than the manifest lists is refused."""
        for cid, blob in self.objects.items():
            got = add_bytes(blob)
            if got != cid:
                raise DatasetFormatError(f"store returned {got} for object {cid}")
        return add_bytes(self.manifest_bytes)


def manifest_profile(manifest: dict) -> Profile:
    """The profile a manifest was made under (no ``crypto_profile`` field: ``default``)."""
    return get_profile(manifest.get("crypto_profile"))


def manifest_hash(manifest: dict) -> str:
    """``0x`` + the manifest profile's hash (SHA-256, or SM3 under ``sm``) of its canonical JSON —
    what the asset certificate records as ``manifestHash``."""
    return "0x" + manifest_profile(manifest).digest(canonical_json(manifest)).hex()


def check_profile(manifest: dict, expected: str | None = None) -> str:
    """The manifest's profile name, after refusing one that is not ``expected`` (default: the
    profile in force) with :class:`~chain.crypto_profile.CryptoProfileMismatch`."""
    want = expected if expected is not None else configured_profile().name
    found = manifest_profile(manifest).name
    require_profile(want, found, f"dataset {manifest.get('dataset_id', '?')}")
    return found


def check_object_digest(manifest: dict, chunk: dict, ref: str, obj: bytes) -> None:
    """Under ``sm`` every chunk lists each object's SM3 digest; refuse an object that differs."""
    want = (chunk.get("sm3") or {}).get(ref)
    if want is not None and sm3(bytes(obj)).hex() != want:
        raise DatasetFormatError(f"object {ref} of chunk {chunk.get('index')} of dataset "
                                 f"{manifest.get('dataset_id')} does not match its SM3 digest")


JOIN_HEADROOM_ROWS = 1 << 32


def hom_layout(slots: list[Slot], rows: int, plaintext_bits: int) -> PackingLayout:
    """Slots wide enough for 2^32 summed rows when the key allows it: a JOIN repeats a row once
    per matching partner row, so sums can cover more rows than the table has. Falls back to the
    table's own row count (still overflow-checked at aggregation time) for tight layouts."""
    try:
        return PackingLayout.create(slots, max(JOIN_HEADROOM_ROWS, 1 << max(1, rows).bit_length()), plaintext_bits)
    except PackingOverflow:
        return PackingLayout.create(slots, 1 << max(1, rows).bit_length(), plaintext_bits)


def _bfv_columns(hom_fields: list[Field], policy: DatasetPolicy, rows: int) -> dict[str, BfvColumn]:
    """The HOM columns the policy puts on the packed BFV layer, sized so no sum can wrap."""
    out = {}
    for f in hom_fields:
        slot = hom_slot(f)
        try:
            column: BfvColumn | None = BfvColumn.create(slot, rows)
        except BfvLayoutCouldWrap:
            if policy.hom_scheme == BFV:
                raise                      # asked for BFV explicitly: refuse, never wrap
            column = None
        if policy.hom_scheme_for(rows, column is not None) == BFV and column is not None:
            out[f.name] = column
    return out


def _check_present(table: Table, column: str, onion: str) -> None:
    for value, line in zip(table.columns[column], table.lines):
        if value is None:
            raise SchemaViolation("required", column, line, None,
                                  f"the {onion} onion cannot hold empty cells; fill missing first")


def encrypt_table(table: Table, policy: DatasetPolicy, classification: Classification,
                  keyring: Keyring, *, hom_key: PaillierPrivateKey | None = None,
                  bfv_key: BfvSecretKey | None = None, det_keys: dict[str, K.DetKey] | None = None, quality_hash: str | None = None,
                  chunk_rows: int = DEFAULT_CHUNK_ROWS, processes: int = 1,
                  dataset_id: str | None = None, progress: Callable[[str, int], None] | None = None,
                  order_index: bool = True, previous: dict | None = None,
                  expected_rows: int | None = None, profile: str | None = None) -> EncryptedDataset:
    """Onion-encrypt ``table``. New keys go into ``keyring``; pass ``hom_key`` / ``bfv_key`` /
    ``det_keys`` (by join domain) to reuse keys across datasets (joins need a shared DET key).

    ``previous`` (a manifest of the same schema and policy) makes this an *append*: every layer
    reuses that manifest's keys (which ``keyring`` must hold) and packing layout, the dataset id
    is kept and chunk indices continue after its chunks. ``expected_rows`` sizes the BFV layer
    for a table that appends will grow to (its sums are refused past that many rows). The returned manifest covers the new
    rows only; :mod:`offchain.sources.versions` merges it into the next version.

    ``profile`` (default: ``TDS_CRYPTO_PROFILE``) picks the RND and DET primitives; an append
    must be of the previous manifest's profile, and reused keys of the same."""
    schema, n = table.schema, table.num_rows
    crypto = get_profile(profile) if profile is not None else configured_profile()
    if previous is not None:
        check_profile(previous, crypto.name)
        dataset_id = previous["dataset_id"]
        hom_key = keyring.hom(previous["hom"]["key"]) if previous.get("hom") else hom_key
    dataset_id = dataset_id or secrets.token_hex(16)
    old: dict[str, dict] = previous["columns"] if previous is not None else {}
    first_chunk = len(previous["chunks"]) if previous is not None else 0
    det_keys = det_keys if det_keys is not None else {}
    tick = progress or (lambda stage, k: None)
    columns_meta: dict[str, dict] = {}
    inner: dict[tuple[str, str], list[bytes]] = {}
    rnd_keys: dict[tuple[str, str], K.RndKey] = {}
    order_codes: dict[str, list[bytes]] = {}

    for f in schema.fields:
        onions, meta = policy.onions(f.name), {}
        col = table.columns[f.name]
        for onion in onions:
            if onion == HOM:
                continue
            prior = old.get(f.name, {}).get(onion)
            rnd = keyring.rnd(prior["rnd"]) if prior else K.new_rnd(crypto.name)
            require_profile(crypto.name, rnd.profile, f"RND key {rnd.key_id}")
            keyring.add(rnd)
            rnd_keys[(f.name, onion)] = rnd
            if onion == EQ:
                domain = policy.fields[f.name].domain
                det = keyring.det(prior["det"]) if prior else det_keys.get(domain) or K.new_det(crypto.name)
                require_profile(crypto.name, det.profile, f"DET key {det.key_id} of domain {domain!r}")
                det_keys[domain] = det
                keyring.add(det)
                inner[(f.name, EQ)] = det.encrypt_many(col, domain)
                meta[EQ] = {"rnd": rnd.key_id, "det": det.key_id, "domain": domain}
            elif onion == ORD:
                _check_present(table, f.name, ORD)
                ok = keyring.order(prior["ope"]) if prior else K.new_order(order_bits(f))
                keyring.add(ok)
                ints = [order_int(f, v) for v in col]
                for i, v in enumerate(ints):
                    if not ok.low <= v <= ok.high:
                        raise SlotRangeError(f.name, table.lines[i], col[i], ok.low, ok.high)
                codes = order_encrypt_all(ok, ints, f.name, processes)
                inner[(f.name, ORD)] = codes
                order_codes[f.name] = codes
                meta[ORD] = {"rnd": rnd.key_id, "ope": ok.key_id, "width": ok.width}
            elif onion == BLOB:
                inner[(f.name, BLOB)] = [encode_value(v) for v in col]
                meta[BLOB] = {"rnd": rnd.key_id}
        columns_meta[f.name] = meta
        tick("column", 1)

    hom_fields = [f for f in schema.fields if HOM in policy.onions(f.name)]
    if previous is not None:   # an append keeps the layers' layouts (sums past max_rows are refused)
        bfv_cols = {c: BfvColumn.from_dict(d) for c, d in (previous.get("bfv") or {}).get("columns", {}).items()}
        bfv_key = keyring.bfv(previous["bfv"]["key"]) if bfv_cols else bfv_key
    else:
        bfv_cols = _bfv_columns(hom_fields, policy, max(n, expected_rows or 0))   # appends to come
    hom_fields = [f for f in hom_fields if f.name not in bfv_cols]
    bfv_meta: dict | None = None
    bfv_values: dict[str, Any] = {}
    if bfv_cols:
        bk = bfv_key or K.new_bfv()
        keyring.add(bk)
        for name, bc in bfv_cols.items():
            _check_present(table, name, HOM)
            bfv_values[name] = bc.encode_column(table.columns[name], table.lines)
            columns_meta[name][HOM] = {"key": bk.key_id, "scheme": BFV}
        bfv_meta = {"key": bk.key_id, "slots": next(iter(bfv_cols.values())).params.slots,
                    "columns": {name: bc.to_dict() for name, bc in sorted(bfv_cols.items())}}
    hom_meta: dict | None = None
    hom_cts: list[bytes] = []
    if hom_fields:
        sk = hom_key or K.new_hom()
        keyring.add(sk)
        layout = (PackingLayout.from_dict(previous["hom"]["layout"]) if previous is not None
                  else hom_layout([hom_slot(f) for f in hom_fields], n, sk.public.bits - 1))
        for f in hom_fields:
            _check_present(table, f.name, HOM)
        plains = [layout.encode([table.columns[f.name][i] for f in hom_fields], table.lines[i])
                  for i in range(n)]
        cts = paillier_encrypt_all(sk, plains, processes, lambda k: tick("hom", k))
        hom_cts = [sk.public.to_bytes(c) for c in cts]
        hom_meta = {"key": sk.key_id, "public": sk.public.to_dict(), "layout": layout.to_dict(),
                    "columns": [f.name for f in hom_fields], "width": sk.public.width}
        for f in hom_fields:
            columns_meta[f.name][HOM] = {"key": sk.key_id}

    objects: dict[str, bytes] = {}
    chunks = []
    for index, start in enumerate(range(0, max(n, 1), chunk_rows), first_chunk):
        stop = min(n, start + chunk_rows)
        rows = stop - start
        refs: dict[str, str] = {}
        digests: dict[str, str] = {}

        def put(column: str, onion: str, body: bytes, keys: dict, sealed_by: K.RndKey | None) -> None:
            header = ChunkHeader(dataset_id, column, onion, index, rows, keys)
            payload = sealed_by.seal(body, header.encode()) if sealed_by else body
            obj = pack_object(header, payload)
            cid = file_cid(obj)
            objects[cid] = obj
            refs[f"{column}/{onion}"] = cid
            if crypto.name == SM:
                digests[f"{column}/{onion}"] = sm3(obj).hex()

        for (column, onion), values in inner.items():
            part = values[start:stop]
            body = b"".join(part) if onion == ORD else join_varlen(part)
            put(column, onion, body, columns_meta[column][onion], rnd_keys[(column, onion)])
        if bfv_meta:     # blocks of N slots restart at every chunk: chunk i, block j = its rows j·N …
            for name, values in bfv_values.items():
                cts = bk.encrypt_blocks(bfv_cols[name].params, values[start:stop])
                put(name, BFV, join_varlen(cts), {"key": bfv_meta["key"]}, None)
                tick("hom", rows)
        if hom_meta:
            put("__hom__", HOM, b"".join(hom_cts[start:stop]), {"key": hom_meta["key"]}, None)
            if order_index:
                pub = keyring.hom(hom_meta["key"]).public
                for column, codes in order_codes.items():
                    body = build_order_index(codes[start:stop], hom_cts[start:stop], pub)
                    put(column, "ord_index", body, {**columns_meta[column][ORD], "hom": hom_meta["key"],
                                                    "checkpoint": INDEX_CHECKPOINT}, rnd_keys[(column, ORD)])
        chunks.append({"index": index, "rows": rows, "objects": dict(sorted(refs.items())),
                       **({"sm3": dict(sorted(digests.items()))} if digests else {})})
        tick("chunk", 1)

    manifest = {
        "format": FORMAT, "dataset_id": dataset_id, "name": schema.name,
        "schema": schema.to_dict(), "classification": classification.to_dict(),
        "policy": policy.to_dict(), "row_count": n, "chunk_rows": chunk_rows,
        "columns": columns_meta, "hom": hom_meta, "chunks": chunks,
        **({"bfv": bfv_meta} if bfv_meta else {}),
        "quality_report_hash": quality_hash,
        **({"crypto_profile": crypto.name} if crypto.name != DEFAULT else {}),
    }
    return EncryptedDataset(manifest, objects)


INDEX_CHECKPOINT = 64


def build_order_index(codes: Sequence[bytes], hom_cts: Sequence[bytes], pub: Any,
                      every: int = INDEX_CHECKPOINT) -> bytes:
    """Rows of one chunk sorted by order code. Body = sorted codes | each sorted row's
    position in the chunk (u32) | checkpoints ``P[0], P[every], P[2·every] ...`` of the
    prefix products ``P[j] = c_(0) ··· c_(j-1)`` over the sorted rows' HOM ciphertexts, so a
    contiguous sorted run [a, b) sums as ``P[b] / P[a]`` with at most ``2·every`` extra
    multiplications. The whole body is sealed under the order onion's RND key: it reveals the
    order, exactly what peeling that onion reveals anyway."""
    order = sorted(range(len(codes)), key=codes.__getitem__)
    n2, acc = pub.n2, mpz(1)
    checkpoints = [pub.to_bytes(acc)]
    for j, i in enumerate(order, 1):
        acc = acc * pub.from_bytes(hom_cts[i]) % n2
        if j % every == 0:
            checkpoints.append(pub.to_bytes(acc))
    return (b"".join(codes[i] for i in order) + b"".join(i.to_bytes(4, "big") for i in order)
            + b"".join(checkpoints))


def scaled_value(f: Field, value: int) -> int | Decimal:
    """Inverse of :func:`order_int` for integers/decimals (dates come back as ordinals)."""
    import datetime as _dt
    if f.type == "decimal":
        return Decimal(value).scaleb(-f.decimals)
    if f.type == "date":
        return _dt.date.fromordinal(value)  # type: ignore[return-value]
    return value


def schema_of(manifest: dict) -> Schema:
    return Schema.from_dict(manifest["schema"])
