"""The explorer's routes under ``/explorer``: the landing page, the search, one page per entity
(asset, grant, job, workflow/collaboration, participant, transaction, block, log batch, contract)
and the exports. Unknown ids answer 404 with a page that says what was looked up and where."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from tds.gateway.explorer import export as ex
from tds.gateway.explorer import html as h
from tds.gateway.explorer import pages, pages_chain
from tds.gateway.explorer.data import ExplorerData

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"explorer.css": "text/css", "explorer.js": "text/javascript"}
PREFIXED = re.compile(r"^(asset|grant|job|block|batch|collab|collaboration|workflow)[\s:#/]*(\d+)$", re.IGNORECASE)
KIND_PAGE = {"asset": "asset", "grant": "grant", "job": "job", "block": "block", "batch": "batch",
             "collab": "workflow/collaboration", "collaboration": "workflow/collaboration", "workflow": "workflow/jobs"}
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
HASH32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _html(title: str, body: Any, data: ExplorerData, kind: str, status: int = 200, query: str = "") -> HTMLResponse:
    try:
        block = data.indexed_block()
    except Exception:  # noqa: BLE001 - the footer must not fail a page
        block = None
    return HTMLResponse(h.page(title, body, kind=kind, indexed=block, query=query), status_code=status)


def _missing(data: ExplorerData, what: str, query: str = "") -> HTMLResponse:
    try:
        block = data.indexed_block()
    except Exception:  # noqa: BLE001
        block = None
    body = h.Html(h.tag("p", f"Not found: {what}. The explorer reads the event index (indexed to block {block}) "
                             "and the node; if it was just created, retry after the confirmation depth.",
                        class_="notfound", id="notfound")
                  + h.tag("p", h.link(h.BASE, "Back to the explorer")))
    return _html("Not found", body, data, "notfound", 404, query)


def _choices(data: ExplorerData, q: str, found: list[tuple[str, Any]]) -> HTMLResponse:
    items = "".join(f"<li class='choice'>{h.entity(k, v)}</li>" for k, v in found)
    return _html(f"Results for {q}", h.Html(f"<p>{len(found)} matches:</p><ul class='choices'>{items}</ul>"),
                 data, "search", query=q)


def search(data: ExplorerData, q: str) -> Response:
    """Where a query leads: a redirect to the one page it names, a choice of several, or a 404."""
    q = q.strip()
    m = PREFIXED.match(q)
    if m:
        return RedirectResponse(f"{h.BASE}/{KIND_PAGE[m.group(1).lower()]}/{int(m.group(2))}", status_code=303)
    if q.startswith("#") and q[1:].isdigit():
        return RedirectResponse(f"{h.BASE}/block/{int(q[1:])}", status_code=303)
    if q.startswith("did:"):
        if data.accounts_of_did(q):
            return RedirectResponse(f"{h.BASE}/did/{quote(q, safe=':')}", status_code=303)
        return _missing(data, f"no account is bound to {q}", q)
    if ADDRESS.match(q):
        return RedirectResponse(f"{h.BASE}/address/{data.w3.to_checksum_address(q)}", status_code=303)
    if HASH32.match(q):
        from web3.exceptions import BlockNotFound, TransactionNotFound

        try:
            data.w3.eth.get_transaction(q)
            return RedirectResponse(f"{h.BASE}/tx/{q.lower()}", status_code=303)
        except (TransactionNotFound, ValueError):
            pass
        try:
            return RedirectResponse(f"{h.BASE}/block/{int(data.w3.eth.get_block(q)['number'])}", status_code=303)
        except (BlockNotFound, ValueError):
            pass
        found_h = data.find_hash(q)
        if len(found_h) == 1:
            return RedirectResponse(f"{h.BASE}/{found_h[0][0]}/{found_h[0][1]}", status_code=303)
        if found_h:
            return _choices(data, q, found_h)
        return _missing(data, f"no transaction, block or recorded hash {q}", q)
    if q.isdigit():
        found = data.find_number(int(q))
        if len(found) == 1:
            return RedirectResponse(f"{h.BASE}/{found[0][0]}/{found[0][1]}", status_code=303)
        return _choices(data, q, found) if found else _missing(data, f"nothing numbered {q}", q)
    return _missing(data, f"“{q}” is not an asset, grant, job, block or batch number, a transaction or block hash, "
                          "an address or a DID", q)


def _export(data: ExplorerData, asset: int | None, participant: str | None, since: str | None, until: str | None,
            fmt: str) -> Response:
    from tds.gateway.queries import parse_time

    reads = data.reads()
    if asset is not None:
        _, entries = reads.asset_trail(asset)
        if entries is None:
            return _missing(data, f"asset {asset}")
        scope: dict[str, Any] = {"kind": "asset", "id": asset}
        verdicts = data.verdicts(asset)
    else:
        accounts = None
        if participant is not None:
            accounts = data.accounts_of_did(participant) if participant.startswith("did:") else [participant]
            if not accounts:
                return _missing(data, f"participant {participant}")
        lo, hi = parse_time(since, "from"), parse_time(until, "to")
        entries = []
        for acct in accounts or [None]:
            entries += reads.audit_page(visible_to=acct, since=lo, until=hi, limit=10**7)[2]
        entries = sorted({e.id: e for e in entries}.values(), key=lambda e: (e.block, int(e.id.rpartition(":")[2])))
        scope = {"kind": "participant", "id": participant} if participant else {"kind": "range", "from": since,
                                                                                 "to": until}
        jobs = {e.object.get("job") for e in entries} - {None}
        batches = {e.object.get("batch") for e in entries} - {None}
        verdicts = [v for v in data.verdicts(None) if (v.get("refs") or {}).get("job") in jobs
                    or (v.get("refs") or {}).get("batch") in batches]
    doc = ex.build(scope, entries, verdicts, chain_id=data.base.chain_id, indexed_block=data.indexed_block())
    name = f"tds-export-{scope['kind']}-{scope.get('id') or 'range'}".replace(":", "_")
    headers = {"X-TDS-Export-Hash": doc["hash"]}
    if fmt == "json":
        return Response(ex.to_json(doc), media_type="application/json",
                        headers={**headers, "Content-Disposition": f'inline; filename="{name}.json"'})
    if fmt == "csv":
        return Response(ex.to_csv(doc), media_type="text/csv; charset=utf-8",
                        headers={**headers, "Content-Disposition": f'attachment; filename="{name}.csv"'})
    return HTMLResponse(ex.to_report(doc), headers=headers)


def explorer_routes(state: Any, entities: Any, logs_dir: Path | None, fetch: Callable[[str], bytes | None] | None,
                    dependencies: list[Any] | None = None) -> APIRouter:
    """The explorer's router (HTML pages and exports), reading ``entities``' index or its own."""
    data = ExplorerData(state, entities, logs_dir, fetch)
    # HTML pages for people, not part of the REST API's OpenAPI description (docs/explorer.md lists them)
    router = APIRouter(prefix=h.BASE, tags=["explorer"], dependencies=dependencies or [], include_in_schema=False)

    def entity_page(title: str, kind: str, build: Callable[[], h.Html | None], what: str) -> HTMLResponse:
        body = build()
        return _missing(data, what) if body is None else _html(title, body, data, kind)

    @router.get("", response_class=HTMLResponse, summary="The explorer: catalog, latest activity, totals")
    def landing() -> HTMLResponse:
        return _html("Trusted Data Space explorer", pages.landing(data), data, "landing")

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})

    @router.get("/search", summary="Search by id, hash, block, address or DID")
    def do_search(q: str = Query(default="", max_length=200)) -> Response:
        return search(data, q)

    @router.get("/asset/{asset_id}", response_class=HTMLResponse, summary="An asset")
    def asset(asset_id: int) -> HTMLResponse:
        return entity_page(f"Asset {asset_id}", "asset", lambda: pages.asset_page(data, asset_id), f"asset {asset_id}")

    @router.get("/grant/{grant_id}", response_class=HTMLResponse, summary="A grant")
    def grant(grant_id: int) -> HTMLResponse:
        return entity_page(f"Grant {grant_id}", "grant", lambda: pages.grant_page(data, grant_id), f"grant {grant_id}")

    @router.get("/job/{job_id}", response_class=HTMLResponse, summary="A job")
    def job(job_id: int) -> HTMLResponse:
        g, use = job_id >> 32, job_id & 0xFFFFFFFF
        return entity_page(f"Job {job_id} (grant {g}, use {use})", "job", lambda: pages.job_page(data, job_id),
                           f"job {job_id}")

    @router.get("/workflow/{kind}/{flow_id}", response_class=HTMLResponse, summary="A workflow or collaboration")
    def workflow(kind: str, flow_id: int) -> HTMLResponse:
        if kind not in ("jobs", "collaboration"):
            return _missing(data, f"workflow kind {kind} (jobs or collaboration)")
        label = "Collaboration" if kind == "collaboration" else "Workflow"
        return entity_page(f"{label} {flow_id}", "workflow", lambda: pages.workflow_page(data, kind, flow_id),
                           f"{label.lower()} {flow_id}")

    @router.get("/batch/{batch_id}", response_class=HTMLResponse, summary="An anchored log batch")
    def batch(batch_id: int) -> HTMLResponse:
        return entity_page(f"Log batch {batch_id}", "batch", lambda: pages.batch_page(data, batch_id),
                           f"log batch {batch_id}")

    @router.get("/tx/{tx_hash}", response_class=HTMLResponse, summary="A transaction")
    def tx(tx_hash: str) -> HTMLResponse:
        if not HASH32.match(tx_hash):
            return _missing(data, f"transaction {tx_hash} (a hash is 0x and 64 hex digits)")
        return entity_page("Transaction", "tx", lambda: pages_chain.tx_page(data, tx_hash.lower()),
                           f"transaction {tx_hash}")

    @router.get("/block/{ident}", response_class=HTMLResponse, summary="A block")
    def block(ident: str) -> HTMLResponse:
        key: int | str = int(ident) if ident.isdigit() else ident
        if not isinstance(key, int) and not HASH32.match(ident):
            return _missing(data, f"block {ident}")
        return entity_page(f"Block {ident}", "block", lambda: pages_chain.block_page(data, key), f"block {ident}")

    @router.get("/address/{account}", response_class=HTMLResponse, summary="A participant or contract")
    def address(account: str) -> HTMLResponse:
        if not ADDRESS.match(account):
            return _missing(data, f"address {account} (0x and 40 hex digits)")
        acct = data.w3.to_checksum_address(account)
        name = data.base.names_by_address.get(acct.lower())
        return _html(f"Contract {name}" if name else "Participant", pages_chain.address_page(data, acct), data,
                     "address")

    @router.get("/did/{did:path}", response_class=HTMLResponse, summary="A participant by DID")
    def did(did: str) -> Response:
        accounts = data.accounts_of_did(did)
        if not accounts:
            return _missing(data, f"participant {did}: no account is bound to it")
        if len(accounts) == 1:
            return RedirectResponse(f"{h.BASE}/address/{accounts[0]}", status_code=303)
        return _choices(data, did, [("address", a) for a in accounts])

    @router.get("/contract/{name}", response_class=HTMLResponse, summary="A system contract and its sources")
    def contract(name: str) -> HTMLResponse:
        return entity_page(f"Contract {name}", "contract", lambda: pages_chain.contract_page(data, name),
                           f"contract {name}")

    @router.get("/contract/{name}/source", summary="One published source file")
    def source(name: str, path: str = Query(max_length=300)) -> Response:
        text = pages_chain.source_text(data, name, path)
        if text is None:
            return _missing(data, f"source {path} of {name}")
        return _html(path, h.tag("pre", text, class_="source"), data, "source")

    @router.get("/contract/{name}/verify", response_class=HTMLResponse, summary="Verify a contract now")
    def verify(name: str) -> HTMLResponse:
        return entity_page(f"Verification of {name}", "verify", lambda: pages_chain.verify_contract_page(data, name),
                           f"contract {name}")

    @router.get("/export", summary="Export a trail (JSON, CSV or a printable report)")
    def export(asset: int | None = Query(default=None, ge=1),
               participant: str | None = Query(default=None, max_length=256),
               since: str | None = Query(default=None, alias="from"),
               until: str | None = Query(default=None, alias="to"),
               format: str = Query(default="html", pattern="^(json|csv|html)$")) -> Response:
        if asset is None and participant is None and since is None and until is None:
            return _html("Export", h.Html(
                "<p>Export the trail of an asset (<code>?asset=1</code>), a participant "
                "(<code>?participant=0x…</code> or a DID) or a time range "
                "(<code>?from=2026-01-01&amp;to=2026-12-31</code>) with <code>format=json</code>, "
                "<code>csv</code> or <code>html</code> (a printable report).</p>") + pages.landing_export_form(),
                data, "export")
        return _export(data, asset, participant or None, since or None, until or None, format)

    return router
