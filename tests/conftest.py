"""Shared fixtures: an isolated TDS_HOME and an embedded anvil per test session."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

import os

import pytest
from hypothesis import settings as hypothesis_settings

# CI explores the same examples every run (a failure reproduces locally with CI=true);
# developers' runs stay randomized and keep finding new cases.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

from chain.node import EmbeddedNode, free_port
from chain.config import Settings, load_settings


@pytest.fixture
def tmp_settings(tmp_path: Path) -> Settings:
    """Settings with a private state folder and a free preferred port."""
    return replace(load_settings(), home=tmp_path / "tds-home", chain_port=free_port(), rpc_url=None,
                   chain_id=None, deployment_file=tmp_path / "deployment.json")


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("tds-session")
    return replace(load_settings(), home=home, chain_port=free_port(), rpc_url=None, chain_id=None,
                   deployment_file=home / "deployment.json")


@pytest.fixture(scope="session")
def embedded_node(session_settings: Settings):
    """One anvil for the session, stopped at the end."""
    node = EmbeddedNode(session_settings)
    info = node.up(fresh=True)
    yield info
    node.down(save=False)


FIXTURE_CONTRACTS = Path(__file__).resolve().parent / "fixtures" / "contracts"


@pytest.fixture
def fixture_project(tmp_path: Path, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """Make a throw-away Brownie project holding only the named fixture contracts. Its compiler
    front-end goes to a private folder (SOLCX_BINARY_PATH): the user's ~/.solcx keeps pointing at
    the real project, not at a temporary one pytest deletes later."""
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path / "solcx"))

    def make(*names: str) -> Settings:
        root = tmp_path / "proj"
        (root / "contracts").mkdir(parents=True)
        (root / "tests" / "contracts").mkdir(parents=True)
        for n in names:
            shutil.copy(FIXTURE_CONTRACTS / n, root / "contracts" / n)
        shutil.copy(tmp_settings.project_root / "brownie-config.yaml", root / "brownie-config.yaml")
        (root / "node_modules").symlink_to(tmp_settings.node_modules)
        return replace(tmp_settings, project_root=root)

    return make
