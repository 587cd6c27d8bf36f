"""Small HTML builders for the explorer: every value from the chain or a user (addresses, DIDs,
names, hashes) goes through :func:`esc`; every id, address, DID and hash becomes a link to its page."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import quote

from tds.gateway.explorer.units import iso_utc, short, short_did

BASE = "/explorer"
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
HASH32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
# event argument / object keys naming an entity → the page kind they link to
ID_KEYS = {"assetId": "asset", "asset": "asset", "tokenId": "asset", "grantId": "grant", "grant": "grant",
           "jobId": "job", "job": "job", "batchId": "batch", "batch": "batch", "workflowId": "workflow/jobs",
           "workflow": "workflow/jobs", "collaboration": "workflow/collaboration", "collaborationId":
           "workflow/collaboration", "id": None, "block": "block", "template": None}


class Html(str):
    """Markup already escaped (a ``str`` subclass); ``Html + x`` escapes ``x`` unless it is ``Html``."""

    def __add__(self, other: Any) -> Html:
        return Html(str.__add__(self, esc(other)))


def esc(value: Any) -> Html:
    """``value`` as escaped text (``Html`` passes through unchanged)."""
    if isinstance(value, Html):
        return value
    return Html(escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    """Escaped parts joined by ``sep``."""
    return Html(sep.join(esc(p) for p in parts))


def tag(name: str, content: Any = "", **attrs: Any) -> Html:
    """``<name attrs>content</name>``; ``class_`` → class, ``data_x`` → data-x, None attrs dropped."""
    at = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    return Html(f"<{name}{at}>{esc(content)}</{name}>")


def link(href: str, text: Any, title: str | None = None, **attrs: Any) -> Html:
    """``<a href>`` with escaped text and attributes."""
    return tag("a", text, href=href, title=title, **attrs)


def copy_button(value: str) -> Html:
    """A button the script copies ``value`` with (focusable, labelled)."""
    return Html(f'<button type="button" class="copy" data-copy="{esc(value)}" '
                f'aria-label="copy {esc(value)}" title="copy"></button>')


def address(value: str | None, did: str | None = None, name: str | None = None) -> Html:
    """An account: shortened, the full value on hover and a copy button; its DID beside it when known."""
    if not value:
        return Html("—")
    shown = name or short(value)
    out = link(f"{BASE}/address/{value}", shown, title=value, class_="mono addr", data_full=value) + copy_button(value)
    if did:
        out += Html(" ") + did_link(did)
    return Html(out)


def did_link(did: str | None) -> Html:
    """A DID linked to its participant (shortened, full on hover, copy button)."""
    if not did:
        return Html("—")
    if not did.startswith("did:"):  # contract:Name, role:x, unverified:did:…
        return tag("span", did, class_="tag", title=did)
    return Html(link(f"{BASE}/did/{quote(did, safe=':')}", short_did(did), title=did, class_="did mono")
                + copy_button(did))


def tx_link(tx: str | None) -> Html:
    """A transaction hash linked to its page."""
    if not tx:
        return Html("—")
    return Html(link(f"{BASE}/tx/{tx}", short(tx, 10, 6), title=tx, class_="mono hash") + copy_button(tx))


def hash_link(value: str | None) -> Html:
    """A 32-byte hash: linked to the search (a transaction, a block or an anchored hash)."""
    if not value:
        return Html("—")
    return Html(link(f"{BASE}/search?q={value}", short(value, 10, 6), title=value, class_="mono hash")
                + copy_button(value))


def block_link(number: int | None) -> Html:
    """``#n`` linked to block n."""
    if number is None:
        return Html("—")
    return link(f"{BASE}/block/{int(number)}", f"#{int(number)}", class_="block")


def entity(kind: str, ident: Any, text: Any = None) -> Html:
    """A link to an asset / grant / job / batch / workflow page."""
    if ident is None or ident == "":
        return Html("—")
    noun = {"workflow/jobs": "workflow", "workflow/collaboration": "collaboration"}.get(kind, kind)
    label = text if text is not None else f"{noun} {ident}"
    return link(f"{BASE}/{kind}/{ident}", label, class_="entity")


def when(ts: int | None, block: int | None = None) -> Html:
    """A time (UTC in the markup; the script shows it in the viewer's time zone) and its block."""
    if ts is None:
        return Html("—")
    iso = iso_utc(ts)
    out = tag("time", iso, datetime=iso, data_ts=str(int(ts)), title=iso)
    if block is not None:
        out = Html(out + " " + block_link(block))
    return Html(out)


def value(key: str, v: Any) -> Html:
    """Any decoded argument shown with the link its kind deserves."""
    if isinstance(v, dict):
        return Html("<dl class='inline'>" + "".join(f"<dt>{esc(k)}</dt><dd>{value(k, x)}</dd>" for k, x in v.items())
                    + "</dl>")
    if isinstance(v, (list, tuple)):
        return join((value(key, x) for x in v), ", ")
    if isinstance(v, bool) or v is None:
        return esc("—" if v is None else str(v).lower())
    kind = ID_KEYS.get(key)
    if kind and isinstance(v, int):
        return entity(kind, v)
    if isinstance(v, str) and ADDRESS.match(v):
        return address(v)
    if isinstance(v, str) and HASH32.match(v):
        return hash_link(v)
    if isinstance(v, str) and v.startswith("did:"):
        return did_link(v)
    if isinstance(v, str) and v.startswith("0x") and len(v) > 24:  # signatures, proofs, calldata: shortened
        return Html(tag("code", short(v, 10, 8), title=v, class_="mono") + copy_button(v))
    return tag("span", v, class_="mono" if isinstance(v, str) and v.startswith("0x") else None)


TOKENS = re.compile(r"0x[0-9a-fA-F]{64}(?![0-9a-fA-F])|0x[0-9a-fA-F]{40}(?![0-9a-fA-F])"
                    r"|did:[a-z0-9]+:[A-Za-z0-9._%:-]+")


def linkify(text: str) -> Html:
    """Free text (a verdict's detail) escaped, with every address, 32-byte hash and DID in it linked."""
    out, last = [], 0
    for m in TOKENS.finditer(text):
        out.append(esc(text[last:m.start()]))
        out.append(value("", m.group(0)))
        last = m.end()
    out.append(esc(text[last:]))
    return Html("".join(out))


def kv(rows: Iterable[tuple[str, Any]]) -> Html:
    """A definition list (label → already built Html or a value)."""
    body = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in rows)
    return Html(f"<dl class='kv'>{body}</dl>")


def table(headers: list[str], rows: Iterable[Iterable[Any]], cls: str = "", empty: str = "none",
          row_attrs: Iterable[dict[str, Any]] | None = None) -> Html:
    """A table with a header row; cells are escaped unless they are ``Html``."""
    rows = [list(r) for r in rows]
    if not rows:
        return tag("p", empty, class_="empty")
    attrs = list(row_attrs) if row_attrs is not None else [{} for _ in rows]
    head = "".join(f"<th scope='col'>{esc(h)}</th>" for h in headers)
    body = "".join(tag("tr", Html("".join(f"<td>{esc(c)}</td>" for c in r)), **a) for r, a in zip(rows, attrs))
    return Html(f"<div class='scroll'><table class='{esc(cls)}'><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table></div>")


def section(title: str, content: Any, ident: str | None = None) -> Html:
    """``<section id><h2>title</h2>content</section>``."""
    return tag("section", Html(f"<h2>{esc(title)}</h2>{esc(content)}"), id=ident)


def badge(text: str, kind: str | None = None) -> Html:
    """A small label (state, status, verdict) styled by ``kind``."""
    return tag("span", text, class_=f"badge {kind or text}")


def page(title: str, body: Any, *, kind: str = "", indexed: int | None = None, query: str = "") -> str:
    """The whole document: header with the search box, the body, a footer; CSS and JS served locally."""
    foot = f"indexed to block {indexed}" if indexed is not None else "read from the node"
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)} · TDS explorer</title>"
            f"<link rel='stylesheet' href='{BASE}/static/explorer.css'></head>"
            f"<body data-page='{esc(kind)}'><a class='skip' href='#main'>Skip to content</a>"
            f"<header><a class='home' href='{BASE}'>TDS explorer</a>"
            f"<form class='search' role='search' action='{BASE}/search' method='get'>"
            "<label for='q' class='sr'>Search</label>"
            f"<input id='q' name='q' value='{esc(query)}' placeholder='asset, grant, job, tx hash, block, address "
            "or DID  (press /)' autocomplete='off' accesskey='s'>"
            "<button type='submit'>Search</button></form></header>"
            f"<main id='main' tabindex='-1'><h1>{esc(title)}</h1>{esc(body)}</main>"
            f"<footer>{esc(foot)} · times in <span id='tz'>UTC</span> · "
            f"<a href='{BASE}/export'>export</a> · <a href='/docs'>API</a></footer>"
            f"<script src='{BASE}/static/explorer.js'></script></body></html>")


def json_block(data: Any) -> Html:
    """Pretty JSON in a ``<pre>`` (escaped)."""
    return tag("pre", json.dumps(data, indent=2, default=str), class_="json")
