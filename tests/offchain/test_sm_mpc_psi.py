"""MPC and PSI under ``TDS_CRYPTO_PROFILE=sm`` (issue 15): SM2 providers, compute nodes and consumer.
The input bundles, the node processes' keys (piped as SM2 secrets), the output shares and every PSI
frame and sealed intersection are SM2 envelopes (SM2 agreement, SM3 KDF, SM4-GCM, SM2-signed); the
results equal the plaintext ones, and nothing opens once ``default`` is in force."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from chain.crypto_profile import CryptoProfileMismatch
from did.envelope import SM2_ALG, Envelope
from did.identity import create_identity
from did.sm2_identity import Sm2Participant
from offchain.mpc.errors import OutputRefused
from offchain.mpc.node import identity_from_secrets, identity_secrets
from offchain.mpc.session import JointSpec, open_outputs, run_joint
from offchain.mpc.sharing import NodeKey, share_inputs
from offchain.psi.channel import FrameOpener, FrameSealer
from offchain.psi.session import PsiParty, open_intersection, run_psi


@pytest.fixture(autouse=True)
def sm_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")


@pytest.fixture(scope="module")
def cast() -> dict[str, list[Sm2Participant]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TDS_CRYPTO_PROFILE", "sm")
        return {"nodes": [create_identity(f"node{i}") for i in range(3)],
                "providers": [create_identity(f"provider{i}") for i in range(2)],
                "consumer": [create_identity("consumer")], "parties": [create_identity(n) for n in ("bank", "telco")]}


def test_mpc_with_sm2_identities(cast, tmp_path: Path):
    nodes, providers, consumer = cast["nodes"], cast["providers"], cast["consumer"][0]
    assert all(isinstance(p, Sm2Participant) for p in nodes + providers + [consumer])
    again = identity_from_secrets(json.loads(json.dumps(identity_secrets(nodes[0]))))
    assert isinstance(again, Sm2Participant) and again.did == nodes[0].did
    assert again.key_agreement_key == nodes[0].key_agreement_key
    keys = [NodeKey.of(n) for n in nodes]
    assert keys[0].x25519 == nodes[0].key_agreement_key                 # the on-chain 32-byte x
    tables = [[10.5, 20.25, 30.0, 41.5], [5.0, 6.75, 7.5]]
    bundles = {p.did: share_inputs({"x": t}, keys, p, "sm1") for p, t in zip(providers, tables)}
    assert Envelope.from_bytes(bundles[providers[0].did][0]).header["alg"] == SM2_ALG
    spec = JointSpec(["count", "sum", "mean"], columns=["x"], min_group=3)
    out = run_joint("sm1", spec, bundles, nodes, consumer.did, consumer.key_agreement_key, tmp_path, timeout=60)
    meta = json.loads((tmp_path / "sm1" / "session.json").read_text())
    assert meta["consumer"] == {"did": consumer.did, "sm2": consumer.key_agreement_key.hex()}
    assert all(Envelope.from_bytes(s).header["alg"] == SM2_ALG for s in out.sealed_outputs)
    res = open_outputs(consumer, out.sealed_outputs, out.nodes)
    x = tables[0] + tables[1]
    assert res["count"] == len(x)
    assert res["sum"]["x"] == pytest.approx(sum(x), abs=1e-3)
    assert res["mean"]["x"] == pytest.approx(statistics.mean(x), abs=1e-4)


def test_mpc_outputs_do_not_open_under_default(cast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nodes, providers, consumer = cast["nodes"], cast["providers"], cast["consumer"][0]
    keys = [NodeKey.of(n) for n in nodes]
    bundles = {p.did: share_inputs({"x": [1.0, 2.0, 3.0, 4.0]}, keys, p, "sm2") for p in providers}
    out = run_joint("sm2", JointSpec(["count"], columns=["x"], min_group=3), bundles, nodes, consumer.did,
                    consumer.key_agreement_key, tmp_path, timeout=60)
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "default")
    with pytest.raises((OutputRefused, CryptoProfileMismatch), match="'sm'"):
        open_outputs(consumer, out.sealed_outputs, out.nodes)


def test_psi_with_sm2_parties(cast):
    bank, telco = cast["parties"]
    consumer = cast["consumer"][0]
    a = [f"138{i:08d}" for i in range(40)]
    b = [f"138{i:08d}" for i in range(25, 70)]
    for transport in ("memory", "tcp"):
        out = run_psi(f"sm-{transport}", [PsiParty(bank, a, ["strip"]), PsiParty(telco, b, ["strip"])],
                      "intersection", consumer.did, consumer.key_agreement_key, transport=transport)
        assert out.size == 15 and Envelope.from_bytes(out.sealed_result).header["alg"] == SM2_ALG
        assert open_intersection(consumer, out.sealed_result, bank.did) == sorted(set(a) & set(b))
    frame = FrameSealer(bank, "s", telco.did, telco.key_agreement_key).seal(b"\x00hello")   # one channel frame
    assert Envelope.from_bytes(frame).header["alg"] == SM2_ALG
    assert FrameOpener(telco, "s", bank.did).open(frame) == b"\x00hello"
