"""``tds id bind`` / ``tds id attest`` against a squatted DID (issue 12, item 13), on chain: the
owner is refused and told what to do, the operator refuses a proof that does not verify and
attests the owner's, and the owner's next bind takes the DID over."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chain.accounts import dev_account
from chain.compiler import compile_project
from chain.connection import connect
from chain.deploy import deploy_artifact, write_deployment
from chain.tx import Sender
from did.binding import make_binding_proof
from did.errors import DidNotBound
from did.identity import Identity
from did.registry import IdentityRegistryClient
from tds.cli import cli


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


def test_owner_reclaims_squatted_did_from_the_command_line(env, embedded_node, session_settings, monkeypatch):
    w3 = connect(session_settings)
    admin = dev_account(0)
    art = compile_project(session_settings)
    reg = deploy_artifact(Sender(w3, admin), art["IdentityRegistry"], admin.address)
    deployment = env / "deployment.json"
    write_deployment(deployment, w3, {"IdentityRegistry": reg}, art, w3.eth.block_number)
    monkeypatch.setenv("TDS_RPC_URL", embedded_node.url)
    monkeypatch.setenv("TDS_DEPLOYMENT", str(deployment))
    run("id", "new", "op", "--password-env", "PW", "--dev-account", "0")
    run("id", "new", "owner", "--password-env", "PW", "--dev-account", "7")
    run("id", "bind", "op", "--password-env", "PW")
    owner = json.loads(run("id", "show", "owner", "--json").output)

    squatter = dev_account(8)  # binds the owner's DID first, with a proof of its own
    Sender(w3, squatter).send(reg.functions.bind(owner["did"], b"\1" * 32, b"\2" * 32, b"not a proof"))
    res = run("id", "bind", "owner", "--password-env", "PW", ok=False)
    assert isinstance(res.exception, DidNotBound)
    assert f"already bound on chain {w3.eth.chain_id} to {squatter.address}" in str(res.exception)
    assert "tds id attest" in str(res.exception)
    published = json.loads(run("id", "show", "owner", "--json").output)["binding"]  # written despite the refusal
    assert published["statement"]["address"] == owner["address"]

    thief = Identity.create("thief", squatter)
    forged = make_binding_proof(thief.ed25519, squatter, w3.eth.chain_id)
    forged["statement"]["did"] = owner["did"]
    (env / "forged.json").write_text(json.dumps(forged))
    res = run("id", "attest", str(env / "forged.json"), "--operator", "op", "--password-env", "PW", ok=False)
    assert isinstance(res.exception, DidNotBound) and "did not sign" in str(res.exception)
    assert IdentityRegistryClient(w3, reg).binding_attestation(owner["did"]) is None  # nothing was sent

    out = run("id", "attest", "owner", "--operator", "op", "--password-env", "PW").output
    assert f"attested {owner['did']} -> {owner['address']}" in out and squatter.address in out
    out = run("id", "bind", "owner", "--password-env", "PW").output
    assert f"took it over from {squatter.address}" in out
    view = IdentityRegistryClient(w3, reg)
    assert view.verified_account_of_did(owner["did"]) == owner["address"]
    assert view.identity_of(squatter.address) is None
