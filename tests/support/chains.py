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


def deployed_on(node_url: str, session_settings: Settings, tmp: Path) -> tuple[Settings, Space, Path]:
    """The system deployed afresh on a running node (e.g. the session's anvil) with a home and
    deployment file of its own under ``tmp``: (settings, space, tmp)."""
    settings = replace(session_settings, home=tmp / "home", deployment_file=tmp / "deployment.json",
                       rpc_url=node_url)
    w3 = connect(settings)
    return settings, Space(w3, deploy_system(settings, w3=w3)), tmp
