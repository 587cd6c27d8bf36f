"""A collaboration world behind the ``tds`` command line: a fresh embedded chain, the deployed
system, three banks, a consumer ("analyst", saved with its password) and three compute nodes,
and the environment variables that point the CLI at them (shared by the CLI collaboration tests)."""
from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import yaml
from click.testing import CliRunner

from chain import Space
from chain.accounts import dev_account
from chain.config import load_settings
from chain.connection import connect
from chain.node import EmbeddedNode, free_port
from chain.system import deploy_system
from offchain.store.client import EmbeddedStore
from tds.cli import cli
from tds.collab_world import CollabWorld, build_collab_world

PASSWORD = "collab-test-password"


class Env:
    def __init__(self, world: CollabWorld, home: Path, variables: dict[str, Any]):
        self.world, self.home, self.vars = world, home, variables

    def run(self, *args: Any) -> Any:
        return CliRunner().invoke(cli, [str(a) for a in args], env=self.vars)

    def ok(self, *args: Any) -> Any:
        r = self.run(*args)
        assert r.exit_code == 0 and r.exception is None, (args, r.output, r.exception)
        return r

    def refused(self, kind: type, needle: str, *args: Any) -> str:
        r = self.run(*args)
        assert isinstance(r.exception, kind), (args, r.output, repr(r.exception))
        assert needle in str(r.exception), (needle, str(r.exception))
        return str(r.exception)

    def file(self, name: str, description: dict[str, Any]) -> Path:
        path = self.home / f"{name}.yaml"
        path.write_text(yaml.safe_dump(description, sort_keys=False))
        return path


@contextlib.contextmanager
def collab_env(tmp: Path, rows: int = 30, common: int = 10) -> Iterator[Env]:
    """The world on its own chain under ``tmp``; the node is stopped on exit."""
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    info = node.up(fresh=True)
    try:
        w3 = connect(settings)
        space = Space(w3, deploy_system(settings, w3=w3))
        world = build_collab_world(space, EmbeddedStore(settings.home / "store"), dev_account(0), rows=rows, common=common)
        world.identities["analyst"].save(settings.home / "identities", PASSWORD, scrypt_n=2**10)
        variables = {"TDS_HOME": str(settings.home), "TDS_RPC_URL": info.url, "TDS_CHAIN_ID": None,
                     "TDS_DEPLOYMENT": str(settings.deployment_file), "TDS_IPFS_API": None,
                     "TDS_PROJECT_ROOT": str(settings.project_root), "TDS_KEYSTORE_PASSWORD": PASSWORD}
        yield Env(world, settings.home, variables)
    finally:
        node.down(save=False)


