"""Key rotation with re-encryption (000 §12.2.1.1): the provider opens every layer with the
old keys, re-encrypts under fresh keys (same dataset id, new key ids in the manifest), then
retires — or destroys — the old keys. After destruction nothing under them opens again.

A rotated dataset keeps the cryptography profile its manifest records (``sm``: SM4 keys and
SM3 digests again), whatever ``TDS_CRYPTO_PROFILE`` says: rotation renews keys, it never
migrates a dataset to another profile."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offchain.ingest.classification import Classification
from offchain.ingest.schema import Schema
from offchain.ingest.table import Table
from offchain.onion.bfv import BfvColumn, blocks, context, ct_from_bytes
from offchain.onion.chunks import split_fixed, split_varlen, unpack_object
from offchain.onion.dataset import EncryptedDataset, encrypt_table, manifest_profile, scaled_value
from offchain.onion.det import decode_value
from offchain.onion.keys import Keyring
from offchain.onion.keystore import Keystore
from offchain.onion.packing import PackingLayout
from offchain.onion.policy import BLOB, EQ, HOM, ORD, DatasetPolicy


def manifest_key_ids(manifest: dict) -> set[str]:
    ids = set()
    for meta in manifest["columns"].values():
        for onion_meta in meta.values():
            ids.update(v for k, v in onion_meta.items() if k in ("rnd", "det", "ope", "key"))
    if manifest.get("hom"):
        ids.add(manifest["hom"]["key"])
    return ids


def decrypt_dataset(ds: EncryptedDataset, keyring: Keyring) -> Table:
    """Provider-side: recover the plaintext table from its onions (any wrong or missing key
    raises an authentication / key-not-found error, never returns garbage)."""
    m = ds.manifest
    schema = Schema.from_dict(m["schema"])
    cols: dict[str, list[Any]] = {f.name: [] for f in schema.fields}
    hom_rows: list[dict] = []
    for chunk in m["chunks"]:
        for f in schema.fields:
            meta = m["columns"][f.name]
            onion = next((o for o in (BLOB, EQ, ORD) if o in meta), None)
            if onion is None:
                continue
            header, hbytes, body = unpack_object(ds.get(chunk["objects"][f"{f.name}/{onion}"]))
            plain = keyring.rnd(meta[onion]["rnd"]).open(body, hbytes)
            if onion == BLOB:
                cols[f.name] += [decode_value(v) for v in split_varlen(plain)]
            elif onion == EQ:
                det = keyring.det(meta[EQ]["det"])
                cols[f.name] += [det.decrypt(v, meta[EQ]["domain"]) for v in split_varlen(plain)]
            else:
                ok = keyring.order(meta[ORD]["ope"])
                cols[f.name] += [scaled_value(f, ok.decrypt(c)) for c in split_fixed(plain, meta[ORD]["width"])]
        if m.get("hom") and chunk["rows"]:
            key = keyring.hom(m["hom"]["key"])
            layout = PackingLayout.from_dict(m["hom"]["layout"])
            _, _, body = unpack_object(ds.get(chunk["objects"][f"__hom__/{HOM}"]))
            for c in split_fixed(body, key.public.width):
                hom_rows.append(layout.decode_sums(key.decrypt(key.public.from_bytes(c)), 1))
    bfv = (m.get("bfv") or {}).get("columns", {})
    for f in schema.fields:
        if set(m["columns"][f.name]) == {HOM}:
            cols[f.name] = (_bfv_column_rows(ds, keyring, f.name) if f.name in bfv
                            else [r[f.name] for r in hom_rows])
    return Table(schema, cols, m["name"])


def _bfv_column_rows(ds: EncryptedDataset, keyring: Keyring, column: str) -> list[Any]:
    """Provider-side only (re-encryption): every row of a BFV column, slot by slot. The key
    service's release path never does this; it decrypts only reduced totals (onion/bfvkey.py)."""
    import tenseal.sealapi as seal
    m = ds.manifest
    bc = BfvColumn.from_dict(m["bfv"]["columns"][column])
    key = keyring.bfv(m["bfv"]["key"])
    ctx = context(bc.params)
    decryptor, encoder = seal.Decryptor(ctx, key.secret(bc.params)), seal.BatchEncoder(ctx)
    out: list[Any] = []
    for chunk in m["chunks"]:
        _, _, body = unpack_object(ds.get(chunk["objects"][f"{column}/bfv"]))
        for raw, (start, stop) in zip(split_varlen(bytes(body)), blocks(chunk["rows"], bc.params.slots)):
            plain = seal.Plaintext()
            decryptor.decrypt(ct_from_bytes(bc.params, raw), plain)
            out += [bc.row_value(v) for v in encoder.decode_uint64(plain)[:stop - start]]
    return out


def rotate_dataset(ds: EncryptedDataset, keystore: Keystore, destroy_old: bool = False,
                   processes: int = 1, det_keys: dict | None = None,
                   keep: frozenset[str] = frozenset(),
                   progress: Callable[[str, int], None] | None = None) -> EncryptedDataset:
    """Re-encrypt under fresh keys (saved to ``keystore``) and retire/destroy the old ones, except
    those in ``keep`` (still used by another dataset, e.g. a shared Paillier key).
    Datasets joined through a shared DET key must be rotated together (pass ``det_keys``)."""
    m = ds.manifest
    old = keystore.keyring(include_retired=True)
    table = decrypt_dataset(ds, old)
    ring = Keyring()
    new = encrypt_table(table, DatasetPolicy.from_dict(m["policy"]),
                        Classification(m["classification"]["dataset"], m["classification"]["fields"]),
                        ring, det_keys=det_keys, quality_hash=m.get("quality_report_hash"),
                        chunk_rows=m["chunk_rows"], processes=processes, dataset_id=m["dataset_id"],
                        progress=progress, profile=manifest_profile(m).name)
    new.manifest["rotated_from"] = ds.manifest_hash            # a rotation, not an append ...
    new.manifest["previous_version_hash"] = ds.manifest_hash   # ... in the same hash chain as appended versions
    keystore.add_keyring(ring)
    for key_id in manifest_key_ids(m) - manifest_key_ids(new.manifest) - keep:
        if key_id in keystore.entries:
            keystore.destroy(key_id, save=False) if destroy_old else keystore.retire(key_id, save=False)
    keystore.save()   # one scrypt derivation, not one per key
    return new
