"""deploy_system on a fresh embedded anvil: every contract deployed, linked and role-wired."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chain.accounts import dev_account
from chain.connection import connect
from chain.deploy import bind, read_deployment
from chain.node import EmbeddedNode, free_port
from chain.config import Settings, load_settings
from chain.system import SYSTEM_CONTRACTS, SystemRoles, check_wiring, deploy_system, role_id


@pytest.fixture
def chain_settings(tmp_path: Path):
    settings = replace(load_settings(), home=tmp_path / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp_path / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    yield settings
    node.down(save=False)


def test_deploys_and_wires_everything(chain_settings: Settings):
    doc = deploy_system(chain_settings)
    assert set(doc["contracts"]) == set(SYSTEM_CONTRACTS)
    assert read_deployment(chain_settings.deployment_file, doc["chainId"]) == doc
    w3 = connect(chain_settings)
    c = {name: bind(w3, doc, name) for name in SYSTEM_CONTRACTS}
    roles = SystemRoles(**doc["roles"])
    assert roles.operator == dev_account(0).address and roles.regulator == dev_account(1).address
    assert check_wiring(c, roles) == []
    # links: each contract points at the others it depends on
    assert c["Jobs"].functions.treasury().call() == roles.treasury
    assert c["Jobs"].functions.acceptTimeout().call() == doc["acceptTimeout"]
    # least privilege: nobody else holds the powerful roles
    stranger = dev_account(7).address
    assert not c["Authorizations"].functions.hasRole(role_id("JOBS"), stranger).call()
    assert not c["Authorizations"].functions.hasRole(role_id("MONITOR"), roles.regulator).call()
    assert not c["Credits"].functions.hasRole(role_id("REGULATOR"), roles.operator).call()
    assert doc["block"] <= w3.eth.block_number


def test_custom_roles(chain_settings: Settings):
    roles = SystemRoles(operator=dev_account(0).address, regulator=dev_account(5).address,
                        monitor=dev_account(6).address, treasury=dev_account(8).address)
    doc = deploy_system(chain_settings, roles=roles, accept_timeout=120)
    w3 = connect(chain_settings)
    c = {name: bind(w3, doc, name) for name in SYSTEM_CONTRACTS}
    assert check_wiring(c, roles) == []
    assert c["Jobs"].functions.acceptTimeout().call() == 120
    assert not c["Authorizations"].functions.hasRole(role_id("REGULATOR"), dev_account(1).address).call()
