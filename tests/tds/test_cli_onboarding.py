"""``tds id apply|applications|review|admit`` on a real chain: a bound participant applies with a
document, the operator reviews it, and approval issues the role credential and grants the role in
one flow; a rejection carries its reasons; each refusal is one specific line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import tds.cli.onboarding  # noqa: F401  (registers the commands on 'tds id'; tds/cli/__init__.py imports it too)
from chain import Space
from chain.accounts import dev_account
from chain.config import Settings
from chain.onboarding import OnboardingClient, document_cid, role_hash
from did.credentials import verify_role_credential
from did.identity import Identity
from did.registry import ChainTrust, IdentityRegistryClient
from offchain.store.client import open_store
from tds.cli import cli
from tests.support.chains import deployed_on

PASSWORD = "onboarding-test-password"


class Env:
    def __init__(self, settings: Any, space: Space, tmp: Path, rpc_url: str):
        self.settings, self.space, self.tmp = settings, space, tmp
        self.vars = {"TDS_HOME": str(settings.home), "TDS_RPC_URL": rpc_url,
                     "TDS_CHAIN_ID": None, "TDS_DEPLOYMENT": str(settings.deployment_file), "TDS_IPFS_API": None,
                     "PW": PASSWORD}
        self.registry = IdentityRegistryClient(space.w3, space.c["IdentityRegistry"])

    def identity(self, name: str, index: int, *, bind: bool = True) -> Identity:
        ident = Identity.create(name, dev_account(index))
        ident.save(self.settings.home / "identities", PASSWORD, scrypt_n=2**10)
        if bind:
            self.registry.bind(ident)
        return ident

    def run(self, *args: Any) -> Any:
        return CliRunner().invoke(cli, [str(a) for a in args], env=self.vars)

    def ok(self, *args: Any) -> Any:
        r = self.run(*args)
        assert r.exit_code == 0 and r.exception is None, (args, r.output, r.exception)
        return r

    def refused(self, *args: Any) -> str:
        r = self.run(*args)
        assert r.exit_code != 0 and r.exception is not None, (args, r.output)
        return f"{type(r.exception).__name__}: {r.exception}"


@pytest.fixture(scope="module")
def deployed(embedded_node: Any, session_settings: Settings, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Settings, Space, Path]:
    """The system deployed afresh on the session's anvil, with this module's own home and deployment file."""
    return deployed_on(embedded_node.url, session_settings, tmp_path_factory.mktemp("cli-onboarding"))


@pytest.fixture(scope="module")
def env(deployed: tuple[Settings, Space, Path], embedded_node: Any) -> Env:
    return Env(*deployed, embedded_node.url)


def _document(env: Env, name: str, **fields: Any) -> Path:
    path = env.tmp / f"{name}.json"
    path.write_text(json.dumps(fields))
    return path


def test_apply_review_approve_issues_and_grants(env: Env) -> None:
    op = env.identity("op", 0)               # the deployer: OPERATOR and REVIEWER (chain/system.py wiring)
    alice = env.identity("alice", 5)
    doc = _document(env, "alice", organization="Alice Analytics", jurisdiction="CN", purpose="statistics")
    out = json.loads(env.ok("id", "apply", "alice", "--role", "consumer", "--document", doc, "--password-env", "PW",
                            "--json").output)
    app_id = out["application"]
    assert open_store(env.settings.home).cat(out["documentCid"]) == doc.read_bytes()
    listed = json.loads(env.ok("id", "applications", "--pending", "--json").output)
    assert [(a["id"], a["state"], a["role"]) for a in listed] == [(app_id, "pending", "CONSUMER")]

    r = json.loads(env.ok("id", "review", app_id, "--approve", "--reason", "organisation checked", "--operator", "op",
                          "--password-env", "PW", "--json").output)
    adm = r["admitted"]
    vc = json.loads(Path(adm["credential"]).read_text())
    assert (vc["credentialSubject"]["id"], vc["credentialSubject"]["organization"]) == (alice.did, "Alice Analytics")
    v = verify_role_credential(vc, ChainTrust(env.registry), holder_account=alice.address, role="CONSUMER")
    assert v.issuer == op.did
    assert env.registry.has_participant_role(alice.address, "CONSUMER")
    assert env.registry.role_credential(alice.address, "CONSUMER")[0].hex() == adm["credentialHash"][2:]
    listed = json.loads(env.ok("id", "applications", "--json").output)
    assert listed[0]["state"] == "admitted" and listed[0]["decision"]["approved"] is True

    assert "already admitted, not pending" in env.refused("id", "review", app_id, "--approve", "--reason", "again",
                                                          "--operator", "op", "--password-env", "PW")
    assert "[RoleAlreadyHeld]" in env.refused("id", "apply", "alice", "--role", "consumer", "--document", doc,
                                              "--password-env", "PW")


def test_reject_with_reasons_and_refusals(env: Env) -> None:
    env.identity("carol", 7)                 # bound, but no REVIEWER
    env.identity("bob", 6)
    env.identity("dave", 8, bind=False)
    doc = _document(env, "bob", organization="Bob Ltd")
    assert "bind it first with 'tds id bind dave'" in env.refused(
        "id", "apply", "dave", "--role", "provider", "--document", doc, "--password-env", "PW")
    app_id = json.loads(env.ok("id", "apply", "bob", "--role", "provider", "--document", doc, "--password-env", "PW",
                               "--json").output)["application"]
    assert "[ApplicationAlreadyOpen]" in env.refused("id", "apply", "bob", "--role", "provider", "--document", doc,
                                                     "--password-env", "PW")
    assert "AccessControlUnauthorizedAccount" in env.refused(
        "id", "review", app_id, "--approve", "--reason", "fine by me", "--operator", "carol", "--password-env", "PW")
    assert "unknown application 99" in env.refused("id", "review", 99, "--reject", "--reason", "x", "--operator", "op",
                                                   "--password-env", "PW")

    r = json.loads(env.ok("id", "review", app_id, "--reject", "--reason", "no proof of ownership", "--operator", "op",
                          "--password-env", "PW", "--json").output)
    assert "admitted" not in r
    reasons = json.loads(open_store(env.settings.home).cat(r["reasonsCid"]))
    assert (reasons["reason"], reasons["approved"]) == ("no proof of ownership", False)
    onb = OnboardingClient.from_deployment(env.space.w3, env.space.deployment)
    assert onb.decision(app_id)["reasonsCid"] == r["reasonsCid"] == document_cid(bytes.fromhex(
        onb.decision(app_id)["reasonsHash"][2:]))
    assert "is rejected, not approved" in env.refused("id", "admit", app_id, "--operator", "op", "--password-env", "PW")
    assert not env.space.c["IdentityRegistry"].functions.hasParticipantRole(
        dev_account(6).address, role_hash("PROVIDER")).call()
    assert "no pending applications" in env.ok("id", "applications", "--pending").output


def test_audit_log_shows_each_step(env: Env) -> None:
    """The audit log (rebuilt from chain events) names each application, decision and admission."""
    from audit.events import ChainReader
    from audit.trail import chain_entries

    entries = [e for e in chain_entries(ChainReader(env.space.w3, env.space.deployment)) if e.contract == "Onboarding"]
    seen = [(e.action, e.object.get("role-application"), e.result) for e in entries]
    assert seen == [("apply-role", 1, "ok"), ("review-application", 1, "approved"), ("admit-participant", 1, "ok"),
                    ("apply-role", 2, "ok"), ("review-application", 2, "rejected")]
    assert entries[0].actor == dev_account(5).address and entries[1].actor == dev_account(0).address
