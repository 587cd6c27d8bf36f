"""A small but complete lifecycle on a fresh embedded anvil, for the auditor and gateway tests.

Played with web3 directly (real transactions, real EIP-712 signatures), once per test session
(``shared_lifecycle``); the tests only read the chain afterwards, so they can share it.

Asset 1 (the audited one): registered by the provider; application → approval (grant 1, paid,
with an algorithm provider); a grant by EIP-712 signature (grant 2, later revoked); job A
completed with a signed result stored in a dict content store; job B failed (refund); the
regulator freezes and lifts grant 1; the provider freezes and lifts the asset; earnings
withdrawn; a rating; grant 1 closed with a destruction proof (also anchored as a single hash);
the provider's operation-log batch anchored; the certificate transferred to a second provider,
who takes it offline with a final record. Asset 2 gets its own grant and job (noise that must
not leak into asset 1's trail).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_utils import keccak
from web3.logs import DISCARD

from audit.oplog import OpLog, OpRecord
from chain.accounts import dev_account
from chain.connection import connect
from chain.deploy import bind
from chain.node import EmbeddedNode, free_port
from chain.tx import Sender
from chain.config import Settings, load_settings
from chain.eip712 import GrantTerms, grant_typed_data, job_result_typed_data, sign_typed
from chain.system import SYSTEM_CONTRACTS, deploy_system, role_id
from did.binding import make_binding_proof, proof_bytes
from did.keys import did_from_ed25519

DET_EQ, OPE_RANGE, HOM_AGG = 1, 2, 4
PRICE = 10**15
SPLIT = [7000, 1000, 1500, 500]
ZERO = "0x" + "00" * 20
PARTICIPANTS = [(3, "provider", "PROVIDER"), (4, "consumer", "CONSUMER"), (5, "oracle", "COMPUTE_PROVIDER"),
                (6, "algorithm", "ALGORITHM_PROVIDER"), (7, "provider2", "PROVIDER")]


def did_key(name: str) -> Ed25519PrivateKey:
    """The participant's DID key (deterministic, so ``did_for`` needs no chain)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"tds-audit-did:{name}".encode()).digest())


def did_for(name: str) -> str:
    return did_from_ed25519(did_key(name).public_key())


def cid_bytes(tag: str) -> bytes:
    """A CIDv0 in binary (sha2-256 multihash) of ``tag``."""
    return b"\x12\x20" + hashlib.sha256(tag.encode()).digest()


@dataclass
class Lifecycle:
    settings: Settings
    w3: Any
    deployment: dict[str, Any]
    c: dict[str, Any]
    addr: dict[str, str]
    asset: int = 0
    other_asset: int = 0
    grant: int = 0
    signed_grant: int = 0
    job_ok: int = 0
    job_failed: int = 0
    other_job: int = 0
    store: dict[str, bytes] = field(default_factory=dict)  # textual CID → bytes (the content store)
    result: bytes = b""
    quality_doc: bytes = b""
    destruction_doc: bytes = b""
    final_doc: bytes = b""
    key_release: bytes | None = None  # anchored about job A (when Evidence has subject ids)
    logs_dir: Path = Path()
    batch_file: Path = Path()

    def fetch(self, cid: str) -> bytes | None:
        return self.store.get(cid)


def play(settings: Settings, work: Path) -> Lifecycle:
    w3 = connect(settings)
    doc = deploy_system(settings, w3=w3)
    c = {n: bind(w3, doc, n) for n in SYSTEM_CONTRACTS}
    keys = {"operator": dev_account(0), "regulator": dev_account(1)}
    keys.update({name: dev_account(i) for i, name, _ in PARTICIPANTS})
    tx = {name: Sender(w3, acct) for name, acct in keys.items()}
    addr = {name: acct.address for name, acct in keys.items()}
    lc = Lifecycle(settings, w3, doc, c, addr)
    chain_id = w3.eth.chain_id

    def send(who: str, fn, value: int = 0):
        return tx[who].send(fn, value=value)

    def now() -> int:
        return w3.eth.get_block("latest")["timestamp"]

    ident = c["IdentityRegistry"].functions
    for _, name, role in PARTICIPANTS:
        did = did_for(name)
        proof = make_binding_proof(did_key(name), keys[name], chain_id)  # the trail shows only proven DIDs
        send(name, ident.bind(did, keccak(text=did + "doc"), keccak(text=did + "kak"), proof_bytes(proof)))
        send("operator", ident.grantParticipantRole(addr[name], role_id(role), keccak(text=f"vc:{name}"), 0))
    send("operator", c["CertificateTemplates"].functions.publish("standard", cid_bytes("terms"), keccak(text="terms"),
                                                                 3, 63, SPLIT))
    reg = c["AssetRegistry"]
    lc.quality_doc = json.dumps({"overall": "0.97", "dataset": "sales"}, sort_keys=True).encode()
    quality_hash = hashlib.sha256(lc.quality_doc).digest()
    r = send("provider", reg.functions.mint((cid_bytes("content-1"), cid_bytes("meta-1"), keccak(text="manifest-1"),
                                             2, quality_hash, 1)))
    lc.asset = reg.events.AssetRegistered().process_receipt(r, errors=DISCARD)[0]["args"]["assetId"]
    r = send("provider2", reg.functions.mint((cid_bytes("content-2"), cid_bytes("meta-2"), keccak(text="manifest-2"),
                                              0, keccak(text="q2"), 1)))
    lc.other_asset = reg.events.AssetRegistered().process_receipt(r, errors=DISCARD)[0]["args"]["assetId"]

    auth = c["Authorizations"]
    expiry = now() + 30 * 86400
    r = send("consumer", auth.functions.applyFor(lc.asset, keccak(text="sales study"), DET_EQ | HOM_AGG | OPE_RANGE,
                                                 0, 0, expiry, 5))
    app_id = auth.events.ApplicationSubmitted().process_receipt(r, errors=DISCARD)[0]["args"]["applicationId"]
    r = send("provider", auth.functions.approve(app_id, ZERO, PRICE, addr["algorithm"]))
    lc.grant = auth.events.GrantIssued().process_receipt(r, errors=DISCARD)[0]["args"]["grantId"]
    terms = GrantTerms(lc.asset, addr["consumer"], keccak(text="second study"), HOM_AGG, 0, 0, expiry, 3, ZERO, PRICE,
                       ZERO)
    sig = sign_typed(grant_typed_data(terms, 0, expiry, chain_id, auth.address), keys["provider"].key)
    r = send("consumer", auth.functions.grantBySignature(terms.as_tuple(), 0, expiry, sig))
    lc.signed_grant = auth.events.GrantIssued().process_receipt(r, errors=DISCARD)[0]["args"]["grantId"]
    other_terms = GrantTerms(lc.other_asset, addr["consumer"], keccak(text="other"), HOM_AGG, 0, 0, expiry, 3, ZERO,
                             PRICE, ZERO)
    r = send("provider2", auth.functions.grant(other_terms.as_tuple()))
    other_grant = auth.events.GrantIssued().process_receipt(r, errors=DISCARD)[0]["args"]["grantId"]

    jobs = c["Jobs"]

    def request(grant: int, op: int) -> int:
        r = send("consumer", jobs.functions.requestJob(grant, op, keccak(text=f"params{grant}{op}"), now() + 3600),
                 value=PRICE)
        return jobs.events.JobRequested().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]

    def complete(job: int, result: bytes, tag: str, holder: str = "provider") -> None:
        send("oracle", jobs.functions.acceptJob(job))
        cid = cid_bytes(tag)
        rh = keccak(result)
        send(holder, jobs.functions.recordRelease(job, rh))  # the holder's key service releases the answer
        sig = sign_typed(job_result_typed_data(job, rh, cid, chain_id, jobs.address), keys["oracle"].key)
        send("oracle", jobs.functions.completeJob(job, cid, rh, sig))
        from audit.verify import cid_text

        lc.store[cid_text(cid)] = result

    lc.result = b"sealed-answer:" + bytes(range(64))
    lc.job_ok = request(lc.grant, HOM_AGG | OPE_RANGE)
    complete(lc.job_ok, lc.result, "result-a")
    lc.job_failed = request(lc.grant, DET_EQ)
    send("oracle", jobs.functions.acceptJob(lc.job_failed))
    send("oracle", jobs.functions.failJob(lc.job_failed, 7))
    lc.other_job = request(other_grant, HOM_AGG)
    complete(lc.other_job, b"other result", "result-other", holder="provider2")

    send("regulator", auth.functions.freeze(lc.grant, 42))
    send("regulator", auth.functions.unfreeze(lc.grant))
    send("provider", reg.functions.freeze(lc.asset, 1))
    send("provider", reg.functions.unfreeze(lc.asset))
    send("provider", jobs.functions.withdraw(ZERO))
    send("consumer", c["QualityRatings"].functions.rate(lc.grant, 4))
    lc.destruction_doc = json.dumps({"grant": lc.grant, "destroyed": "all result copies"}, sort_keys=True).encode()
    proof_hash = keccak(lc.destruction_doc)
    send("consumer", auth.functions.close(lc.grant, proof_hash))
    send("consumer", c["Evidence"].functions.anchorHash(proof_hash, keccak(text="DESTRUCTION")))
    if any(f.get("name") == "anchorHash" and len(f["inputs"]) == 3 for f in c["Evidence"].abi):
        # the provider's key service records the release of job A's aggregate, about that job
        lc.key_release = keccak(text=f"key-release:{lc.job_ok}")
        send("provider", c["Evidence"].functions.anchorHash(lc.key_release, keccak(text="KEY_RELEASE"), lc.job_ok))
    send("provider", auth.functions.revoke(lc.signed_grant, keccak(text="no longer offered")))

    lc.logs_dir = work / "logs"
    log = OpLog(lc.logs_dir / "provider", did_for("provider"))
    t0 = now() - 60
    for i, action in enumerate(["encrypt", "register", "key-release", "key-release", "grant"]):
        log.append(OpRecord(action, did_for("provider"), addr["provider"],
                            {"asset": lc.asset, "grant": lc.grant, "step": i}, time=t0 + i))
    path, batch = log.close_batch()
    lc.batch_file = path
    hi = min(batch.period[1], now())
    send("provider", c["Evidence"].functions.anchorBatch(batch.root, len(batch.records), min(batch.period[0], hi), hi,
                                                         path.name.encode()))

    send("provider", reg.functions.transferFrom(addr["provider"], addr["provider2"], lc.asset))
    lc.final_doc = b"final record of asset 1: all copies deleted"
    send("provider2", reg.functions.takeOffline(lc.asset, keccak(lc.final_doc)))
    return lc


_SHARED: dict[str, Lifecycle] = {}


def shared_lifecycle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Lifecycle:
    """The lifecycle played once per session on its own anvil (stopped when the session ends)."""
    if "lc" not in _SHARED:
        tmp = tmp_path_factory.mktemp("audit-lifecycle")
        settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                           deployment_file=tmp / "deployment.json")
        node = EmbeddedNode(settings)
        node.up(fresh=True)
        request.config.add_cleanup(lambda: node.down(save=False))
        _SHARED["lc"] = play(settings, tmp)
    return _SHARED["lc"]
