"""The explorer's JSON answers as pydantic models, for the gateway's OpenAPI description (the
search as JSON, the verdicts of an asset, job or batch, an export and a chunked export's manifest)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tds.gateway.models import Verdict


class SearchMatch(BaseModel):
    kind: str = Field(description="asset, grant, job, batch, block, tx, address, workflow/jobs or "
                                  "workflow/collaboration")
    id: str = Field(description="the entity's id, number, hash or address")
    url: str = Field(description="the explorer page of the entity")


class SearchAnswer(BaseModel):
    query: str
    matches: list[SearchMatch] = Field(description="every entity the query names (one for an exact id)")


class VerificationAnswer(BaseModel):
    scope: dict[str, Any] = Field(description='{"kind": "asset" | "job" | "batch", "id": n}')
    indexedBlock: int | None = Field(description="the index block the verdicts were computed at (cached by it)")
    ok: bool = Field(description="no verdict failed (skipped checks do not fail)")
    verdicts: list[Verdict]


class ExportPartInfo(BaseModel):
    number: int = Field(description="1-based part number")
    rows: int = Field(description="rows a part holds at most")
    first_row: int | None = Field(description="1-based position of this part's first row in the whole export")
    last: bool = Field(description="no part follows")
    of: int | None = Field(description="how many parts there are, when known without reading them all")


class ExportBlocks(BaseModel):
    from_: int | None = Field(alias="from", description="block of the part's first row")
    to: int | None = Field(description="block of the part's last row")
    covered_to: int | None = Field(description="the block the export is pinned at: complete up to it")


class ExportVerification(BaseModel):
    ok: bool
    verdicts: list[dict[str, Any]] = Field(description="step, subject, status, detail and refs of each verdict "
                                                       "about the part's rows")


class ExportDocument(BaseModel):
    format: str = Field(description="tds-audit-export/1")
    scope: dict[str, Any] = Field(description='{"kind": "asset", "id"}, {"kind": "participant", "id"} or '
                                              '{"kind": "range", "from", "to"}')
    chainId: int
    generated: str = Field(description="ISO-8601 UTC; not hashed")
    indexedBlock: int | None = Field(description="the block the export is pinned at")
    part: ExportPartInfo
    blocks: ExportBlocks
    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="one per audit entry, the columns above; object and detail as "
                                                   "compact key-sorted JSON text")
    verification: ExportVerification
    hash: str = Field(description="keccak-256 of the document without hash and generated, keys sorted, compact: "
                                  "anchor it with Evidence.anchorHash(hash, keccak256('AUDIT_EXPORT'))")


class ManifestPart(BaseModel):
    number: int
    rows: int
    blocks: ExportBlocks
    hash: str = Field(description="the part's own export hash")
    ok: bool


class ExportManifest(BaseModel):
    format: str = Field(description="tds-audit-export-manifest/1")
    scope: dict[str, Any]
    chainId: int
    indexedBlock: int
    generated: str
    parts: list[ManifestPart]
    rows: int
    verification: dict[str, Any]
    hash: str = Field(description="keccak-256 of the manifest without hash and generated: one hash over every part")
