"""SM2 identities under ``TDS_CRYPTO_PROFILE=sm``, end to end on the session anvil: created and
stored like Ed25519 ones, bound on chain, issued a role credential (an ``SM2SM3`` JWS proof),
admitted by a key service's DID guard — and refused by name wherever ``default`` is in force."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi import Depends, Request
from fastapi.testclient import TestClient

from chain.accounts import dev_account
from chain.compiler import compile_project
from chain.connection import connect
from chain.deploy import deploy_artifact
from chain.sm2 import reference_verify
from chain.tx import Sender
from did.challenge import ChallengeVerifier, RequestBinding
from did.credentials import check_issued_form, issue_role_credential, verify_role_credential
from did.errors import CryptoProfileMismatch, TamperedCredential
from did.guard import presentation_header
from did.identity import Identity, create_identity
from did.keys import b64u_decode
from did.registry import ChainTrust, IdentityRegistryClient
from did.sealing import ChainDirectory, open_result, provider_sealer
from did.sm2_identity import Sm2Participant, verify_sm2_document
from did.sm2_jws import signing_input
from offchain.keyservice.guarded_app import guarded_app
from tds.cli import cli


@pytest.fixture(autouse=True)
def sm_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")


@pytest.fixture(scope="module")
def world(embedded_node, session_settings):
    """A fresh IdentityRegistry (admin = operator's account), an SM2 operator and an SM2 oracle, bound."""
    w3 = connect(session_settings)
    admin = dev_account(0)
    contract = deploy_artifact(Sender(w3, admin), compile_project(session_settings)["IdentityRegistry"], admin.address)
    registry = IdentityRegistryClient(w3, contract)
    people = {"operator": create_identity("operator", admin, "sm"), "oracle": create_identity("oracle", dev_account(7), "sm")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TDS_CRYPTO_PROFILE", "sm")
        for p in people.values():
            registry.bind(p)
    return w3, contract, registry, people


def key_service(verifier: ChallengeVerifier, trust: ChainTrust) -> TestClient:
    """A provider service built like the key service (:func:`guarded_app`: bound presentations),
    whose one call admits a COMPUTE_PROVIDER by the role credential it posts."""
    app, caller_did = guarded_app("key service", "test", verifier)

    @app.post("/v1/work")
    async def work(request: Request, did: str = Depends(caller_did)) -> dict:
        vc = json.loads(await request.body())["credential"]
        return {"did": did, "role": verify_role_credential(vc, trust, holder_did=did, role="COMPUTE_PROVIDER").role}

    return TestClient(app)


def call(client: TestClient, who, vc: dict, then=lambda: None) -> tuple[int, dict]:
    """Answer the service's challenge as ``who`` (a bound presentation), run ``then``, send the call."""
    body = json.dumps({"credential": vc}).encode()
    www = client.get("/v1/challenge").json()["www_authenticate"]
    headers = presentation_header(who, www, request=RequestBinding.of("POST", "/v1/work", body))
    then()
    r = client.post("/v1/work", content=body, headers={"content-type": "application/json", **headers})
    return r.status_code, r.json()


def test_sm2_identity_bound_credentialed_and_admitted(world, monkeypatch):
    w3, contract, registry, people = world
    operator, oracle = people["operator"], people["oracle"]
    assert isinstance(oracle, Sm2Participant) and oracle.did.startswith("did:key:zEPJ")   # multicodec 0x1206
    view = IdentityRegistryClient(w3, w3.eth.contract(address=contract.address, abi=contract.abi))
    rec = view.verify_identity(oracle.did, document=oracle.document, binding_proof=oracle.binding)
    assert rec.account == oracle.address and rec.key_agreement_key == oracle.key_agreement_key
    assert view.verified_account_of_did(oracle.did) == oracle.address      # the SM2 binding proof checks out
    assert verify_sm2_document(oracle.document, oracle.did) == oracle.key_agreement_key

    vc = issue_role_credential(operator, oracle.did, "COMPUTE_PROVIDER", "Acme Compute", days=1,
                               binding_proof=oracle.binding)
    registry.grant_from_credential(operator.account, vc)
    check_issued_form(vc)
    assert vc["proof"]["type"] == "SM2SM3Signature" and view.has_participant_role(oracle.address, "COMPUTE_PROVIDER")
    opts = {k: v for k, v in vc["proof"].items() if k != "jws"}            # second library agrees on the signature
    sig = b64u_decode(vc["proof"]["jws"].rpartition(".")[2])
    assert reference_verify(operator.signing.public, signing_input(vc, opts), sig)

    trust = ChainTrust(view)
    client = key_service(ChallengeVerifier(domain="keyservice:test"), trust)
    assert call(client, oracle, vc) == (200, {"did": oracle.did, "role": "COMPUTE_PROVIDER"})

    tampered = {**vc, "credentialSubject": {**vc["credentialSubject"], "organization": "Evil Compute"}}
    with pytest.raises(TamperedCredential, match="SM2 signature"):
        verify_role_credential(tampered, trust)

    # answers are sealed to the SM2 key recorded on chain and open only under sm
    sealed = provider_sealer(operator, ChainDirectory(contract))({"job": 1, "answer": 42}, oracle.address)
    assert open_result(oracle, sealed, operator.did, job_id=1)["answer"] == 42

    # a default-profile verifier meets the same SM2 presentation, credential, envelope and binding
    status, body = call(client, oracle, vc, then=lambda: monkeypatch.setenv("TDS_CRYPTO_PROFILE", "default"))
    assert (status, body["kind"]) == (401, "CryptoProfileMismatch") and "'sm'" in body["error"]
    for refused in (lambda: verify_role_credential(vc, trust), lambda: open_result(oracle, sealed),
                    lambda: view.verify_identity(oracle.did, binding_proof=oracle.binding)):
        with pytest.raises(CryptoProfileMismatch) as exc:
            refused()
        assert (exc.value.expected, exc.value.found) == ("default", "sm")


def test_default_identities_are_refused_under_sm():
    ed_op, ed_alice = Identity.create("op"), Identity.create("alice")
    with pytest.raises(CryptoProfileMismatch, match="credential subject"):
        issue_role_credential(create_identity("op2"), ed_alice.did, "PROVIDER", "Acme")
    with pytest.raises(CryptoProfileMismatch) as exc:
        issue_role_credential(ed_op, create_identity("alice2").did, "PROVIDER", "Acme")
    assert (exc.value.expected, exc.value.found) == ("sm", "default")


def test_cli_makes_and_reloads_sm2_identities(tmp_path, monkeypatch):
    monkeypatch.setenv("TDS_HOME", str(tmp_path))
    monkeypatch.setenv("PW", "correct horse")
    run = CliRunner().invoke
    for name in ("op", "alice"):
        res = run(cli, ["id", "new", name, "--password-env", "PW", "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["profile"] == "sm"
    alice = Identity.load(tmp_path / "identities", "alice", "correct horse")
    assert isinstance(alice, Sm2Participant) and alice.did == json.loads(run(cli, ["id", "show", "alice", "--json"]).output)["did"]
    vc_file = tmp_path / "vc.json"
    res = run(cli, ["id", "credential", "issue", "--operator", "op", "--subject", "alice", "--role", "provider",
                    "--org", "Acme", "--days", "7", "--out", str(vc_file), "--password-env", "PW"])
    assert res.exit_code == 0, res.output
    op_did = json.loads(run(cli, ["id", "show", "op", "--json"]).output)["did"]
    assert "valid: PROVIDER" in run(cli, ["id", "credential", "verify", str(vc_file), "--offline", "--trust", op_did]).output


def test_sm2_proofs_refuse_what_was_changed():
    from did.challenge import ChallengeVerifier, respond
    from did.errors import ChallengeReplayed, TamperedPresentation
    from did.sm2_jws import HEADER, verify_document

    holder = create_identity("holder")
    verifier = ChallengeVerifier(domain="ks")
    vp = respond(holder, verifier.issue())
    assert verify_document(vp, {"proofPurpose": "authentication", "challenge": vp["proof"]["challenge"],
                                "domain": "ks"})["checks"] == ["proof"]
    for options, reason in (({"proofPurpose": "assertionMethod"}, "proofPurpose"), ({"domain": "other"}, "domain"),
                            ({"challenge": "1.a.b"}, "challenge")):
        assert reason in verify_document(vp, options)["errors"][0]
    header = vp["proof"]["jws"].split(".")[0]
    es256 = {**vp, "proof": {**vp["proof"], "jws": vp["proof"]["jws"].replace(header, header[:-2] + "xx")}}
    assert "unencoded-payload header" in verify_document(es256, {})["errors"][0] and HEADER["alg"] == "SM2SM3"
    other = create_identity("other")
    stolen = {**vp, "holder": other.did}
    with pytest.raises(TamperedPresentation):
        verifier.verify(stolen)
    with pytest.raises(ChallengeReplayed):
        verifier.verify(vp)
