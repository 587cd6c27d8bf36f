"""Per-operation times of the identity layer (offline, no chain), with raw Ed25519 as the floor.

    python -m bench.identity [--json] [--reps 200] [--payload 4096]

Operations: issue (operator signs a role VC, didkit ldp), verify (offline trust: proof +
validity + revocation + binding), seal / open (X25519-HKDF-AES-GCM + Ed25519, ``--payload``
bytes), challenge round trip (issue nonce, holder signs a VP, verifier checks it), binding proof
make/verify, keystore save/load at the production scrypt work factor (few reps). Floor: raw
Ed25519 sign/verify with ``cryptography``. Prints a table on stderr and, with ``--json``, one
JSON object on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from did import keystore
from did.binding import make_binding_proof, verify_binding_proof
from did.challenge import ChallengeVerifier, respond
from did.credentials import OfflineTrust, issue_role_credential, verify_role_credential
from did.envelope import open_envelope, seal
from did.identity import Identity


def _time(fn: Callable[[], object], reps: int) -> dict[str, float]:
    fn()  # warm up
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return {"reps": reps, "mean_ms": statistics.fmean(samples) * 1e3, "p50_ms": samples[len(samples) // 2] * 1e3,
            "p95_ms": samples[min(len(samples) - 1, int(len(samples) * 0.95))] * 1e3}


def run(reps: int, payload_size: int) -> dict[str, object]:
    op, alice, bob = Identity.create("operator"), Identity.create("alice"), Identity.create("bob")
    proof = make_binding_proof(alice.ed25519, alice.account, 31337)
    trust = OfflineTrust({op.did})
    trust.add_binding(proof)
    vc = issue_role_credential(op, alice.did, "PROVIDER", "Acme", days=30, subject_account=alice.address)
    payload = os.urandom(payload_size)
    env = seal(alice, bob.did, bob.x25519_public, payload, "bench").to_bytes()
    verifier = ChallengeVerifier("gateway.bench")
    msg = b"x" * 64
    sig = op.ed25519.sign(msg)
    pub = op.ed25519.public_key()

    def challenge_round_trip() -> None:
        verifier.verify(respond(alice, verifier.issue()))

    ops: dict[str, dict[str, float]] = {
        "issue_credential": _time(lambda: issue_role_credential(op, alice.did, "PROVIDER", "Acme", days=30), reps),
        "verify_credential": _time(lambda: verify_role_credential(vc, trust, holder_account=alice.address), reps),
        "seal": _time(lambda: seal(alice, bob.did, bob.x25519_public, payload, "bench").to_bytes(), reps),
        "open": _time(lambda: open_envelope(bob, env), reps),
        "challenge_round_trip": _time(challenge_round_trip, reps),
        "binding_make": _time(lambda: make_binding_proof(alice.ed25519, alice.account, 31337), reps),
        "binding_verify": _time(lambda: verify_binding_proof(proof), reps),
        "floor_ed25519_sign": _time(lambda: op.ed25519.sign(msg), reps),
        "floor_ed25519_verify": _time(lambda: pub.verify(sig, msg), reps),
    }
    with tempfile.TemporaryDirectory() as tmp:
        n = [0]

        def save() -> None:
            n[0] += 1
            Identity.create(f"k{n[0]}").save(Path(tmp), "pw")

        ops["keystore_save"] = _time(save, 3)
        ops["keystore_load"] = _time(lambda: Identity.load(Path(tmp), "k1", "pw"), 3)
    return {"bench": "identity", "reps": reps, "payload_bytes": payload_size,
            "scrypt_n": keystore.DEFAULT_SCRYPT_N, "ops": ops}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--payload", type=int, default=4096)
    args = ap.parse_args(argv)
    result = run(args.reps, args.payload)
    lines = [f"{'operation':<24}{'mean ms':>10}{'p50 ms':>10}{'p95 ms':>10}{'reps':>7}"]
    for name, r in result["ops"].items():  # type: ignore[union-attr]
        lines.append(f"{name:<24}{r['mean_ms']:>10.3f}{r['p50_ms']:>10.3f}{r['p95_ms']:>10.3f}{r['reps']:>7}")
    print("\n".join(lines), file=sys.stderr)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
