"""Presentations bound to one request, and challenges burnt by every attempt (issue 12, item 14c/d),
at the verifier and through the guard on a real FastAPI app."""
from __future__ import annotations

import copy

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from did.challenge import BOUND_CONTEXT, ChallengeVerifier, RequestBinding, respond
from did.errors import (ChallengeReplayed, DomainMismatch, RequestMismatch, RequestNotBound, TamperedPresentation)
from did.guard import ChallengeGuard, presentation_header

PREPARE_5 = RequestBinding.of("POST", "/v1/jobs/5/prepare", b'{"query":{}}')


def test_bound_presentation_verifies_for_its_request_only(alice):
    v = ChallengeVerifier("keyservice.tds.local")
    vp = respond(alice, v.issue(), request=PREPARE_5)
    assert vp["tdsRequest"] == PREPARE_5.to_json() and vp["@context"] == BOUND_CONTEXT
    assert v.verify(vp, request=PREPARE_5, require_binding=True).did == alice.did
    for other in (RequestBinding.of("POST", "/v1/jobs/6/release", b'{"query":{}}'),
                  RequestBinding.of("POST", "/v1/jobs/5/prepare", b'{"query":{"x":1}}'),
                  RequestBinding.of("GET", "/v1/jobs/5/prepare", b'{"query":{}}')):
        with pytest.raises(RequestMismatch, match="/v1/jobs/5/prepare"):
            v.verify(respond(alice, v.issue(), request=PREPARE_5), request=other)


def test_binding_is_covered_by_the_signature(alice):
    """Rewriting the binding to fit another request breaks the proof; so does swapping the context."""
    v = ChallengeVerifier("keyservice.tds.local")
    release_6 = RequestBinding.of("POST", "/v1/jobs/6/release", b"{}")
    moved = copy.deepcopy(respond(alice, v.issue(), request=PREPARE_5))
    moved["tdsRequest"] = release_6.to_json()
    with pytest.raises(TamperedPresentation, match="does not verify"):
        v.verify(moved, request=release_6)
    swapped = copy.deepcopy(respond(alice, v.issue(), request=PREPARE_5))
    swapped["@context"] = [swapped["@context"][0], {"tdsRequest": "https://tds.example/vocab#other"}]
    with pytest.raises(TamperedPresentation, match="context"):
        v.verify(swapped, request=PREPARE_5)
    # JSON-LD reads ["x"] as "x": the signature would still hold, so only the exact shape is accepted
    listed = copy.deepcopy(respond(alice, v.issue(), request=PREPARE_5))
    listed["tdsRequest"]["path"] = [listed["tdsRequest"]["path"]]
    with pytest.raises(TamperedPresentation, match="three strings"):
        v.verify(listed, request=PREPARE_5)


def test_unbound_presentations_only_where_allowed(alice):
    v = ChallengeVerifier("gateway.tds.local")
    assert v.verify(respond(alice, v.issue()), request=PREPARE_5).did == alice.did  # the gateway's default
    with pytest.raises(RequestNotBound, match="RequestBinding.of"):
        v.verify(respond(alice, v.issue()), request=PREPARE_5, require_binding=True)
    with pytest.raises(RequestMismatch, match="cannot tell"):  # bound, but the service has no body digest
        v.verify(respond(alice, v.issue(), request=PREPARE_5), request=None)


def test_every_refused_attempt_burns_its_nonce(alice, bob):
    v = ChallengeVerifier("keyservice.tds.local")
    attempts = [
        (lambda c: respond(alice, c), RequestNotBound, {"require_binding": True, "request": PREPARE_5}),
        (lambda c: respond(alice, c, request=PREPARE_5), RequestMismatch,
         {"request": RequestBinding.of("POST", "/v1/jobs/6/release", b"")}),
        (lambda c: {**respond(alice, c), "holder": bob.did}, TamperedPresentation, {}),
        (lambda c: respond(alice, c.nonce, domain="evil.example"), DomainMismatch, {}),
    ]
    for make, refusal, kwargs in attempts:
        c = v.issue()
        with pytest.raises(refusal):
            v.verify(make(c), **kwargs)
        with pytest.raises(ChallengeReplayed):  # the genuine answer to the same challenge is too late
            v.verify(respond(alice, c))


def test_guard_checks_a_binding_on_a_real_app(alice):
    """A GET has no body: its binding hashes as empty, no middleware needed; the gateway-style guard
    (bind_request=False) still checks a binding it is given, and bind_request=True requires one."""
    def client(guard: ChallengeGuard) -> TestClient:
        app = FastAPI()

        def caller(request: Request):
            return guard(request)

        @app.get("/whoami")
        def whoami(who=Depends(caller)) -> dict:
            return {"did": who.did}

        @app.get("/other")
        def other(who=Depends(caller)) -> dict:
            return {"did": who.did}

        return TestClient(app)

    lax = client(ChallengeGuard(ChallengeVerifier("gateway.tds.local")))
    www = lax.get("/whoami").headers["www-authenticate"]
    ok = lax.get("/whoami", headers=presentation_header(alice, www, request=RequestBinding.of("GET", "/whoami")))
    assert ok.status_code == 200 and ok.json() == {"did": alice.did}
    www = lax.get("/whoami").headers["www-authenticate"]
    res = lax.get("/other", headers=presentation_header(alice, www, request=RequestBinding.of("GET", "/whoami")))
    assert res.status_code == 401 and res.json()["detail"].startswith("RequestMismatch")
    strict = client(ChallengeGuard(ChallengeVerifier("keyservice.tds.local"), bind_request=True))
    www = strict.get("/whoami").headers["www-authenticate"]
    res = strict.get("/whoami", headers=presentation_header(alice, www))
    assert res.status_code == 401 and res.json()["detail"].startswith("RequestNotBound")
    www = strict.get("/whoami").headers["www-authenticate"]
    res = strict.get("/whoami?x=1", headers=presentation_header(alice, www, request=RequestBinding.of("GET", "/whoami")))
    assert res.status_code == 401 and res.json()["detail"].startswith("RequestMismatch")  # the query is bound too
