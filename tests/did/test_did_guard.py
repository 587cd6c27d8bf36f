"""Challenge–response over HTTP: the gateway guard refuses, challenges, and admits real presentations."""
from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from did.binding import make_binding_proof
from did.challenge import ChallengeVerifier, respond
from did.credentials import OfflineTrust, credential_hash, issue_role_credential
from did.errors import UnknownChallenge
from did.guard import HEADER, ChallengeGuard, encode_presentation, parse_challenge_header, presentation_header


class Clock:
    def __init__(self, t: float = 1_900_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def app_with(guard: ChallengeGuard) -> TestClient:
    """A minimal app using the guard the way the gateway does (a dependency on each endpoint)."""
    app = FastAPI()

    def caller(request: Request):
        request.state.caller = guard(request)
        return request.state.caller

    @app.get("/whoami")
    def whoami(who=Depends(caller)) -> dict:
        return {"did": who.did, "roles": sorted(who.roles())}

    return TestClient(app)


@pytest.fixture
def trust(operator, alice):
    t = OfflineTrust({operator.did})
    t.add_binding(make_binding_proof(alice.ed25519, alice.account, 31337))
    return t


def test_unauthenticated_gets_a_challenge_then_gets_in(alice):
    client = app_with(ChallengeGuard(ChallengeVerifier("gateway.tds.local")))
    first = client.get("/whoami")
    assert first.status_code == 401 and HEADER in first.json()["detail"]
    challenge = parse_challenge_header(first.headers["www-authenticate"])
    assert challenge.domain == "gateway.tds.local"
    ok = client.get("/whoami", headers=presentation_header(alice, first.headers["www-authenticate"]))
    assert ok.status_code == 200 and ok.json() == {"did": alice.did, "roles": []}


def test_replayed_answer_refused_with_a_new_challenge(alice):
    client = app_with(ChallengeGuard(ChallengeVerifier("gateway.tds.local")))
    www = client.get("/whoami").headers["www-authenticate"]
    header = presentation_header(alice, www)
    assert client.get("/whoami", headers=header).status_code == 200
    again = client.get("/whoami", headers=header)
    assert again.status_code == 401 and again.json()["detail"].startswith("ChallengeReplayed")
    assert parse_challenge_header(again.headers["www-authenticate"]).nonce != parse_challenge_header(www).nonce


def test_expired_and_foreign_domain_answers_refused(alice):
    clock = Clock()
    verifier = ChallengeVerifier("gateway.tds.local", ttl=30, clock=clock)
    client = app_with(ChallengeGuard(verifier))
    header = presentation_header(alice, client.get("/whoami").headers["www-authenticate"])
    clock.t += 31
    res = client.get("/whoami", headers=header)
    assert res.status_code == 401 and res.json()["detail"].startswith("ChallengeExpired")
    # an answer made for another service's challenge is refused here
    other = ChallengeVerifier("storage.tds.local", clock=clock)
    res = client.get("/whoami", headers={HEADER: encode_presentation(respond(alice, other.issue()))})
    assert res.status_code == 401 and res.json()["detail"].startswith("DomainMismatch")


def test_garbage_headers_refused(alice):
    client = app_with(ChallengeGuard(ChallengeVerifier("gateway.tds.local")))
    for value in ("!!!", encode_presentation([]), "A" * 40_000):  # type: ignore[arg-type]
        res = client.get("/whoami", headers={HEADER: value})
        assert res.status_code == 401 and res.json()["detail"].startswith("UnknownChallenge"), value[:20]
    with pytest.raises(UnknownChallenge):
        parse_challenge_header('Basic realm="x"')


def test_role_required(operator, alice, trust):
    guard = ChallengeGuard(ChallengeVerifier("gateway.tds.local"), trust, role="PROVIDER")
    client = app_with(guard)
    consumer = issue_role_credential(operator, alice.did, "CONSUMER", "Acme", days=1, subject_account=alice.address)
    provider = issue_role_credential(operator, alice.did, "PROVIDER", "Acme", days=1, subject_account=alice.address)
    www = client.get("/whoami").headers["www-authenticate"]
    res = client.get("/whoami", headers=presentation_header(alice, www, credentials=[consumer]))
    assert res.status_code == 403 and res.json()["detail"].startswith("RoleMismatch")
    www = client.get("/whoami").headers["www-authenticate"]
    res = client.get("/whoami", headers=presentation_header(alice, www, credentials=[provider]))
    assert res.status_code == 200 and res.json()["roles"] == ["PROVIDER"]
    trust.revoke(credential_hash(provider))
    www = client.get("/whoami").headers["www-authenticate"]
    res = client.get("/whoami", headers=presentation_header(alice, www, credentials=[provider]))
    assert res.status_code == 401 and res.json()["detail"].startswith("CredentialRevoked")
    with pytest.raises(ValueError):
        ChallengeGuard(ChallengeVerifier("x"), role="PROVIDER")


def test_plugs_into_the_gateway(alice, tmp_settings):
    """The real gateway app: 401 + challenge without an answer; past the guard with one."""
    from tds.gateway.app import create_app

    client = TestClient(create_app(tmp_settings, guard=ChallengeGuard(ChallengeVerifier("gateway.tds.local")),
                                   fetch=lambda _cid: None))
    first = client.get("/catalog")
    assert first.status_code == 401 and "error" in first.json()
    res = client.get("/catalog", headers=presentation_header(alice, first.headers["www-authenticate"]))
    assert res.status_code == 503  # authenticated; the chain of this throw-away home is not running
