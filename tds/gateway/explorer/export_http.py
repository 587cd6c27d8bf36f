"""The export's HTTP answers: one part of an export as JSON, CSV or a printable report, or the
manifest of every part, with the part's hash, blocks, number and pinned block in headers and
``Link`` rel=prev/next to the neighbouring parts (the same ``at``, so every part reads one state)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tds.gateway.explorer import export as ex
from tds.gateway.explorer import html as h
from tds.gateway.explorer.answers import not_found as _missing
from tds.gateway.explorer.data import ExplorerData
from tds.gateway.explorer.export_scope import ExportAsk, NotInIndex, collect


def export_answer(data: ExplorerData, ask: ExportAsk, fmt: str, request: Request) -> Response:
    """The asked part as JSON, CSV or a printable report (or the manifest of every part), with its
    hash, blocks, part and pinned block in headers and ``Link`` rel=prev/next to the other parts."""
    try:
        if fmt == "manifest":
            return _manifest(data, ask)
        got = collect(data, ask)
    except NotInIndex as exc:
        if fmt == "html":
            return _missing(data, str(exc))
        return JSONResponse({"error": "not-found", "detail": f"{exc} is not in the index"}, status_code=404)
    doc = ex.build(got.scope, got.entries, got.verdicts, chain_id=data.base.chain_id, indexed_block=got.at,
                   part=got.part)
    scope = got.scope
    name = f"tds-export-{scope['kind']}-{scope.get('id') or 'range'}".replace(":", "_")
    if ask.part > 1 or not got.part["last"]:
        name += f"-part{ask.part}"
    params = {k: v for k, v in request.query_params.items() if k not in ("part", "at")}
    params["at"] = str(got.at)

    def part_url(n: int) -> str:
        return f"{h.BASE}/export?" + urlencode(sorted({**params, "part": str(n)}.items()))

    links = []
    if ask.part > 1:
        links.append(f'<{part_url(ask.part - 1)}>; rel="prev"')
    if not got.part["last"]:
        links.append(f'<{part_url(ask.part + 1)}>; rel="next"')
    headers = {"X-TDS-Export-Hash": doc["hash"],
               "X-TDS-Export-Blocks": f"{doc['blocks']['from']}-{doc['blocks']['to']}",
               "X-TDS-Export-Part": f"{ask.part}/{got.part['of'] or '?'}", "X-TDS-Export-At": str(got.at)}
    if links:
        headers["Link"] = ", ".join(links)
    if fmt == "json":
        return Response(ex.to_json(doc), media_type="application/json",
                        headers={**headers, "Content-Disposition": f'inline; filename="{name}.json"'})
    if fmt == "csv":
        return Response(ex.to_csv(doc), media_type="text/csv; charset=utf-8",
                        headers={**headers, "Content-Disposition": f'attachment; filename="{name}.csv"'})
    nav = h.Html("")
    if links:
        nav = h.tag("nav", h.Html(" ".join(x for x in (
            h.link(part_url(ask.part - 1), "← previous part", rel="prev") if ask.part > 1 else "",
            h.link(part_url(ask.part + 1), "next part →", rel="next") if not got.part["last"] else "",
            h.link(part_url(1).replace("format=html", "format=manifest"), "manifest of every part"))
            if x)), class_="pager noprint")
    return HTMLResponse(ex.to_report(doc, nav), headers=headers)


def _manifest(data: ExplorerData, ask: ExportAsk) -> Response:
    """Every part of the export pinned at one block, read in turn; their hashes and one over them."""
    at = ask.at if ask.at is not None else data.indexed_block()
    parts: list[dict[str, Any]] = []
    n = 1
    while True:
        got = collect(data, replace(ask, part=n, at=at))
        parts.append(ex.build(got.scope, got.entries, got.verdicts, chain_id=data.base.chain_id,
                              indexed_block=got.at, part=got.part))
        if got.part["last"]:
            break
        n += 1
    doc = ex.manifest(ask.scope(), parts, chain_id=data.base.chain_id, at=int(at or 0))
    return JSONResponse(doc, headers={"X-TDS-Export-Hash": doc["hash"], "X-TDS-Export-At": str(at)})
