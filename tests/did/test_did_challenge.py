import copy

import pytest

from did.binding import make_binding_proof
from did.challenge import ChallengeVerifier, respond
from did.credentials import OfflineTrust, issue_role_credential
from did.errors import (ChallengeExpired, ChallengeReplayed, CredentialExpired, DomainMismatch, RoleMismatch,
                        TamperedPresentation, UnknownChallenge)


class Clock:
    def __init__(self, t=1_900_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_round_trip_and_replay(alice):
    v = ChallengeVerifier("gateway.tds.local")
    c = v.issue()
    vp = respond(alice, c)
    assert vp["proof"]["challenge"] == c.nonce and vp["proof"]["domain"] == "gateway.tds.local"
    assert v.verify(vp).did == alice.did
    with pytest.raises(ChallengeReplayed):
        v.verify(vp)


def test_expired_challenge_refused(alice):
    clock = Clock()
    v = ChallengeVerifier("oracle.tds.local", ttl=30, clock=clock)
    vp = respond(alice, v.issue())
    clock.t += 31
    with pytest.raises(ChallengeExpired):
        v.verify(vp)


def test_domain_mismatch_refused(alice):
    gw = ChallengeVerifier("gateway.tds.local")
    evil = ChallengeVerifier("evil.example")
    c = gw.issue()
    with pytest.raises(DomainMismatch):
        evil.verify(respond(alice, c))
    with pytest.raises(DomainMismatch):  # holder answered for another domain
        gw.verify(respond(alice, c.nonce, domain="evil.example"))


def test_unknown_or_altered_challenge_refused(alice):
    v = ChallengeVerifier("gateway.tds.local")
    other = ChallengeVerifier("gateway.tds.local")  # same domain, other secret
    with pytest.raises(UnknownChallenge):
        v.verify(respond(alice, other.issue()))
    c = v.issue()
    exp, rand, mac = c.nonce.split(".")
    with pytest.raises(UnknownChallenge):  # extending the expiry breaks the MAC
        v.verify(respond(alice, f"{int(exp) + 3600}.{rand}.{mac}", domain=v.domain))
    with pytest.raises(UnknownChallenge):
        v.verify(respond(alice, "garbage", domain=v.domain))


def test_tampered_presentation_refused(alice, bob):
    v = ChallengeVerifier("gateway.tds.local")
    stolen = copy.deepcopy(respond(alice, v.issue()))
    stolen["holder"] = bob.did
    with pytest.raises(TamperedPresentation):
        v.verify(stolen)
    forged = copy.deepcopy(respond(alice, v.issue()))
    forged["proof"]["verificationMethod"] = bob.verification_method
    forged["holder"] = bob.did
    with pytest.raises(TamperedPresentation):
        v.verify(forged)
    with pytest.raises(TamperedPresentation):
        v.verify({"holder": alice.did})
    vp = respond(alice, v.issue())
    tampered = copy.deepcopy(vp)
    tampered["holder"] = bob.did
    with pytest.raises(TamperedPresentation):
        v.verify(tampered)
    with pytest.raises(ChallengeReplayed):  # the refused attempt burnt the nonce: the genuine answer is late
        v.verify(vp)


def test_presentation_with_role_credential(operator, alice, bob):
    trust = OfflineTrust({operator.did})
    trust.add_binding(make_binding_proof(alice.ed25519, alice.account, 31337))
    vc = issue_role_credential(operator, alice.did, "CONSUMER", "Acme", days=1, subject_account=alice.address)
    v = ChallengeVerifier("gateway.tds.local")
    auth = v.verify(respond(alice, v.issue(), credentials=[vc]), trust, holder_account=alice.address,
                    role="CONSUMER")
    assert auth.roles() == {"CONSUMER"}
    with pytest.raises(RoleMismatch):
        v.verify(respond(alice, v.issue(), credentials=[vc]), trust, role="PROVIDER")
    from datetime import datetime, timedelta, timezone
    now = datetime.now(timezone.utc)
    old = issue_role_credential(operator, alice.did, "CONSUMER", "Acme", valid_from=now - timedelta(days=2),
                                valid_until=now - timedelta(days=1))
    with pytest.raises(CredentialExpired):
        v.verify(respond(alice, v.issue(), credentials=[old]), trust)
    from did.errors import SubjectMismatch
    with pytest.raises(SubjectMismatch):  # bob presents alice's credential
        v.verify(respond(bob, v.issue(), credentials=[vc]), trust)
