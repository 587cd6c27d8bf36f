"""Exports for regulators: the trail of an asset, a participant or a time range as JSON, CSV and a
printable HTML report, each with the verification verdicts, the block range covered and a hash
(keccak-256 of the canonical JSON of the export) that can be anchored in Evidence."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from eth_utils import keccak

from tds.gateway.explorer import html as h

COLUMNS = ["id", "block", "time", "time_iso", "tx", "contract", "event", "action", "actor", "actor_did",
           "object", "result", "error_code", "detail"]
ANCHOR_KIND = "AUDIT_EXPORT"


def _cell(value: Any) -> Any:
    """A flat, JSON- and CSV-representable value: nested values as compact, key-sorted JSON text."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return value


def rows_of(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """Trail entries (``audit.trail.TrailEntry`` or their dicts) as flat rows with :data:`COLUMNS`."""
    out = []
    for e in entries:
        d = e.to_dict() if hasattr(e, "to_dict") else dict(e)
        out.append({c: _cell(d.get(c)) for c in COLUMNS})
    return out


UNHASHED = ("hash", "generated")  # the same trail at the same indexed block hashes the same, whenever exported


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes the export hash is taken over: the document without ``hash`` and ``generated``,
    key-sorted, compact."""
    body = {k: v for k, v in doc.items() if k not in UNHASHED}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def build(scope: dict[str, Any], entries: Iterable[Any], verdicts: list[dict[str, Any]], *, chain_id: int,
          indexed_block: int | None, part: dict[str, Any] | None = None) -> dict[str, Any]:
    """The export document: scope, part, rows, verdicts (and overall verdict), blocks covered, its hash.
    ``indexed_block`` is the block the export is pinned at (complete to)."""
    rows = rows_of(entries)
    blocks = [r["block"] for r in rows]
    doc = {"format": "tds-audit-export/1", "scope": scope, "chainId": chain_id,
           "generated": datetime.now(tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
           "indexedBlock": indexed_block,
           "part": part or {"number": 1, "rows": len(rows), "first_row": 1 if rows else None, "last": True, "of": 1},
           "blocks": {"from": min(blocks) if blocks else None, "to": max(blocks) if blocks else None,
                      "covered_to": indexed_block},
           "columns": COLUMNS, "rows": rows,
           "verification": {"ok": all(v["ok"] for v in verdicts), "verdicts": [
               {k: v.get(k) for k in ("step", "subject", "status", "detail", "refs")} for v in verdicts]}}
    doc["hash"] = "0x" + keccak(canonical(doc)).hex()
    return doc


def manifest(scope: dict[str, Any], parts: list[dict[str, Any]], *, chain_id: int, at: int) -> dict[str, Any]:
    """The manifest of a chunked export: each part's number, rows, blocks and hash, in order; its own
    hash (over the same canonical form) fixes the whole export: anchor it to anchor every part."""
    doc = {"format": "tds-audit-export-manifest/1", "scope": scope, "chainId": chain_id, "indexedBlock": at,
           "generated": datetime.now(tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
           "parts": [{"number": p["part"]["number"], "rows": len(p["rows"]), "blocks": p["blocks"],
                      "hash": p["hash"], "ok": p["verification"]["ok"]} for p in parts],
           "rows": sum(len(p["rows"]) for p in parts),
           "verification": {"ok": all(p["verification"]["ok"] for p in parts)}}
    doc["hash"] = "0x" + keccak(canonical(doc)).hex()
    return doc


def to_json(doc: dict[str, Any]) -> str:
    """The export as indented JSON."""
    return json.dumps(doc, indent=1, default=str)


def to_csv(doc: dict[str, Any]) -> str:
    """The rows as CSV (header: :data:`COLUMNS`); the verdicts and hash stay in the JSON and the report."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in doc["rows"]:
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def title_of(scope: dict[str, Any]) -> str:
    """The report's title for a scope."""
    kind = scope.get("kind")
    if kind == "asset":
        return f"Audit trail of asset {scope['id']}"
    if kind == "participant":
        return f"Audit trail of participant {scope['id']}"
    return f"Audit log from {scope.get('from') or 'the start'} to {scope.get('to') or 'the indexed block'}"


def to_report(doc: dict[str, Any], nav: Any = "") -> str:
    """A printable HTML report (no script needed; prints to a clean PDF on A4 portrait); ``nav``
    links the other parts of a chunked export."""
    scope, ver, part = doc["scope"], doc["verification"], doc.get("part") or {}
    of = part.get("of")
    part_text = (f"{part.get('number')} of {of if of else 'several'} ({part.get('rows'):,} rows a part; rows from "
                 f"{part.get('first_row')})") if not (part.get("number") == 1 and part.get("last")) else "the whole"
    head = h.kv([("scope", h.json_block(scope) if len(scope) > 2 else f"{scope.get('kind')} {scope.get('id', '')}"),
                 ("chain id", doc["chainId"]), ("generated", doc["generated"]),
                 ("blocks covered", (f"{doc['blocks']['from']} – {doc['blocks']['to']} "
                                     f"(index complete to block {doc['blocks']['covered_to']})")),
                 ("part", part_text), ("entries", len(doc["rows"])),
                 ("verification", h.badge("PASS" if ver["ok"] else "FAIL", "pass" if ver["ok"] else "fail")),
                 ("export hash (keccak-256)", h.tag("code", doc["hash"], class_="wrap"))])
    rows = [[r["time_iso"], r["block"], r["action"], h.tag("span", r["actor_did"] or r["actor"], class_="wrap"),
             h.tag("span", r["object"], class_="wrap"), r["result"], h.tag("span", f"{r['contract']}.{r['event']}"),
             h.tag("code", r["id"], class_="wrap")] for r in doc["rows"]]
    verdicts = [[h.badge(v["status"]), v["step"], v["subject"], v["detail"]] for v in ver["verdicts"]]
    body = (head + h.section("Trail", h.table(["time (UTC)", "block", "action", "actor", "object", "result", "event",
                                                "id"], rows, cls="report"))
            + h.section("Verification", h.table(["", "check", "subject", "what was compared"], verdicts, cls="report"))
            + h.section("Anchoring this export", h.tag(
                "p", f"Anyone can anchor the hash above with Evidence.anchorHash(hash, keccak256(\"{ANCHOR_KIND}\")); "
                     "it is the keccak-256 of the JSON export without its hash and generated fields, keys sorted, "
                     "compact: the same trail exported at the same indexed block has the same hash. An export in "
                     "several parts has one hash per part, and its manifest (format=manifest) one hash over them "
                     "all.")))
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{h.esc(title_of(scope))}</title>"
            f"<link rel='stylesheet' href='{h.BASE}/static/explorer.css'></head>"
            f"<body class='report' data-page='report'><main id='main'><h1>{h.esc(title_of(scope))}</h1>"
            f"<p class='noprint'><button type='button' onclick='window.print()'>Print / save as PDF</button></p>"
            f"{h.esc(nav)}{body}{h.esc(nav)}</main></body></html>")
