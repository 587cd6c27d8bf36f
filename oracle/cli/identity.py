"""``tds id ...``: identities and credentials. Filled by the identity work."""
from __future__ import annotations

import click


@click.group("id")
def identity() -> None:
    """Identities (DIDs), role credentials, chain binding."""
