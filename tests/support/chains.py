"""A private embedded chain with the whole system deployed, for a test module's fixture."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from chain import Space
from chain.config import Settings, load_settings
from chain.connection import connect
from chain.node import EmbeddedNode, free_port
from chain.system import deploy_system


@contextmanager
def private_chain(tmp: Path) -> Iterator[tuple[Settings, Space]]:
    """Settings under ``tmp`` (own home, free port, own deployment file), a fresh anvil and the
    deployed system; the node is stopped on exit."""
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    try:
        w3 = connect(settings)
        yield settings, Space(w3, deploy_system(settings, w3=w3))
    finally:
        node.down(save=False)
