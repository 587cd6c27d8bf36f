"""Records → typed, cleaned, scored, encrypted and committed versions of one dataset.

:class:`Appender` owns one source's dataset. ``append(records, ...)`` commits one version made
of new chunks (incremental sources); ``snapshot()`` builds a replacement version batch by batch
and commits it once at the end (full syncs). Rows that cannot be stored — not an object, a cell
of the wrong type, a required value missing, a value outside what its encryption layer can
hold — are quarantined with their reason instead of failing the batch. Declared constraints
(minimum, pattern, ...) are *scored* by the quality report, not quarantined."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import fcntl
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from offchain.canonical import canonical_json
from offchain.errors import SchemaViolation, SlotRangeError
from offchain.ingest.classification import classify
from offchain.ingest.cleaning import CleaningEntry, clean, rule_from_dict
from offchain.ingest.quality import QualityReport, assess
from offchain.ingest.schema import Schema, infer_schema
from offchain.ingest.table import Table
from offchain.onion.dataset import encrypt_table, hom_slot, manifest_hash, order_bits, order_int
from offchain.onion.keys import Keyring
from offchain.onion.policy import HOM, ORD, DatasetPolicy, default_policy
from offchain.sources.monitor import SourceMonitor
from offchain.sources.spec import SourceSpec
from offchain.sources.state import Quarantined, SourceState, VersionRecord
from offchain.sources.versions import merge_reports, next_manifest, write_history


class KeyHolder(Protocol):
    """Where the dataset's keys live (an :class:`offchain.onion.keystore.Keystore`)."""

    def keyring(self, include_retired: bool = False) -> Keyring: ...

    def add_keyring(self, ring: Keyring) -> list[str]: ...


@dataclass
class BatchResult:
    """What one committed batch did."""

    rows: int
    quarantined: int
    version: int | None
    manifest_cid: str | None = None
    quality: str | None = None


@dataclass
class _Prepared:
    table: Table
    log: list[CleaningEntry]
    quarantined: list[Quarantined]


@dataclass
class _Snapshot:
    manifest: dict | None = None
    report: QualityReport | None = None
    quarantined: list[Quarantined] = field(default_factory=list)
    rows: int = 0


class Appender:
    """Commits versions of ``spec``'s dataset into ``state`` and the content store."""

    def __init__(self, spec: SourceSpec, state: SourceState, keys: KeyHolder, add_bytes: Callable[[bytes], str],
                 fetch: Callable[[str], bytes], history: Path, monitor: SourceMonitor | None = None,
                 processes: int = 1, as_of: _dt.date | None = None) -> None:
        self.spec, self.state, self.keys, self.add_bytes, self.fetch = spec, state, keys, add_bytes, fetch
        self.history, self.monitor, self.processes, self.as_of = history, monitor, processes, as_of
        self._ring: Keyring | None = None
        self._manifest: dict | None = None
        self._report: dict | None = None
        self._rules = [rule_from_dict(r) for r in spec.clean]

    # committed state -------------------------------------------------------------------------
    def head_manifest(self) -> dict | None:
        """The latest committed manifest (cached; read from the store after a restart)."""
        head = self.state.head(self.spec.name)
        if head.manifest_cid is None:
            return None
        if self._manifest is None or manifest_hash(self._manifest) != head.manifest_hash:
            self._manifest = json.loads(self.fetch(head.manifest_cid))
            cid = self._manifest.get("quality_report_cid")
            self._report = json.loads(self.fetch(cid)) if cid else None
        return self._manifest

    def schema(self, records: Sequence[Any]) -> Schema:
        """The dataset's schema: committed, else declared, else inferred from this batch."""
        head = self.state.head(self.spec.name)
        if head.schema:
            return Schema.from_dict(head.schema)
        if self.spec.schema:
            return Schema.from_dict(self.spec.schema)
        names: dict[str, None] = {}
        for r in records:
            if isinstance(r, dict):
                names.update(dict.fromkeys(r))
        header = list(names)
        rows = [[r.get(h) for h in header] for r in records if isinstance(r, dict)]
        inferred = infer_schema(header, rows, self.spec.name)
        # one batch cannot show that a column is never empty: inferred columns stay nullable
        return Schema(tuple(dataclasses.replace(f, nullable=True) for f in inferred.fields), name=inferred.name)

    def policy(self, schema: Schema) -> DatasetPolicy:
        """The default policy with the source's overrides. HOM stays on per-row Paillier: an
        automatic scheme choice by batch size would change the scheme between versions."""
        policy = default_policy(schema, classify(schema), self.spec.min_group_size, self.spec.onions or None)
        if getattr(policy, "hom_scheme", "paillier") != "paillier":
            policy = dataclasses.replace(policy, hom_scheme="paillier")
        return policy

    # one batch -------------------------------------------------------------------------------
    def prepare(self, records: Sequence[Any], origins: Sequence[str]) -> _Prepared:
        """Type, clean and check records; what cannot be stored is quarantined."""
        schema = self.schema(records)
        policy = self.policy(schema)
        fields = schema.fields
        strict: dict[str, Callable[[Any], None]] = {}
        for f in fields:
            onions = policy.onions(f.name)
            if HOM in onions:
                slot = hom_slot(f)
                strict[f.name] = lambda v, s=slot, ff=f: s.to_int(v)
            elif ORD in onions:
                bits = order_bits(f)
                lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

                def check(v: Any, ff: Any = f, lo: int = lo, hi: int = hi) -> None:
                    x = order_int(ff, v)
                    if not lo <= x <= hi:
                        raise SlotRangeError(ff.name, None, v, lo, hi)
                strict[f.name] = check
        cols: dict[str, list] = {f.name: [] for f in fields}
        kept: list[str] = []
        quarantined: list[Quarantined] = []
        for record, origin in zip(records, origins):
            reason = None
            if not isinstance(record, dict):
                reason = f"not a JSON object: {type(record).__name__}"
            else:
                try:
                    values = [f.parse(record.get(f.name), None) for f in fields]
                except SchemaViolation as exc:
                    reason = str(exc)
                else:
                    for f, v in zip(fields, values):
                        if v is None:
                            if not f.nullable:
                                reason = f"column {f.name!r}: required value missing"
                            elif f.name in strict and not self._fills(f.name):
                                reason = f"column {f.name!r}: empty, and its order/HOM layer cannot hold empty cells"
                        elif f.name in strict:
                            try:
                                strict[f.name](v)
                            except SlotRangeError as exc:
                                reason = str(exc)
                        if reason:
                            break
            if reason:
                quarantined.append(Quarantined(origin, record, reason))
                continue
            for f, v in zip(fields, values):
                cols[f.name].append(v)
            kept.append(origin)
        table = Table(schema, cols, self.spec.name, list(range(1, len(kept) + 1)))
        table, log = clean(table, self._rules)
        return _Prepared(table, log, quarantined)

    def _fills(self, column: str) -> bool:
        return any(getattr(r, "column", None) == column and type(r).__name__ == "FillMissing" for r in self._rules)

    def _keyring(self, base: dict | None) -> Keyring:
        """The keys, re-read from the keystore file when ``base`` names keys not yet seen here
        (another process — a crashed consumer, say — created the dataset)."""
        if self._ring is None or (base is not None and not _key_ids(base) <= set(self._ring.keys)):
            if hasattr(self.keys, "reload"):
                self.keys.reload()
            self._ring = self.keys.keyring()
        return self._ring

    def _save_keys(self, new: Keyring) -> None:
        """Persist new keys, merging with what other processes saved (under a file lock)."""
        lock_path = getattr(self.keys, "path", None)
        if lock_path is None:
            self.keys.add_keyring(new)
            return
        with open(Path(str(lock_path) + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if hasattr(self.keys, "reload"):
                    self.keys.reload()
                self.keys.add_keyring(new)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _encrypt(self, prep: _Prepared, base: dict | None) -> tuple[dict, QualityReport]:
        ring = self._keyring(base)
        before = set(ring.keys)
        schema = prep.table.schema
        classification = classify(schema)
        ds = encrypt_table(prep.table, self.policy(schema), classification, ring, previous=base,
                           processes=self.processes)
        new = Keyring({k: v for k, v in ring.keys.items() if k not in before})
        if new.keys:
            self._save_keys(new)   # keys are saved before anything refers to them
        for cid, blob in ds.objects.items():
            if self.add_bytes(blob) != cid:
                raise RuntimeError(f"content store returned another CID for object {cid}")
        return ds.manifest, assess(prep.table, prep.log, self.as_of)

    def _commit(self, manifest_part: dict, report: QualityReport, *, replace: bool, quarantined: list[Quarantined],
                rows: int, watermark: Any, keys: Sequence[str], started: float) -> BatchResult:
        previous = self.head_manifest()
        head = self.state.head(self.spec.name)
        merged = report if replace else merge_reports(self._report, report)
        report_cid = self.add_bytes(merged.canonical())
        version = head.version + 1
        manifest = next_manifest(previous, manifest_part, version=version, source=self.spec.name,
                                 quality_hash=merged.hash, quality_cid=report_cid, replace=replace)
        manifest_cid = self.add_bytes(canonical_json(manifest))
        record = VersionRecord(self.spec.name, version, manifest_cid, manifest_hash(manifest),
                               manifest["previous_version_hash"], rows, manifest["row_count"], merged.hash,
                               merged.overall, watermark, time.time())
        self.state.commit(self.spec.name, version=record, dataset_id=manifest["dataset_id"],
                          schema=Schema.from_dict(manifest["schema"]).to_dict(), watermark=watermark, keys=keys,
                          quarantined=quarantined)
        self._manifest, self._report = manifest, merged.to_dict()
        write_history(self.history, self.state.versions(self.spec.name))
        if self.monitor:
            self.monitor.committed(self.spec.name, rows=rows, quarantined=quarantined, overall=report.overall,
                                   lag_s=time.time() - started, version=version)
        return BatchResult(rows, len(quarantined), version, manifest_cid, merged.overall)

    def _commit_empty(self, quarantined: list[Quarantined], watermark: Any, keys: Sequence[str],
                      started: float) -> BatchResult:
        self.state.commit(self.spec.name, version=None, dataset_id=None, schema=None, watermark=watermark,
                          keys=keys, quarantined=quarantined)
        if self.monitor:
            self.monitor.committed(self.spec.name, rows=0, quarantined=quarantined, overall=None,
                                   lag_s=time.time() - started, version=None)
        return BatchResult(0, len(quarantined), None)

    def append(self, records: Sequence[Any], origins: Sequence[str], *, watermark: Any = None,
               keys: Sequence[str] = (), started: float | None = None,
               quarantined: Sequence[Quarantined] = ()) -> BatchResult:
        """Commit ``records`` as the next version, with the source position they advance to
        (``watermark`` and/or consumed message ``keys``) in the same transaction; ``quarantined``
        adds rows the connector already set aside (e.g. malformed JSON)."""
        started = started if started is not None else time.time()
        prep = self.prepare(records, origins)
        prep.quarantined[:0] = list(quarantined)
        if prep.table.num_rows == 0:
            return self._commit_empty(prep.quarantined, watermark, keys, started)
        part, report = self._encrypt(prep, self.head_manifest())
        return self._commit(part, report, replace=False, quarantined=prep.quarantined, rows=prep.table.num_rows,
                            watermark=watermark, keys=keys, started=started)

    def snapshot(self) -> "SnapshotBuilder":
        """A replacement version built batch by batch (full sync); committed by ``finish``."""
        return SnapshotBuilder(self)


def _key_ids(manifest: dict) -> set[str]:
    ids = {v for meta in manifest["columns"].values() for layer in meta.values()
           for k, v in layer.items() if k in ("rnd", "det", "ope", "key")}
    if manifest.get("hom"):
        ids.add(manifest["hom"]["key"])
    return ids


class SnapshotBuilder:
    """Encrypts and stores each batch at once (memory stays bounded); nothing is committed
    until :meth:`finish` — a crash before it leaves the previous version in place."""

    def __init__(self, appender: Appender) -> None:
        self.a, self.s, self.started = appender, _Snapshot(), time.time()
        head = appender.head_manifest()
        self._base = dict(head, chunks=[], row_count=0) if head else None

    def add(self, records: Sequence[Any], origins: Sequence[str]) -> int:
        prep = self.a.prepare(records, origins)
        self.s.quarantined += prep.quarantined
        if prep.table.num_rows == 0:
            return 0
        part, report = self.a._encrypt(prep, self.s.manifest or self._base)
        self.s.manifest = part if self.s.manifest is None else next_manifest(
            self.s.manifest, part, version=0, source=self.a.spec.name, quality_hash=None, quality_cid=None)
        self.s.report = report if self.s.report is None else merge_reports(self.s.report.to_dict(), report)
        self.s.rows += prep.table.num_rows
        return prep.table.num_rows

    def finish(self, watermark: Any = None) -> BatchResult:
        if self.s.manifest is None or self.s.report is None:
            return self.a._commit_empty(self.s.quarantined, watermark, (), self.started)
        return self.a._commit(self.s.manifest, self.s.report, replace=True, quarantined=self.s.quarantined,
                              rows=self.s.rows, watermark=watermark, keys=(), started=self.started)
