"""The explorer's routes under ``/explorer``: the landing page, the search, one page per entity
(asset, grant, job, workflow/collaboration, participant, transaction, block, log batch, contract)
and the exports. Unknown ids answer 404 with a page that says what was looked up and where."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from tds.gateway.explorer import html as h
from tds.gateway.explorer import pages, pages_chain
from tds.gateway.explorer.answers import html_answer as _html
from tds.gateway.explorer.answers import not_found as _missing
from tds.gateway.explorer.data import ExplorerData
from tds.gateway.explorer.export_http import export_answer
from tds.gateway.explorer.export_scope import (
    MAX_PART_ROWS,
    PART_ROWS,
    ExportAsk,
)
from tds.gateway.explorer.models import ExportDocument, SearchAnswer, VerificationAnswer
from tds.gateway.explorer.paging import Paging
from tds.gateway.responses import error_responses

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"explorer.css": "text/css", "explorer.js": "text/javascript"}
PREFIXED = re.compile(r"^(asset|grant|job|block|batch|collab|collaboration|workflow)[\s:#/]*(\d+)$", re.IGNORECASE)
KIND_PAGE = {"asset": "asset", "grant": "grant", "job": "job", "block": "block", "batch": "batch",
             "collab": "workflow/collaboration", "collaboration": "workflow/collaboration", "workflow": "workflow/jobs"}
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
HASH32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _choices(data: ExplorerData, q: str, found: list[tuple[str, Any]]) -> HTMLResponse:
    items = "".join(f"<li class='choice'>{h.address(v) if k == 'address' else h.entity(k, v)}</li>"
                    for k, v in found)
    return _html(f"Results for {q}", h.Html(f"<p>{len(found)} matches:</p><ul class='choices'>{items}</ul>"),
                 data, "search", query=q)


def resolve(data: ExplorerData, q: str) -> tuple[list[tuple[str, Any]], str]:
    """What a query names: [(page kind, id)] (one for an exact id, several for a bare number or a
    hash recorded more than once, none if nothing) and, when none, what was looked up."""
    q = q.strip()
    m = PREFIXED.match(q)
    if m:
        return [(KIND_PAGE[m.group(1).lower()], int(m.group(2)))], ""
    if q.startswith("#") and q[1:].isdigit():
        return [("block", int(q[1:]))], ""
    if q.startswith("did:"):
        return ([("did", q)] if data.accounts_of_did(q) else []), f"no account is bound to {q}"
    if ADDRESS.match(q):
        return [("address", data.w3.to_checksum_address(q))], ""
    if HASH32.match(q):
        from web3.exceptions import BlockNotFound, TransactionNotFound

        try:
            data.w3.eth.get_transaction(q)
            return [("tx", q.lower())], ""
        except (TransactionNotFound, ValueError):
            pass
        try:
            return [("block", int(data.w3.eth.get_block(q)["number"]))], ""
        except (BlockNotFound, ValueError):
            pass
        return list(data.find_hash(q)), f"no transaction, block or recorded hash {q}"
    if q.isdigit():
        return list(data.find_number(int(q))), f"nothing numbered {q}"
    return [], (f"“{q}” is not an asset, grant, job, block or batch number, a transaction or block hash, "
                "an address or a DID")


def page_url(kind: str, ident: Any) -> str:
    """The explorer page of a search match."""
    if kind == "did":
        return f"{h.BASE}/did/{quote(str(ident), safe=':')}"
    return f"{h.BASE}/{kind}/{ident}"


def search(data: ExplorerData, q: str, as_json: bool = False) -> Response:
    """Where a query leads: a redirect to the one page it names, a choice of several, or a 404
    (as JSON: every match with its page)."""
    found, missing = resolve(data, q)
    if as_json:
        if not found:
            return JSONResponse({"error": "not-found", "detail": missing, "query": q}, status_code=404)
        return JSONResponse({"query": q, "matches": [{"kind": k, "id": str(i), "url": page_url(k, i)}
                                                     for k, i in found]})
    if len(found) == 1:
        return RedirectResponse(page_url(*found[0]), status_code=303)
    if found:
        return _choices(data, q.strip(), found)
    return _missing(data, missing, q.strip())


HTML_PAGE = {"include_in_schema": False}  # pages for people: docs/explorer.md lists them
FORMATS = {"json": "application/json", "csv": "text/csv", "html": "text/html", "manifest": "application/json"}


def explorer_routes(state: Any, entities: Any, logs_dir: Path | None, fetch: Callable[[str], bytes | None] | None,
                    dependencies: list[Any] | None = None) -> APIRouter:
    """The explorer's router, reading ``entities``' index or its own: HTML pages (left out of the
    OpenAPI description) and the JSON routes (search, verification, exports; described in it)."""
    data = ExplorerData(state, entities, logs_dir, fetch)
    router = APIRouter(prefix=h.BASE, tags=["explorer"], dependencies=dependencies or [])

    def entity_page(title: str, kind: str, build: Callable[[], h.Html | None], what: str) -> HTMLResponse:
        body = build()
        return _missing(data, what) if body is None else _html(title, body, data, kind)

    def paging(request: Request) -> Paging:
        return Paging(request.url.path, dict(request.query_params))

    @router.get("", response_class=HTMLResponse, **HTML_PAGE)
    def landing() -> HTMLResponse:
        return _html("Trusted Data Space explorer", pages.landing(data), data, "landing")

    @router.get("/static/{name}", **HTML_PAGE)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})

    @router.get("/search", summary="Search by id, hash, block, address or DID", response_model=SearchAnswer,
                responses={303: {"description": "(HTML) the one page the query names, in Location"},
                           **error_responses(422, 429, 503, 404, s404="nothing matches: an HTML page, or with "
                                                                       "format=json {error: not-found, detail}")},
                description="`asset 1`, `grant:2`, `job N`, `block 12` / `#12`, `batch 1`, `workflow 1`, "
                            "`collab 1`, a bare number (every entity so numbered), a transaction or block hash, a "
                            "recorded 32-byte hash (anchor, manifest, quality report, result, parameters, Merkle "
                            "root), an address or a DID. Without `format=json`: a 303 to the one page, an HTML "
                            "list of several, or a 404 page.")
    def do_search(q: str = Query(default="", max_length=200),
                  format: str = Query(default="html", pattern="^(json|html)$")) -> Response:
        return search(data, q, as_json=format == "json")

    @router.get("/activity", response_class=HTMLResponse, **HTML_PAGE)
    def activity(request: Request) -> HTMLResponse:
        return _html("Audit log", pages.activity_page(data, paging(request)), data, "activity")

    @router.get("/asset/{asset_id}", response_class=HTMLResponse, **HTML_PAGE)
    def asset(asset_id: int, request: Request) -> HTMLResponse:
        return entity_page(f"Asset {asset_id}", "asset", lambda: pages.asset_page(data, asset_id, paging(request)),
                           f"asset {asset_id}")

    @router.get("/grant/{grant_id}", response_class=HTMLResponse, **HTML_PAGE)
    def grant(grant_id: int) -> HTMLResponse:
        return entity_page(f"Grant {grant_id}", "grant", lambda: pages.grant_page(data, grant_id), f"grant {grant_id}")

    @router.get("/job/{job_id}", response_class=HTMLResponse, **HTML_PAGE)
    def job(job_id: int) -> HTMLResponse:
        g, use = job_id >> 32, job_id & 0xFFFFFFFF
        return entity_page(f"Job {job_id} (grant {g}, use {use})", "job", lambda: pages.job_page(data, job_id),
                           f"job {job_id}")

    @router.get("/workflow/{kind}/{flow_id}", response_class=HTMLResponse, **HTML_PAGE)
    def workflow(kind: str, flow_id: int) -> HTMLResponse:
        if kind not in ("jobs", "collaboration"):
            return _missing(data, f"workflow kind {kind} (jobs or collaboration)")
        label = "Collaboration" if kind == "collaboration" else "Workflow"
        return entity_page(f"{label} {flow_id}", "workflow", lambda: pages.workflow_page(data, kind, flow_id),
                           f"{label.lower()} {flow_id}")

    @router.get("/batch/{batch_id}", response_class=HTMLResponse, **HTML_PAGE)
    def batch(batch_id: int) -> HTMLResponse:
        return entity_page(f"Log batch {batch_id}", "batch", lambda: pages.batch_page(data, batch_id),
                           f"log batch {batch_id}")

    @router.get("/tx/{tx_hash}", response_class=HTMLResponse, **HTML_PAGE)
    def tx(tx_hash: str) -> HTMLResponse:
        if not HASH32.match(tx_hash):
            return _missing(data, f"transaction {tx_hash} (a hash is 0x and 64 hex digits)")
        return entity_page("Transaction", "tx", lambda: pages_chain.tx_page(data, tx_hash.lower()),
                           f"transaction {tx_hash}")

    @router.get("/block/{ident}", response_class=HTMLResponse, **HTML_PAGE)
    def block(ident: str) -> HTMLResponse:
        key: int | str = int(ident) if ident.isdigit() else ident
        if not isinstance(key, int) and not HASH32.match(ident):
            return _missing(data, f"block {ident}")
        return entity_page(f"Block {ident}", "block", lambda: pages_chain.block_page(data, key), f"block {ident}")

    @router.get("/address/{account}", response_class=HTMLResponse, **HTML_PAGE)
    def address(account: str, request: Request) -> HTMLResponse:
        if not ADDRESS.match(account):
            return _missing(data, f"address {account} (0x and 40 hex digits)")
        acct = data.w3.to_checksum_address(account)
        name = data.base.names_by_address.get(acct.lower())
        return _html(f"Contract {name}" if name else "Participant",
                     pages_chain.address_page(data, acct, paging(request)), data, "address")

    @router.get("/did/{did:path}", response_class=HTMLResponse, **HTML_PAGE)
    def did(did: str) -> Response:
        accounts = data.accounts_of_did(did)
        if not accounts:
            return _missing(data, f"participant {did}: no account is bound to it")
        if len(accounts) == 1:
            return RedirectResponse(f"{h.BASE}/address/{accounts[0]}", status_code=303)
        return _choices(data, did, [("address", a) for a in accounts])

    @router.get("/contract/{name}", response_class=HTMLResponse, **HTML_PAGE)
    def contract(name: str) -> HTMLResponse:
        return entity_page(f"Contract {name}", "contract", lambda: pages_chain.contract_page(data, name),
                           f"contract {name}")

    @router.get("/contract/{name}/source", **HTML_PAGE)
    def source(name: str, path: str = Query(max_length=300)) -> Response:
        text = pages_chain.source_text(data, name, path)
        if text is None:
            return _missing(data, f"source {path} of {name}")
        return _html(path, h.tag("pre", text, class_="source"), data, "source")

    @router.get("/contract/{name}/verify", response_class=HTMLResponse, **HTML_PAGE)
    def verify(name: str) -> HTMLResponse:
        return entity_page(f"Verification of {name}", "verify", lambda: pages_chain.verify_contract_page(data, name),
                           f"contract {name}")

    @router.get("/verification", summary="Verification verdicts of an asset, a job or a log batch",
                response_model=VerificationAnswer,
                responses={200: {"content": {"text/html": {}},
                                 "description": "the verdicts (JSON), or as HTML: format=html a page, "
                                                "format=fragment the table the explorer's pages fill in"},
                           **error_responses(400, 404, 422, 429, 503, s400="not exactly one of asset, job, batch",
                                             s404="no such asset, job or batch in the index")},
                description="`audit.verify`'s checks (signature, release, result hash, payment split, batch root "
                            "and inclusion, collaboration order / payments / results), each with what it compared, "
                            "run over the event index and the node, computed once per indexed block. The explorer's "
                            "pages show at once from the index and fetch these after.")
    def verification(asset: int | None = Query(default=None, ge=1), job: int | None = Query(default=None, ge=1),
                     batch: int | None = Query(default=None, ge=1),
                     format: str = Query(default="json", pattern="^(json|html|fragment)$")) -> Response:
        asked = [(k, v) for k, v in (("asset", asset), ("job", job), ("batch", batch)) if v is not None]
        if len(asked) != 1:
            return JSONResponse({"error": "one-scope", "detail": "give exactly one of asset, job or batch"},
                                status_code=400)
        kind, ident = asked[0]
        verdicts = _verdicts(data, kind, ident)
        if verdicts is None:
            if format == "json":
                return JSONResponse({"error": "not-found", "detail": f"{kind} {ident} is not in the index"},
                                    status_code=404)
            return _missing(data, f"{kind} {ident}")
        if format == "json":
            return JSONResponse({"scope": {"kind": kind, "id": ident}, "indexedBlock": data.indexed_block(),
                                 "ok": all(v["ok"] for v in verdicts), "verdicts": verdicts})
        table = pages.verdict_table(verdicts, data)
        if format == "fragment":
            return HTMLResponse(table, headers={"Cache-Control": "no-store"})
        back = h.tag("p", h.entity(kind, ident, f"back to {kind} {ident}"))
        return _html(f"Verification of {kind} {ident}", h.Html(back + table), data, "verification")

    @router.get("/export", summary="Export a trail or the audit log (JSON, CSV, printable report, manifest)",
                response_model=ExportDocument,
                responses={200: {"content": {"text/csv": {}, "text/html": {}},
                                 "description": "format=json: the export document (this schema); csv: its rows; "
                                                "html: a printable report; manifest: "
                                                + "every part's hash and one over them (ExportManifest). Headers: "
                                                "X-TDS-Export-Hash, X-TDS-Export-Blocks (first-last block of the "
                                                "part), X-TDS-Export-Part (n/of), X-TDS-Export-At (pinned block), "
                                                "Link rel=prev/next between parts"},
                           **error_responses(400, 404, 422, 429, 503,
                                             s400="bad time or participant, a part beyond the last, at beyond the "
                                                  "index", s404="unknown asset or participant")},
                description="The trail of an asset (`asset`), a participant (`participant`: address or DID) or a "
                            "time range of the audit log (`from`, `to`: ISO-8601 or unix seconds), pinned at the "
                            "indexed block (`at`, kept by the part links) and cut into parts of `rows` rows "
                            f"(default {PART_ROWS:,}). Without a scope: an HTML form. See docs/explorer.md.")
    def export(request: Request, asset: int | None = Query(default=None, ge=1),
               participant: str | None = Query(default=None, max_length=256),
               since: str | None = Query(default=None, alias="from"),
               until: str | None = Query(default=None, alias="to"),
               part: int = Query(default=1, ge=1), rows: int = Query(default=PART_ROWS, ge=1, le=MAX_PART_ROWS),
               at: int | None = Query(default=None, ge=0),
               format: str = Query(default="html", pattern="^(json|csv|html|manifest)$")) -> Response:
        if asset is None and participant is None and since is None and until is None:
            return _html("Export", h.Html(
                "<p>Export the trail of an asset (<code>?asset=1</code>), a participant "
                "(<code>?participant=0x…</code> or a DID) or a time range "
                "(<code>?from=2026-01-01&amp;to=2026-12-31</code>) with <code>format=json</code>, "
                "<code>csv</code>, <code>html</code> (a printable report) or <code>manifest</code> (the hash of "
                "every part and one over them); long exports come in parts of <code>rows</code> rows "
                "(<code>part=2</code>, …), all pinned at one block (<code>at</code>).</p>")
                + pages.landing_export_form(), data, "export")
        ask = ExportAsk(asset, participant or None, since or None, until or None, part, rows, at)
        return export_answer(data, ask, format, request)

    return router


def _verdicts(data: ExplorerData, kind: str, ident: int) -> list[dict[str, Any]] | None:
    """The verdicts of an asset, a job or a batch (None if the index does not know it)."""
    if kind == "asset":
        return data.verifier.asset(ident)
    if kind == "job":
        row = data.job_row(ident)
        return None if row is None else data.verifier.job(ident, row["asset_id"])
    return None if data.batch(ident) is None else data.verifier.batch(ident)
