import json

import pytest
from hypothesis import given, settings, strategies as st

from did.envelope import Envelope, open_envelope, seal
from did.errors import EnvelopeAuthError, EnvelopeNotForYou, MalformedEnvelope
from did.identity import Identity
from did.keys import b64u


def test_seal_open_round_trip(alice, bob):
    env = seal(alice, bob.did, bob.x25519_public, b"layer key 42", "job-7/result")
    raw = env.to_bytes()
    assert Envelope.from_bytes(raw) == env and len(env.digest()) == 32
    assert open_envelope(bob, raw, expected_sender=alice.did, purpose="job-7/result") == b"layer key 42"
    assert b"layer key 42" not in raw


@settings(max_examples=15, deadline=None)
@given(st.binary(max_size=2048))
def test_any_payload_round_trips(payload):
    a, b = _pair
    assert open_envelope(b, seal(a, b.did, b.x25519_public, payload, "p").to_bytes()) == payload


_pair = (Identity.create("ha"), Identity.create("hb"))


def test_wrong_recipient_refused(alice, bob, operator):
    env = seal(alice, bob.did, bob.x25519_public, b"secret", "p")
    with pytest.raises(EnvelopeNotForYou):
        open_envelope(operator, env)
    # right DID, but the recipient's key-agreement key changed (or the sender used a stale one)
    rotated = Identity(bob.name, bob.ed25519, operator.x25519, bob.account)
    with pytest.raises(EnvelopeNotForYou):
        open_envelope(rotated, env)
    # header re-addressed to the operator: the signature no longer matches
    h = dict(env.header, to=operator.did, rpk=b64u(operator.x25519_public))
    with pytest.raises(EnvelopeAuthError):
        open_envelope(operator, Envelope(h, env.ciphertext, env.signature))


def test_tampering_refused(alice, bob):
    env = seal(alice, bob.did, bob.x25519_public, b"secret", "p")
    flipped = bytes([env.ciphertext[0] ^ 1]) + env.ciphertext[1:]
    with pytest.raises(EnvelopeAuthError):
        open_envelope(bob, Envelope(env.header, flipped, env.signature))
    with pytest.raises(EnvelopeAuthError):
        open_envelope(bob, Envelope(dict(env.header, purpose="other"), env.ciphertext, env.signature))


def test_forged_sender_refused(alice, bob, operator):
    """The operator seals but claims to be alice: the signature is checked against alice's DID."""
    env = seal(operator, bob.did, bob.x25519_public, b"fake result", "p")
    h = dict(env.header, **{"from": alice.did})
    with pytest.raises(EnvelopeAuthError):
        open_envelope(bob, Envelope(h, env.ciphertext, env.signature))
    with pytest.raises(EnvelopeAuthError):
        open_envelope(bob, env, expected_sender=alice.did)
    with pytest.raises(EnvelopeAuthError):
        open_envelope(bob, env, purpose="q")


def test_non_canonical_or_garbage_refused(alice, bob):
    env = seal(alice, bob.did, bob.x25519_public, b"x", "p")
    pretty = json.dumps(json.loads(env.to_bytes()), indent=2).encode()
    for bad in (pretty, b"{}", b"nope", json.dumps({"header": {}, "ciphertext": "", "signature": ""}).encode()):
        with pytest.raises(MalformedEnvelope):
            Envelope.from_bytes(bad)
    with pytest.raises(EnvelopeNotForYou):
        seal(alice, "did:web:x", bob.x25519_public, b"x", "p")
