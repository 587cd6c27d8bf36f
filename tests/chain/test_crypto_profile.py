"""The ``sm`` profile's primitives against the standards' published examples, SM2 cross-checked
between two independent implementations, and the profile switch (docs/crypto-profile.md)."""
from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

from chain.config import crypto_profile_name, load_settings
from chain.crypto_profile import (CryptoProfileMismatch, UnknownCryptoProfile, configured_profile, get_profile,
                                  hash_function, require_profile)
from chain.sm import (InvalidTag, siv_decrypt, siv_encrypt, sm3, sm4_encrypt_block, sm4_gcm_open, sm4_gcm_seal,
                      sm4_siv_decrypt, sm4_siv_encrypt)
from chain.sm2 import (Sm2Error, Sm2PrivateKey, Sm2SealError, reference_public, reference_sign, reference_verify,
                       sm2_open, sm2_seal, sm2_verify)

# GB/T 32918 (GM/T 0003.5 example on the recommended curve): key pair, message, k, signature
SM2_D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
SM2_PUB = bytes.fromhex("04" "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                        "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
SM2_MSG = b"message digest"
SM2_K = bytes.fromhex("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21")
SM2_SIG = bytes.fromhex("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
                        "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")


# --- SM3 (GB/T 32905) and SM4 (GB/T 32907) ---------------------------------------------------------
def test_sm3_published_examples() -> None:
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    assert hash_function("sm3") is sm3


def test_sm4_published_example() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert sm4_encrypt_block(key, key).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_gcm_rfc8998_example_and_tampering() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plain = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                          "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
    sealed = sm4_gcm_seal(key, iv, plain, aad)
    assert sealed[:-16].hex().upper() == ("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
                                          "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D")
    assert sealed[-16:].hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"
    assert sm4_gcm_open(key, iv, sealed, aad) == plain
    for bad in (sealed[:-1] + bytes([sealed[-1] ^ 1]), b"\x00" + sealed[1:]):
        with pytest.raises(InvalidTag):
            sm4_gcm_open(key, iv, bad, aad)
    with pytest.raises(InvalidTag):
        sm4_gcm_open(key, iv, sealed, aad + b"x")


# --- the SIV construction -------------------------------------------------------------------------
@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 48])
def test_siv_over_aes_is_exactly_rfc5297_aes_siv(length: int) -> None:
    """The generic SIV code instantiated with AES reproduces cryptography's AESSIV byte for byte,
    so SM4-SIV is RFC 5297 with only the block cipher changed."""
    for key_bytes in (32, 64):
        key, plain, ad = os.urandom(key_bytes), os.urandom(length), [b"domain", os.urandom(20)]
        ct = siv_encrypt(algorithms.AES, key, plain, ad)
        assert ct == AESSIV(key).encrypt(plain, ad)
        assert siv_decrypt(algorithms.AES, key, ct, ad) == plain


def test_sm4_siv_is_deterministic_bound_to_its_domain_and_authenticated() -> None:
    key = os.urandom(32)
    a, b = sm4_siv_encrypt(key, b"s-alice", [b"customers"]), sm4_siv_encrypt(key, b"s-alice", [b"customers"])
    assert a == b and len(a) == 16 + len(b"s-alice")
    assert sm4_siv_encrypt(key, b"s-alice", [b"suppliers"]) != a
    assert sm4_siv_encrypt(key, b"s-bob", [b"customers"]) != a
    assert sm4_siv_decrypt(key, a, [b"customers"]) == b"s-alice"
    for bad in ([b"suppliers"], None):
        with pytest.raises(InvalidTag):
            sm4_siv_decrypt(key if bad else os.urandom(32), a, bad or [b"customers"])
    with pytest.raises(InvalidTag):
        sm4_siv_decrypt(key, a[:-1] + bytes([a[-1] ^ 1]), [b"customers"])
    with pytest.raises(ValueError):
        sm4_siv_encrypt(os.urandom(64), b"x", [])


# --- SM2 (GB/T 32918), two implementations ---------------------------------------------------------
def test_sm2_published_example_in_both_libraries() -> None:
    key = Sm2PrivateKey(SM2_D)
    assert key.public == SM2_PUB == reference_public(SM2_D)
    assert reference_sign(SM2_D, SM2_MSG, SM2_K) == SM2_SIG        # snowland-smx, the standard's k
    assert sm2_verify(SM2_PUB, SM2_MSG, SM2_SIG)                    # tongsuopy accepts the standard's signature
    assert reference_verify(SM2_PUB, SM2_MSG, SM2_SIG)
    assert not sm2_verify(SM2_PUB, b"message digesT", SM2_SIG)
    assert not sm2_verify(SM2_PUB, SM2_MSG, SM2_SIG[:-1] + b"\x00")


def test_sm2_signatures_cross_check_between_tongsuopy_and_snowland() -> None:
    for i in range(3):
        key, msg = Sm2PrivateKey.generate(), f"cross-check {i}".encode()
        assert key.public == reference_public(key.secret)
        sig = key.sign(msg)                                          # tongsuopy signs …
        assert len(sig) == 64 and reference_verify(key.public, msg, sig)   # … snowland verifies
        ref = reference_sign(key.secret, msg, os.urandom(32))        # snowland signs …
        assert sm2_verify(key.public, msg, ref)                      # … tongsuopy verifies
        assert not sm2_verify(key.public, msg + b"!", sig)
        assert not reference_verify(key.public, msg + b"!", ref)


def test_sm2_keys_and_points_are_checked() -> None:
    with pytest.raises(Sm2Error):
        Sm2PrivateKey(bytes(32))
    off_curve = SM2_PUB[:-1] + bytes([SM2_PUB[-1] ^ 1])
    with pytest.raises(Sm2Error, match="not a point on the curve"):
        sm2_verify(off_curve, SM2_MSG, SM2_SIG)
    with pytest.raises(Sm2Error, match="65 bytes"):
        sm2_seal(SM2_PUB[1:], b"x")


def test_sm2_sealing_opens_only_for_its_recipient() -> None:
    alice, bob = Sm2PrivateKey.generate(), Sm2PrivateKey.generate()
    box = sm2_seal(alice.public, b"layer keys", b"job 7")
    assert box[:1] == b"\x04" and len(box) == 65 + len(b"layer keys") + 16
    assert sm2_open(alice, box, b"job 7") == b"layer keys"
    assert sm2_seal(alice.public, b"layer keys", b"job 7") != box          # fresh ephemeral key each time
    for who, aad, blob in ((bob, b"job 7", box), (alice, b"job 8", box),
                           (alice, b"job 7", box[:70] + bytes([box[70] ^ 1]) + box[71:])):
        with pytest.raises(Sm2SealError):
            sm2_open(who, blob, aad)


# --- the profile switch ----------------------------------------------------------------------------
def test_default_profile_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TDS_CRYPTO_PROFILE", raising=False)
    p = configured_profile()
    assert p.name == "default" and load_settings().crypto_profile == "default"
    key, nonce = os.urandom(32), os.urandom(12)
    assert p.aead_seal(key, nonce, b"x", b"a") == AESGCM(key).encrypt(nonce, b"x", b"a")
    det = os.urandom(64)
    assert p.det_encrypt(det, b"v", [b"d"]) == AESSIV(det).encrypt(b"v", [b"d"])
    assert (p.hash_name, p.merkle_hash) == ("sha256", "keccak256")


def test_sm_profile_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "SM")
    p = configured_profile()
    assert crypto_profile_name() == "sm" and load_settings().crypto_profile == "sm"
    assert (p.aead_name, p.det_name, p.hash_name, p.merkle_hash, p.signature_name) == \
        ("SM4-GCM", "SM4-SIV", "sm3", "sm3", "SM2")
    assert p.digest(b"abc") == sm3(b"abc")
    key, nonce = os.urandom(16), os.urandom(12)
    assert p.aead_open(key, nonce, p.aead_seal(key, nonce, b"x", b"a"), b"a") == b"x"
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "gost")
    with pytest.raises(ValueError, match="TDS_CRYPTO_PROFILE='gost'"):
        configured_profile()


def test_profiles_are_refused_by_name() -> None:
    with pytest.raises(UnknownCryptoProfile):
        get_profile("aes")
    assert get_profile(None).name == "default"
    require_profile("sm", "sm", "x")
    require_profile("default", None, "x")
    with pytest.raises(CryptoProfileMismatch) as exc:
        require_profile("default", "sm", "dataset d1")
    assert (exc.value.expected, exc.value.found, exc.value.subject) == ("default", "sm", "dataset d1")
    assert "dataset d1 is of the 'sm' cryptography profile where 'default' is required" in str(exc.value)
