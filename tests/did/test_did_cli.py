"""``tds id ...`` end to end: offline credential life cycle, on-chain bind/grant/verify/revoke, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from did.errors import CredentialRevoked, DidNotBound, IdentityExists, UntrustedIssuer, WrongPassword
from chain.accounts import dev_account
from chain.compiler import compile_project
from chain.connection import connect
from chain.deploy import deploy_artifact, write_deployment
from chain.tx import Sender
from tds.cli import cli


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TDS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PW", "correct horse")
    monkeypatch.setenv("BADPW", "wrong")
    return tmp_path


def run(*args: str, ok: bool = True):
    res = CliRunner().invoke(cli, list(args))
    if ok:
        assert res.exit_code == 0, (res.output, res.exception)
    return res


def test_offline_life_cycle(env):
    run("id", "new", "op", "--password-env", "PW")
    run("id", "new", "alice", "--password-env", "PW")
    alice = json.loads(run("id", "show", "alice", "--json").output)
    op = json.loads(run("id", "show", "op", "--json").output)
    assert alice["did"].startswith("did:key:z6Mk") and alice["documentCid"].startswith("Qm")
    assert "alice" in run("id", "show").output
    vc_file = env / "vc.json"
    run("id", "credential", "issue", "--operator", "op", "--subject", "alice", "--role", "provider", "--org",
        "Acme", "--days", "7", "--out", str(vc_file), "--password-env", "PW")
    vc = json.loads(vc_file.read_text())
    assert vc["credentialSubject"]["account"] == alice["address"]
    out = run("id", "credential", "verify", str(vc_file), "--offline", "--trust", op["did"]).output
    assert "valid: PROVIDER" in out
    res = run("id", "credential", "verify", str(vc_file), "--offline", "--trust", alice["did"], ok=False)
    assert isinstance(res.exception, UntrustedIssuer)
    run("id", "credential", "revoke", str(vc_file), "--offline")
    res = run("id", "credential", "verify", str(vc_file), "--offline", "--trust", op["did"], ok=False)
    assert isinstance(res.exception, CredentialRevoked)
    assert isinstance(run("id", "new", "alice", "--password-env", "PW", ok=False).exception, IdentityExists)
    res = run("id", "credential", "issue", "--operator", "op", "--subject", alice["did"], "--role", "CONSUMER",
              "--org", "A", "--password-env", "BADPW", ok=False)
    assert isinstance(res.exception, WrongPassword)


def test_on_chain_bind_grant_verify_revoke(env, embedded_node, session_settings, monkeypatch):
    w3 = connect(session_settings)
    admin = dev_account(0)
    art = compile_project(session_settings)
    reg = deploy_artifact(Sender(w3, admin), art["IdentityRegistry"], admin.address)
    deployment = env / "deployment.json"
    write_deployment(deployment, w3, {"IdentityRegistry": reg}, art, w3.eth.block_number)
    monkeypatch.setenv("TDS_RPC_URL", embedded_node.url)
    monkeypatch.setenv("TDS_DEPLOYMENT", str(deployment))
    run("id", "new", "op", "--password-env", "PW", "--dev-account", "0")
    run("id", "new", "bob", "--password-env", "PW", "--dev-account", "6")
    for name in ("op", "bob"):
        assert "bound did:key:" in run("id", "bind", name, "--password-env", "PW").output
    vc_file = env / "vc.json"
    run("id", "credential", "issue", "--operator", "op", "--subject", "bob", "--role", "COMPUTE_PROVIDER",
        "--org", "Oracle Co", "--days", "1", "--grant", "--out", str(vc_file), "--password-env", "PW")
    bob = json.loads(run("id", "show", "bob", "--json").output)
    assert bob["binding"]["statement"]["address"] == bob["address"]
    # a verifier on another machine: only the credential file and the chain
    monkeypatch.setenv("TDS_HOME", str(env / "elsewhere"))
    res = json.loads(run("id", "credential", "verify", str(vc_file), "--holder-account", bob["address"],
                         "--json").output)
    assert res["role"] == "COMPUTE_PROVIDER" and res["revocationSource"].startswith("IdentityRegistry")
    # a credential naming no account: the holder's account needs the subject's published binding proof
    monkeypatch.setenv("TDS_HOME", str(env / "home"))
    bare_file, bob_pub = env / "bare.json", env / "bob-public.json"
    run("id", "credential", "issue", "--operator", "op", "--subject", bob["did"], "--role", "DEVELOPER",
        "--org", "Oracle Co", "--days", "1", "--out", str(bare_file), "--password-env", "PW")
    assert "account" not in json.loads(bare_file.read_text())["credentialSubject"]
    bob_pub.write_text(json.dumps(bob))
    monkeypatch.setenv("TDS_HOME", str(env / "elsewhere"))
    res = run("id", "credential", "verify", str(bare_file), "--holder-account", bob["address"], ok=False)
    assert isinstance(res.exception, DidNotBound)
    assert "valid: DEVELOPER" in run("id", "credential", "verify", str(bare_file), "--holder-account",
                                     bob["address"], "--binding", str(bob_pub)).output
    monkeypatch.setenv("TDS_HOME", str(env / "home"))
    run("id", "credential", "revoke", str(vc_file), "--operator", "op", "--reason", "test", "--password-env", "PW")
    monkeypatch.setenv("TDS_HOME", str(env / "elsewhere"))
    res = run("id", "credential", "verify", str(vc_file), ok=False)
    assert isinstance(res.exception, CredentialRevoked)


def test_user_mistakes_print_one_line(env):
    tds = Path(sys.executable).parent / "tds"
    e = dict(os.environ, COLUMNS="400")  # rich wraps at the terminal width; one message = one line
    cases = [(["id", "show", "nobody"], "no identity named 'nobody'"),
             (["id", "credential", "verify", str(env / "missing.json"), "--offline", "--trust", "did:key:z"],
              "no credential file"),
             (["id", "new", "x", "--password-env", "UNSET_VAR_TDS"], "UNSET_VAR_TDS")]
    for args, expect in cases:
        res = subprocess.run([str(tds), *args], capture_output=True, text=True, env=e, timeout=60)
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr
        assert expect in res.stderr
