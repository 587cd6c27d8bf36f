"""The explorer's two HTML answers every route shares: a page in the explorer's frame (footer
naming the indexed block) and the 404 page that says what was looked up and where."""
from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse

from tds.gateway.explorer import html as h
from tds.gateway.explorer.data import ExplorerData


def html_answer(title: str, body: Any, data: ExplorerData, kind: str, status: int = 200,
                query: str = "") -> HTMLResponse:
    """``body`` in the explorer's frame (search box, footer with the indexed block)."""
    try:
        block = data.indexed_block()
    except Exception:  # noqa: BLE001 - the footer must not fail a page
        block = None
    return HTMLResponse(h.page(title, body, kind=kind, indexed=block, query=query), status_code=status)


def not_found(data: ExplorerData, what: str, query: str = "") -> HTMLResponse:
    """404: what was looked up, and the block the index is complete to."""
    try:
        block = data.indexed_block()
    except Exception:  # noqa: BLE001
        block = None
    body = h.Html(h.tag("p", f"Not found: {what}. The explorer reads the event index (indexed to block {block}) "
                             "and the node; if it was just created, retry after the confirmation depth.",
                        class_="notfound", id="notfound")
                  + h.tag("p", h.link(h.BASE, "Back to the explorer")))
    return html_answer("Not found", body, data, "notfound", 404, query)
