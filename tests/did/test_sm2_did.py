"""SM2 DIDs, DID signatures of either key type, and SM2 sealed envelopes (the ``sm`` profile)."""
from __future__ import annotations

import pytest

from chain.crypto_profile import CryptoProfileMismatch
from chain.sm2 import Sm2Error, Sm2PrivateKey, reference_verify
from did.document import canonical_json
from did.envelope import Envelope, open_envelope, seal
from did.errors import EnvelopeAuthError, EnvelopeNotForYou, UnknownDid
from did.identity import Identity
from did.sm2 import (SM2_ALG, Sm2Identity, compress, decompress, did_from_sm2, open_sm2, seal_sm2, sm2_from_did,
                     verify_did_signature)


def test_sm2_did_key_round_trip() -> None:
    for _ in range(4):
        key = Sm2PrivateKey.generate()
        assert decompress(compress(key.public)) == key.public
        did = did_from_sm2(key.public)
        assert did.startswith("did:key:z") and sm2_from_did(did) == key.public
        assert sm2_from_did(did + "#key-1") == key.public
    ed = Identity.create("ed").did
    with pytest.raises(UnknownDid, match="not an SM2 did:key"):
        sm2_from_did(ed)
    with pytest.raises(Sm2Error):
        decompress(b"\x02" + b"\xff" * 32)


def test_did_signatures_verify_under_either_key_type() -> None:
    sm = Sm2Identity("sm")
    sig = sm.signing.sign(b"statement")
    assert verify_did_signature(sm.did, sig, b"statement")
    assert reference_verify(sm.signing.public, b"statement", sig)         # the second implementation agrees
    assert not verify_did_signature(sm.did, sig, b"statement!")
    ed = Identity.create("ed")
    assert verify_did_signature(ed.did, ed.ed25519.sign(b"statement"), b"statement")
    assert not verify_did_signature(ed.did, sig, b"statement")


def test_sm2_envelope_round_trip_and_refusals() -> None:
    provider, consumer, stranger = Sm2Identity("p"), Sm2Identity("c"), Sm2Identity("s")
    env = seal_sm2(provider, consumer.did, consumer.agreement_public, b"the answer", "result")
    raw = env.to_bytes()
    assert Envelope.from_bytes(raw).header["alg"] == SM2_ALG
    assert open_sm2(consumer, raw, expected_sender=provider.did, purpose="result") == b"the answer"
    with pytest.raises(EnvelopeNotForYou):
        open_sm2(stranger, raw)
    with pytest.raises(EnvelopeAuthError, match="purpose"):
        open_sm2(consumer, raw, purpose="other")
    forged = Envelope(env.header, env.ciphertext[:-1] + bytes([env.ciphertext[-1] ^ 1]), env.signature)
    with pytest.raises(EnvelopeAuthError, match="signature"):
        open_sm2(consumer, forged)
    resigned = Envelope(env.header, forged.ciphertext,
                        provider.signing.sign(b"tds-envelope/v1" + canonical_json(env.header) + forged.ciphertext))
    with pytest.raises(EnvelopeAuthError, match="does not decrypt"):
        open_sm2(consumer, resigned)


def test_profiles_of_envelopes_are_never_mixed() -> None:
    alice, bob = Identity.create("alice"), Identity.create("bob")
    default_env = seal(alice, bob.did, bob.x25519_public, b"x", "p").to_bytes()
    with pytest.raises(CryptoProfileMismatch) as exc:
        open_sm2(Sm2Identity("c"), default_env)
    assert (exc.value.expected, exc.value.found) == ("sm", "default")
    sm_env = seal_sm2(Sm2Identity("p"), did_from_sm2(Sm2PrivateKey.generate().public),
                      Sm2PrivateKey.generate().public, b"x", "p").to_bytes()
    with pytest.raises(CryptoProfileMismatch) as exc:
        open_envelope(bob, sm_env)
    assert (exc.value.expected, exc.value.found) == ("default", "sm")
