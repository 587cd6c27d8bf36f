"""The quality gate (000 §10.3.4: a dataset enters mining only once its assessment passes):
a dataset whose quality report scores below the threshold is not registered.

The certificate templates carry no quality threshold on chain, so the threshold is the
registrant's ``--min-quality`` (default ``TDS_MIN_QUALITY``, 0.8). The report is the one whose
hash the manifest (or ``--quality-hash``) names: read from the content store by the
manifest's ``quality_report_cid`` or given as a file, and checked against that hash."""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Callable

from offchain.canonical import canonical_hash
from offchain.sources.errors import QualityBelowThreshold, SourceError


class QualityReportMissing(SourceError):
    """The quality gate needs the report, and none was found."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        super().__init__(f"dataset {dataset}: its quality report is needed to check the quality threshold; pass "
                         f"--quality-report FILE (the canonical report 'tds data ingest --out' writes) or "
                         f"--min-quality 0 to register without the gate")


class QualityReportMismatch(SourceError):
    """The report given is not the one whose hash would be registered."""

    def __init__(self, dataset: str, expected: str, got: str) -> None:
        self.dataset, self.expected, self.got = dataset, expected, got
        super().__init__(f"dataset {dataset}: the quality report hashes to {got}, but {expected} would be "
                         f"registered; give the matching report")


def find_report(manifest: dict, fetch: Callable[[str], bytes]) -> dict | None:
    """The report the manifest points to in the content store, if it names one and it is there."""
    cid = manifest.get("quality_report_cid")
    if not cid:
        return None
    try:
        return json.loads(fetch(cid))
    except Exception:
        return None


def require_quality(dataset: str, report: dict | None, expected_hash: str, threshold: str) -> str:
    """The report's overall score, or raise if it is missing, mismatched or below ``threshold``."""
    try:
        limit = Decimal(threshold)
    except InvalidOperation:
        raise QualityBelowThreshold(dataset, "?", threshold) from None
    if limit <= 0:
        return report["overall"] if report else "unchecked"
    if report is None:
        raise QualityReportMissing(dataset)
    got = canonical_hash(report)
    if got.lower() != expected_hash.lower():
        raise QualityReportMismatch(dataset, expected_hash, got)
    overall = str(report.get("overall", "0"))
    if Decimal(overall) < limit:
        raise QualityBelowThreshold(dataset, overall, threshold)
    return overall
