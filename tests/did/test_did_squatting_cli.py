"""``tds id bind`` against a squatted DID (issue 12, item 13; issue 14's registry), on chain: the
squatter's earlier bind blocks no one, and every reader — the registry client, the gateway's
caller check, the auditor's reader, the sealing directory — shows the owner under the DID, never
the squatter. ``tds id attest`` is gone (there is nothing left to attest)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audit.events import UNVERIFIED, ChainReader
from chain.accounts import dev_account
from chain.compiler import compile_project
from chain.connection import connect
from chain.deploy import deploy_artifact, read_deployment, write_deployment
from chain.tx import Sender
from did.registry import IdentityRegistryClient
from did.sealing import ChainDirectory
from tds.cli import cli
from tds.gateway.callers import bound_account
from tds.gateway.errors import Forbidden


def run(*args: str, ok: bool = True):
    res = CliRunner().invoke(cli, list(args))
    if ok:
        assert res.exit_code == 0, (res.output, res.exception)
    return res


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TDS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PW", "correct horse")
    return tmp_path


def test_squatter_blocks_no_one_and_no_reader_shows_it(env, embedded_node, session_settings, monkeypatch):
    w3 = connect(session_settings)
    admin = dev_account(0)
    art = compile_project(session_settings)
    reg = deploy_artifact(Sender(w3, admin), art["IdentityRegistry"], admin.address)
    deployment = env / "deployment.json"
    block = w3.eth.block_number
    write_deployment(deployment, w3, {"IdentityRegistry": reg}, art, block)
    monkeypatch.setenv("TDS_RPC_URL", embedded_node.url)
    monkeypatch.setenv("TDS_DEPLOYMENT", str(deployment))
    run("id", "new", "owner", "--password-env", "PW", "--dev-account", "7")
    owner = json.loads(run("id", "show", "owner", "--json").output)

    squatter = dev_account(8)  # binds the owner's DID first, with a proof of its own
    Sender(w3, squatter).send(reg.functions.bind(owner["did"], b"\1" * 32, b"\2" * 32, b"not a proof"))
    with pytest.raises(Forbidden):  # the gateway lets no one sign for the DID yet
        bound_account(reg, owner["did"], block)

    out = run("id", "bind", "owner", "--password-env", "PW").output  # not refused
    assert f"bound {owner['did']} <-> {owner['address']}" in out
    assert f"also bound, without a proof from this DID's key: {squatter.address}" in out
    assert run("id", "attest", "owner", "--operator", "owner", ok=False).exit_code != 0  # the command is gone

    view = IdentityRegistryClient(w3, reg, block)
    assert view.verified_account_of_did(owner["did"]) == owner["address"]
    assert view.key_agreement_key(owner["did"]) == bytes.fromhex(owner["keyAgreementKey"][2:])
    assert bound_account(reg, owner["did"], block) == owner["address"]
    reader = ChainReader(w3, read_deployment(deployment, w3.eth.chain_id))
    assert reader.did_of(owner["address"]) == owner["did"]
    assert reader.did_of(squatter.address) == UNVERIFIED + owner["did"]
    assert ChainDirectory(reg, block).resolve(owner["address"]) == (owner["did"],
                                                                    bytes.fromhex(owner["keyAgreementKey"][2:]))
