"""Per-operation times of the identity layer (offline, no chain), each beside its bare-primitive baseline.

    python -m bench.identity [--json] [--reps 200] [--payload 4096] [--chain]

Operations: issue (operator signs a role VC, didkit ldp), verify (offline trust: proof +
validity + revocation + binding), seal / open (X25519-HKDF-AES-GCM + Ed25519, ``--payload``
bytes), challenge round trip (issue nonce, holder signs a VP, verifier checks it), binding proof
make/verify, keystore save/load at the production scrypt work factor (few reps). Beside each, its
baseline: the bare primitives (``cryptography`` / eth-account) it is built on, on the same bytes,
and the ratio. ``--chain`` adds bind / grant transactions and verification from the chain alone
on a fresh embedded anvil (reps / 4). Prints a table on stderr and, with ``--json``, one JSON object on stdout.
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

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.messages import encode_defunct

from did import keystore
from did.binding import make_binding_proof, verify_binding_proof
from did.challenge import ChallengeVerifier, respond
from did.credentials import OfflineTrust, issue_role_credential, verify_role_credential
from did.document import canonical_json
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
    # baselines: the bare primitives each operation is built on, on the same bytes
    body = canonical_json({k: v for k, v in vc.items() if k != "proof"})
    sig = op.ed25519.sign(body)
    op_pub, bob_pub = op.ed25519.public_key(), bob.x25519.public_key()
    aes, nonce = AESGCM(os.urandom(32)), os.urandom(12)
    ct = aes.encrypt(nonce, payload, None)
    alice_pub, ct_sig = alice.ed25519.public_key(), alice.ed25519.sign(ct)
    statement = canonical_json(proof["statement"])
    eth_msg = encode_defunct(text=statement.decode())
    eth_sig = alice.account.sign_message(eth_msg).signature

    def raw_seal() -> None:
        X25519PrivateKey.generate().exchange(bob_pub)
        aes.encrypt(nonce, payload, None)
        alice.ed25519.sign(ct)

    def raw_open() -> None:
        bob.x25519.exchange(bob_pub)
        alice_pub.verify(ct_sig, ct)
        aes.decrypt(nonce, ct, None)

    def raw_sign_verify() -> None:
        op_pub.verify(op.ed25519.sign(body), body)

    def challenge_round_trip() -> None:
        verifier.verify(respond(alice, verifier.issue()))

    with tempfile.TemporaryDirectory() as tmp:
        n = [0]

        def save() -> None:
            n[0] += 1
            Identity.create(f"k{n[0]}").save(Path(tmp), "pw")

        def two_scrypts() -> None:
            for _ in range(2):
                Scrypt(salt=os.urandom(16), length=32, n=keystore.DEFAULT_SCRYPT_N, r=8, p=1).derive(b"pw")

        pairs: dict[str, tuple[Callable[[], object], Callable[[], object], str, int]] = {
            "issue_credential": (lambda: issue_role_credential(op, alice.did, "PROVIDER", "Acme", days=30),
                                 lambda: op.ed25519.sign(body), "Ed25519 sign of the credential JSON", reps),
            "verify_credential": (lambda: verify_role_credential(vc, trust, holder_account=alice.address),
                                  lambda: op_pub.verify(sig, body), "Ed25519 verify of the credential JSON", reps),
            "seal": (lambda: seal(alice, bob.did, bob.x25519_public, payload, "bench").to_bytes(), raw_seal,
                     "X25519 keygen+ECDH, AES-256-GCM, Ed25519 sign", reps),
            "open": (lambda: open_envelope(bob, env), raw_open, "X25519 ECDH, Ed25519 verify, AES-256-GCM", reps),
            "challenge_round_trip": (challenge_round_trip, raw_sign_verify, "Ed25519 sign + verify", reps),
            "binding_make": (lambda: make_binding_proof(alice.ed25519, alice.account, 31337),
                             lambda: (alice.ed25519.sign(statement), alice.account.sign_message(eth_msg)),
                             "Ed25519 sign + EIP-191 sign", reps),
            "binding_verify": (lambda: verify_binding_proof(proof),
                               lambda: Account.recover_message(eth_msg, signature=eth_sig),
                               "EIP-191 recover alone", reps),
            "keystore_save": (save, two_scrypts, "two scrypt derivations", 3),
            "keystore_load": (lambda: Identity.load(Path(tmp), "k1", "pw"), two_scrypts, "two scrypt derivations", 3),
        }
        ops: dict[str, dict[str, object]] = {}
        for name, (fn, base, base_name, r) in pairs.items():
            m, b = _time(fn, r), _time(base, r)
            ops[name] = {**m, "baseline": base_name, "baseline_mean_ms": b["mean_ms"],
                         "ratio": m["mean_ms"] / b["mean_ms"] if b["mean_ms"] else None}
    return {"bench": "identity", "reps": reps, "payload_bytes": payload_size,
            "scrypt_n": keystore.DEFAULT_SCRYPT_N, "ops": ops}


def run_chain(reps: int) -> dict[str, dict[str, object]]:
    """On a fresh embedded anvil: bind and grant transactions, and verification from the chain alone."""
    from dataclasses import replace

    from did.registry import ChainTrust, IdentityRegistryClient
    from chain.accounts import dev_account
    from chain.compiler import compile_project
    from chain.connection import connect
    from chain.deploy import deploy_artifact
    from chain.node import EmbeddedNode, free_port
    from chain.tx import Sender
    from chain.config import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(load_settings(), home=Path(tmp), chain_port=free_port(), rpc_url=None, chain_id=None,
                           deployment_file=Path(tmp) / "deployment.json")
        node = EmbeddedNode(settings)
        node.up(fresh=True)
        try:
            w3 = connect(settings)
            admin = dev_account(0)
            reg = deploy_artifact(Sender(w3, admin), compile_project(settings)["IdentityRegistry"], admin.address)
            client = IdentityRegistryClient(w3, reg)
            op, alice = Identity.create("operator", admin), Identity.create("alice", dev_account(3))
            client.bind(op)
            vc = issue_role_credential(op, alice.did, "PROVIDER", "Acme", days=30, subject_account=alice.address)
            offline = OfflineTrust({op.did})
            offline.add_binding(alice.binding_proof(client.chain_id))
            counter = [0]

            def bind() -> None:  # re-binding the same DID rotates the record in place
                counter[0] += 1
                alice.binding = make_binding_proof(alice.ed25519, alice.account, client.chain_id, counter[0])
                client.bind(alice)

            def grant() -> None:
                client.grant_from_credential(op.account, vc)

            ops = {"chain_bind_tx": (bind, lambda: make_binding_proof(alice.ed25519, alice.account, 31337),
                                     "binding proof made offline"),
                   "chain_grant_tx": (grant, lambda: client.has_participant_role(alice.address, "PROVIDER"),
                                      "one eth_call round trip"),
                   "chain_verify_credential": (
                       lambda: verify_role_credential(vc, ChainTrust(client), holder_account=alice.address),
                       lambda: verify_role_credential(vc, offline, holder_account=alice.address),
                       "offline verify (pinned operator, local list)")}
            out: dict[str, dict[str, object]] = {}
            for name, (fn, base, base_name) in ops.items():
                m, b = _time(fn, reps), _time(base, reps)
                out[name] = {**m, "baseline": base_name, "baseline_mean_ms": b["mean_ms"],
                             "ratio": m["mean_ms"] / b["mean_ms"] if b["mean_ms"] > 1e-3 else None}
            return out
        finally:
            node.down()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--payload", type=int, default=4096)
    ap.add_argument("--chain", action="store_true", help="also time bind/grant/verify on a fresh embedded anvil")
    args = ap.parse_args(argv)
    result = run(args.reps, args.payload)
    if args.chain:
        result["ops"].update(run_chain(max(1, args.reps // 4)))  # type: ignore[union-attr]
    lines = [f"{'operation':<22}{'mean ms':>10}{'p50 ms':>10}{'p95 ms':>10}{'reps':>6}{'base ms':>10}{'x':>7}  baseline"]
    for name, r in result["ops"].items():  # type: ignore[union-attr]
        lines.append(f"{name:<22}{r['mean_ms']:>10.3f}{r['p50_ms']:>10.3f}{r['p95_ms']:>10.3f}{r['reps']:>6}"
                     f"{r['baseline_mean_ms']:>10.3f}{r['ratio'] or 0:>7.1f}  {r['baseline']}")
    print("\n".join(lines), file=sys.stderr)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
