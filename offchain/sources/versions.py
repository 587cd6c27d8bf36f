"""Versions of a growing dataset: each committed batch adds chunks under a new manifest.

A version's manifest is the previous one plus the new chunks (same dataset id, keys, schema
and policy), with ``version`` and ``previous_version_hash`` (the canonical hash of the manifest
it extends): the versions form a hash chain, so anchoring any version's hash also fixes every
earlier one. The cumulative quality report sums each dimension's checked/failed counts over
all batches (uniqueness is checked within a batch; across batches de-duplication is the
source's job: watermark or message keys). The version history file (JSON lines) mirrors the
state file's ``versions`` table; a key service loads ``<id>`` (latest) and ``<id>@v<n>``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

from offchain.ingest.classification import Classification
from offchain.ingest.cleaning import CleaningEntry
from offchain.ingest.quality import Dimension, QualityReport
from offchain.onion.dataset import manifest_hash
from offchain.query.plan import VERSION_SEP
from offchain.sources.errors import SchemaChanged
from offchain.sources.state import VersionRecord

MAX_CLEANING_ENTRIES = 1000   # the cumulative report keeps the newest entries (each batch's own report has all)


def next_manifest(previous: dict | None, part: dict, *, version: int, source: str,
                  quality_hash: str | None, quality_cid: str | None, replace: bool = False) -> dict:
    """The manifest of ``version``: ``previous``'s chunks (unless ``replace``) + ``part``'s."""
    if previous is not None:
        for key in ("schema", "policy", "dataset_id"):
            if previous[key] != part[key]:
                raise SchemaChanged(source, key)
    keep = [] if (previous is None or replace) else previous["chunks"]
    rows = (0 if (previous is None or replace) else previous["row_count"]) + part["row_count"]
    out = dict(part)
    out.update(chunks=keep + part["chunks"], row_count=rows, version=version,
               previous_version_hash=manifest_hash(previous) if previous is not None else None,
               quality_report_hash=quality_hash, quality_report_cid=quality_cid, source=source)
    return out


def merge_reports(previous: dict | None, batch: QualityReport) -> QualityReport:
    """Cumulative report: ``previous`` (a report dict, or None) plus one batch's report."""
    if previous is None:
        return batch
    dims: dict[str, Dimension] = {}
    for name, d in batch.dimensions.items():
        p = previous["dimensions"].get(name, {"checked": 0, "failed": 0, "failures": {}})
        failures = dict(p.get("failures", {}))
        for k, v in d.failures.items():
            failures[k] = failures.get(k, 0) + v
        dims[name] = Dimension(name, p["checked"] + d.checked, p["failed"] + d.failed, failures, d.note)
    cleaning = [CleaningEntry(e["rule"], e["column"], tuple(e["rows"]), e.get("detail", ""))
                for e in previous.get("cleaning", [])] + list(batch.cleaning)
    return QualityReport(batch.dataset, batch.source, previous["rows"] + batch.rows, batch.columns, dims,
                         cleaning[-MAX_CLEANING_ENTRIES:],
                         Classification(batch.classification.dataset, batch.classification.fields), batch.as_of)


def write_history(path: Path, records: Iterable[VersionRecord]) -> None:
    """Rewrite the version history file (JSON lines, one version each) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.to_dict(), sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_history(path: Path) -> list[dict]:
    """The version history file's records, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def versioned_manifests(history: list[dict], fetch: Callable[[str], bytes]) -> dict[str, dict]:
    """``{<id>: latest, <id>@v<n>: version n}`` for a key service, each manifest fetched by its
    CID and kept only if its canonical hash is the one the history recorded."""
    out: dict[str, dict] = {}
    for rec in history:
        manifest = json.loads(fetch(rec["manifest_cid"]))
        if manifest_hash(manifest) != rec["manifest_hash"]:
            raise SchemaChanged(rec.get("name", "?"), f"manifest of version {rec['version']} (hash mismatch)")
        out[f"{manifest['dataset_id']}{VERSION_SEP}{rec['version']}"] = manifest
        out[manifest["dataset_id"]] = manifest
    return out


def known_manifests(home: Path, sources_dir: Path) -> dict[str, str]:
    """manifest hash → manifest CID from this home's records (source histories, the dataset index)."""
    out: dict[str, str] = {}
    for path in sorted((sources_dir / "versions").glob("*.jsonl")):
        for rec in read_history(path):
            out.setdefault(rec["manifest_hash"].lower(), rec["manifest_cid"])
    index = home / "keys" / "datasets.json"
    if index.exists():
        try:
            doc = json.loads(index.read_text())
        except ValueError:
            doc = {}
        for versions in doc.get("datasets", {}).values():
            for v in versions:
                out.setdefault(v["hash"].lower(), v["cid"])
    return out
