import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from did.binding import make_binding_proof
from did.credentials import (OfflineTrust, credential_hash, issue_role_credential, role_id,
                             verify_role_credential)
from did.errors import (CredentialExpired, CredentialNotYetValid, CredentialRevoked, DidNotBound,
                        MalformedCredential, RoleMismatch, SubjectMismatch, TamperedCredential, UntrustedIssuer)
from did.identity import Identity

NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def vc(operator, alice):
    return issue_role_credential(operator, alice.did, "provider", "Acme Hospital", days=30,
                                 subject_account=alice.address)


@pytest.fixture
def trust(operator, alice):
    t = OfflineTrust({operator.did})
    t.add_binding(make_binding_proof(alice.ed25519, alice.account, 31337))
    return t


def test_issue_and_verify(vc, trust, operator, alice):
    assert vc["issuer"] == operator.did and vc["proof"]["type"].startswith("Ed25519")
    v = verify_role_credential(vc, trust, holder_did=alice.did, holder_account=alice.address, role="PROVIDER")
    assert (v.role, v.organization, v.subject_did, v.account) == ("PROVIDER", "Acme Hospital", alice.did, alice.address)
    assert v.valid_until - v.valid_from == timedelta(days=30)
    assert v.credential_hash == credential_hash(json.loads(json.dumps(vc)))  # survives a JSON round trip
    assert role_id("provider") == role_id("PROVIDER") and len(role_id("PROVIDER")) == 32


def test_tampered_credential_refused(vc, trust):
    for path, value in ((("credentialSubject", "role"), "OPERATOR"), (("credentialSubject", "organization"), "Evil"),
                        (("expirationDate",), "2999-01-01T00:00:00Z")):
        bad = copy.deepcopy(vc)
        target = bad
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
        with pytest.raises(TamperedCredential):
            verify_role_credential(bad, trust)
    bad = copy.deepcopy(vc)
    bad["proof"]["jws"] = bad["proof"]["jws"][:-4] + "AAAA"
    with pytest.raises(TamperedCredential):
        verify_role_credential(bad, trust)


def test_expired_and_not_yet_valid_refused(operator, alice, trust):
    old = issue_role_credential(operator, alice.did, "CONSUMER", "Acme", valid_from=NOW - timedelta(days=10),
                                valid_until=NOW - timedelta(days=1))
    with pytest.raises(CredentialExpired):
        verify_role_credential(old, trust)
    future = issue_role_credential(operator, alice.did, "CONSUMER", "Acme", valid_from=NOW + timedelta(days=1), days=2)
    with pytest.raises(CredentialNotYetValid):
        verify_role_credential(future, trust)
    assert verify_role_credential(future, trust, now=NOW + timedelta(days=2)).role == "CONSUMER"


def test_revoked_refused_and_persisted(vc, operator, tmp_path):
    path = tmp_path / "revoked.json"
    t = OfflineTrust.load({operator.did}, path)
    verify_role_credential(vc, t)
    t.revoke(credential_hash(vc))
    with pytest.raises(CredentialRevoked):
        verify_role_credential(vc, t)
    with pytest.raises(CredentialRevoked):
        verify_role_credential(vc, OfflineTrust.load({operator.did}, path))


def test_untrusted_issuer_refused(alice, bob, trust):
    self_issued = issue_role_credential(bob, bob.did, "OPERATOR", "Bob Inc", days=1)
    with pytest.raises(UntrustedIssuer):
        verify_role_credential(self_issued, trust)
    # and an issuer field swapped to the operator's DID does not verify either
    forged = dict(self_issued, issuer=next(iter(trust.operators)))
    with pytest.raises(TamperedCredential):
        verify_role_credential(forged, trust)


def test_subject_and_binding_refusals(vc, trust, alice, bob):
    with pytest.raises(SubjectMismatch):
        verify_role_credential(vc, trust, holder_did=bob.did)
    with pytest.raises(SubjectMismatch):
        verify_role_credential(vc, trust, holder_account=bob.address)
    unbound = OfflineTrust(trust.operators)
    with pytest.raises(DidNotBound):
        verify_role_credential(vc, unbound, holder_account=alice.address)
    wrong = OfflineTrust(trust.operators, bindings={alice.did: bob.address})
    with pytest.raises(DidNotBound):
        verify_role_credential(vc, wrong)
    with pytest.raises(RoleMismatch):
        verify_role_credential(vc, trust, role="REGULATOR")


def test_malformed_refused(vc, trust, operator, alice):
    for bad in ("x", {}, dict(vc, type=["VerifiableCredential"]), {k: v for k, v in vc.items() if k != "proof"},
                dict(vc, credentialSubject={"id": alice.did})):
        with pytest.raises(MalformedCredential):
            verify_role_credential(bad, trust)
    with pytest.raises(MalformedCredential):
        issue_role_credential(operator, alice.did, "KING", "Acme")
    with pytest.raises(MalformedCredential):
        issue_role_credential(operator, alice.did, "PROVIDER", "Acme", days=-1)


def test_issued_on_one_machine_verifies_elsewhere(vc, operator, tmp_path):
    """Only the JSON and the operator DID travel: a fresh process state verifies it."""
    (tmp_path / "vc.json").write_text(json.dumps(vc))
    again = json.loads((tmp_path / "vc.json").read_text())
    assert verify_role_credential(again, OfflineTrust({operator.did})).role == "PROVIDER"
    assert isinstance(Identity.create("x").did, str)


def _rewrites(vc):
    """JSON-LD-equivalent rewrites: same graph (the proof still verifies), different JSON hash."""
    def edit(f):
        bad = copy.deepcopy(vc)
        f(bad)
        return bad
    yield "type reordered", edit(lambda v: v.__setitem__("type", v["type"][::-1]))
    yield "type repeated", edit(lambda v: v["type"].append("VerifiableCredential"))
    yield "null member", edit(lambda v: v.__setitem__("note", None))
    yield "@-member", edit(lambda v: v.__setitem__("@note", 1))
    yield "null subject member", edit(lambda v: v["credentialSubject"].__setitem__("x", None))
    yield "null proof member", edit(lambda v: v["proof"].__setitem__("x", None))
    yield "context repeated", edit(lambda v: v["@context"].append({"@vocab": v["@context"][1]["@vocab"]}))
    yield "empty context", edit(lambda v: v["@context"].append({}))


def test_rewritten_revoked_credential_stays_refused(vc, operator, monkeypatch):
    """Revocation is by JSON hash; a rewrite that keeps the signed graph must not revive the credential."""
    t = OfflineTrust({operator.did})
    t.revoke(credential_hash(vc))
    for name, bad in _rewrites(vc):
        assert credential_hash(bad) != credential_hash(vc), name
        with pytest.raises(TamperedCredential, match="rewritten"):
            verify_role_credential(bad, t)
    # the rewrites really keep the proof valid: without the form check they would pass
    import did.credentials as creds
    monkeypatch.setattr(creds, "check_issued_form", lambda vc: None)
    name, bad = next(_rewrites(vc))
    assert verify_role_credential(bad, OfflineTrust({operator.did})).role == "PROVIDER"


def test_issue_from_binding_proof(operator, alice, bob):
    proof = make_binding_proof(alice.ed25519, alice.account, 31337)
    vc = issue_role_credential(operator, alice.did, "DEVELOPER", "Acme", days=1, binding_proof=proof)
    assert vc["credentialSubject"]["account"] == alice.address
    with pytest.raises(DidNotBound):  # a binding proof of another DID
        issue_role_credential(operator, bob.did, "DEVELOPER", "Acme", days=1, binding_proof=proof)
    with pytest.raises(DidNotBound):  # contradicts the account the operator was told
        issue_role_credential(operator, alice.did, "DEVELOPER", "Acme", days=1, binding_proof=proof,
                              subject_account=bob.address)


def test_holder_account_without_named_account_needs_binding_proof(operator, alice, bob):
    bare = issue_role_credential(operator, alice.did, "CONSUMER", "Acme", days=1)
    t = OfflineTrust({operator.did})
    with pytest.raises(DidNotBound):
        verify_role_credential(bare, t, holder_account=alice.address)
    t.add_binding(make_binding_proof(alice.ed25519, alice.account, 31337))
    assert verify_role_credential(bare, t, holder_account=alice.address).account is None
    with pytest.raises(DidNotBound):
        verify_role_credential(bare, t, holder_account=bob.address)
