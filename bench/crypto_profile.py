"""The two cryptography profiles side by side (docs/crypto-profile.md).

    python -m bench.crypto_profile [--json] [--mb 16] [--reps 200]

Bulk AEAD over ``--mb`` MiB in 1 MiB messages (the RND layer's shape: whole column chunks):
AES-256-GCM vs SM4-GCM (``aes_mb_per_s``, ``sm4_mb_per_s``); hashes SHA-256 vs SM3; the DET
layer per value, AES-256-SIV vs SM4-SIV; SM2 signatures and verifications per second in the two
libraries measured for the choice (tongsuopy, used; snowland-smx, the cross-check) beside Ed25519;
one key agreement, X25519 vs SM2. Table on stderr; with ``--json`` one JSON object on stdout."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

from bench import emit
from chain.sm import sm3, sm4_gcm_seal, sm4_siv_encrypt
from chain.sm2 import Sm2PrivateKey, reference_sign, reference_verify, sm2_shared_point, sm2_verify

MB = 1 << 20


def rate(fn: Callable[[int], Any], n: int) -> float:
    """Calls of fn(i) per second over i in range(n), after one warm-up call."""
    fn(0)
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def bulk(mb: int) -> dict[str, float]:
    data, nonce = os.urandom(MB), os.urandom(12)
    aes, sm4 = AESGCM(os.urandom(32)), os.urandom(16)
    return {"aes_mb_per_s": rate(lambda i: aes.encrypt(nonce, data, b"hdr"), mb),
            "sm4_mb_per_s": rate(lambda i: sm4_gcm_seal(sm4, nonce, data, b"hdr"), mb),
            "sha256_mb_per_s": rate(lambda i: hashlib.sha256(data).digest(), mb),
            "sm3_mb_per_s": rate(lambda i: sm3(data), mb)}


def det(reps: int) -> dict[str, float]:
    values = [b"scustomer-%08d" % i for i in range(reps)]
    aes, sm4 = AESSIV(os.urandom(64)), os.urandom(32)
    return {"aes_siv_us": 1e6 / rate(lambda i: aes.encrypt(values[i], [b"customers"]), reps),
            "sm4_siv_us": 1e6 / rate(lambda i: sm4_siv_encrypt(sm4, values[i], [b"customers"]), reps)}


def signatures(reps: int) -> dict[str, float]:
    msg = b"tds-envelope/v1 header and ciphertext " * 8
    key = Sm2PrivateKey.generate()
    sig, pub = key.sign(msg), key.public
    slow = max(10, reps // 20)
    ref_sig = reference_sign(key.secret, msg, os.urandom(32))
    ed = Ed25519PrivateKey.generate()
    ed_sig = ed.sign(msg)
    xa, xb = X25519PrivateKey.generate(), X25519PrivateKey.generate().public_key()
    return {"sm2_tongsuopy_sign_per_s": rate(lambda i: key.sign(msg), reps),
            "sm2_tongsuopy_verify_per_s": rate(lambda i: sm2_verify(pub, msg, sig), reps),
            "sm2_snowland_sign_per_s": rate(lambda i: reference_sign(key.secret, msg, os.urandom(32)), slow),
            "sm2_snowland_verify_per_s": rate(lambda i: reference_verify(pub, msg, ref_sig), slow),
            "ed25519_sign_per_s": rate(lambda i: ed.sign(msg), reps),
            "ed25519_verify_per_s": rate(lambda i: ed.public_key().verify(ed_sig, msg), reps),
            "x25519_agreement_per_s": rate(lambda i: xa.exchange(xb), reps),
            "sm2_agreement_per_s": rate(lambda i: sm2_shared_point(key.secret, pub), slow)}


def render(r: dict[str, Any]) -> str:
    rows = [("AEAD (1 MiB messages)", f"AES-256-GCM {r['aes_mb_per_s']:.0f} MB/s",
             f"SM4-GCM {r['sm4_mb_per_s']:.0f} MB/s"),
            ("hash", f"SHA-256 {r['sha256_mb_per_s']:.0f} MB/s", f"SM3 {r['sm3_mb_per_s']:.0f} MB/s"),
            ("DET per value", f"AES-SIV {r['aes_siv_us']:.1f} µs", f"SM4-SIV {r['sm4_siv_us']:.1f} µs"),
            ("signatures /s", f"Ed25519 {r['ed25519_sign_per_s']:.0f} sign, {r['ed25519_verify_per_s']:.0f} verify",
             f"SM2 tongsuopy {r['sm2_tongsuopy_sign_per_s']:.0f} sign, {r['sm2_tongsuopy_verify_per_s']:.0f} verify"),
            ("SM2, second library", "", f"snowland-smx {r['sm2_snowland_sign_per_s']:.0f} sign, "
                                        f"{r['sm2_snowland_verify_per_s']:.0f} verify"),
            ("key agreement /s", f"X25519 {r['x25519_agreement_per_s']:.0f}", f"SM2 {r['sm2_agreement_per_s']:.0f}")]
    return "\n".join(f"{a:<24}{b:<44}{c}" for a, b, c in [("", "default", "sm"), *rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.crypto_profile", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--mb", type=int, default=16, help="MiB encrypted and hashed per primitive")
    ap.add_argument("--reps", type=int, default=200, help="DET values and signatures per measurement")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"mb": args.mb, "reps": args.reps}
    result.update(bulk(args.mb))
    result.update(det(args.reps))
    result.update(signatures(args.reps))
    return emit(result, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
