"""``tds store ...`` and data-plane commands (ingest, quality, encrypt). Filled by the data-plane work."""
from __future__ import annotations

import click


@click.group("store")
def store() -> None:
    """The content-addressed store (Kubo-compatible CIDs)."""
