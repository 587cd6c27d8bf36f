"""Paging for the explorer's long tables: a big asset's trail, grants and jobs, a participant's
jobs and payments, the audit log. Each table has its own query parameter (``?trail=3``), so
paging one leaves the others where they were; links keep every other parameter."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from tds.gateway.explorer import html as h

PAGE_ROWS = 100
T = TypeVar("T")


@dataclass(frozen=True)
class Paging:
    """Where a page was asked for: its path and query parameters (page numbers by table)."""

    path: str
    params: Mapping[str, str]

    def number(self, key: str) -> int:
        """The 1-based page of table ``key`` (1 when absent or not a positive number)."""
        raw = self.params.get(key, "1")
        return int(raw) if raw.isdigit() and int(raw) > 0 else 1

    def url(self, key: str, number: int, anchor: str | None = None) -> str:
        """This page with table ``key`` at page ``number`` (other parameters kept)."""
        params = {k: v for k, v in self.params.items() if k != key}
        if number > 1:
            params[key] = str(number)
        query = urlencode(sorted(params.items()))
        return self.path + (f"?{query}" if query else "") + (f"#{anchor}" if anchor else "")


NO_PAGING = Paging("", {})


def pages_of(total: int, size: int) -> int:
    """How many pages ``total`` rows make (at least one)."""
    return max(1, -(-total // size))


def pager(paging: Paging, key: str, number: int, total: int, size: int, anchor: str | None = None,
          newest_first: bool = False) -> h.Html:
    """``rows 101–200 of 5,012 · ⇤ first · ← previous · next → · last ⇥`` (nothing when one page holds
    all)."""
    last = pages_of(total, size)
    if total <= size:
        return h.Html("")
    lo, hi = (number - 1) * size + 1, min(total, number * size)
    order = " (newest first)" if newest_first else ""
    links = []
    if number > 1:
        links += [h.link(paging.url(key, 1, anchor), "⇤ first", rel="first"),
                  h.link(paging.url(key, number - 1, anchor), "← previous", rel="prev")]
    if number < last:
        links += [h.link(paging.url(key, number + 1, anchor), "next →", rel="next"),
                  h.link(paging.url(key, last, anchor), "last ⇥", rel="last")]
    text = h.esc(f"rows {lo:,}–{hi:,} of {total:,}{order} · page {number} of {last} ")
    return h.tag("nav", h.Html(text + h.join(links, " ")), class_="pager", aria_label=f"pages of {key}",
                 data_table=key)


def page_slice(items: Sequence[T], paging: Paging, key: str, size: int | None = None,
               anchor: str | None = None) -> tuple[list[T], h.Html]:
    """The rows of table ``key``'s asked page (the last page when asked beyond it) and its pager
    (``size`` rows a page, :data:`PAGE_ROWS` by default)."""
    size = size or PAGE_ROWS
    number = min(paging.number(key), pages_of(len(items), size))
    start = (number - 1) * size
    return list(items[start:start + size]), pager(paging, key, number, len(items), size, anchor or key)

