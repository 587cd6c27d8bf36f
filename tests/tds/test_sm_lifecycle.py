"""The national profile end to end (issue 15): under ``TDS_CRYPTO_PROFILE=sm`` a whole job on a real
chain — SM2 provider, consumer and compute provider bound and credentialed by an SM2 operator, the
datasets encrypted with SM4/SM3, the job parameters sealed to the provider's SM2 key (chain/params.py),
opened by its key service, the answer sealed with SM2 and opened by the consumer, equal to the
plaintext — and the refusals: parameter blocks of the other profile (named ``CryptoProfileMismatch``),
tampered blocks, a key service of the other profile."""
from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_utils import keccak

from chain.accounts import dev_account
from chain.crypto_profile import CryptoProfileMismatch
from chain.ops import HOM_AGG, OPE_RANGE
from chain.params import ParamsError, open_params, params_cid, params_key, seal_params
from did.credentials import issue_role_credential, verify_role_credential
from did.envelope import SM2_ALG, Envelope
from did.identity import create_identity
from did.registry import ChainTrust, IdentityRegistryClient
from did.sm2_identity import Sm2Participant
from offchain.errors import GrantRefused
from offchain.query.plan import Query
from oracle.pipeline import result_cid_text
from oracle.runner import COMPLETED
from tds.sandbox import PRICE, build_world
from tests.support.chains import private_chain

SUM_RANGE = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 700]]}


@pytest.fixture(autouse=True)
def sm_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "sm")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sm-lifecycle")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TDS_CRYPTO_PROFILE", "sm")
        from did import keystore
        mp.setattr(keystore, "DEFAULT_SCRYPT_N", 2 ** 10)
        with private_chain(tmp) as (settings, _space):
            yield build_world(settings, tmp, rows=120, hom_bits=512)


def _committed_block(w, job: int) -> dict:
    ev = w.space.c["Jobs"].events.JobRequested().get_logs(from_block=w.space.deployment["block"],
                                                          argument_filters={"jobId": job})[0]["args"]
    return json.loads(w.store.cat(params_cid(bytes(ev["paramsHash"]))))


def test_a_whole_job_under_sm(world, tmp_path):
    w = world
    ids = w.identities
    registry = IdentityRegistryClient(w.space.w3, w.space.c["IdentityRegistry"])
    # SM2 identities, bound on chain with their SM2 key-agreement key's x
    for name in ("provider", "consumer", "oracle"):
        assert isinstance(ids[name], Sm2Participant) and ids[name].did.startswith("did:key:zEPJ")
        assert w.space.key_agreement_key(ids[name].address) == ids[name].key_agreement_key
    # ... and credentialed by an SM2 operator (SM2SM3Signature proofs, checked against the chain)
    operator = create_identity("operator", dev_account(0))
    assert isinstance(operator, Sm2Participant)
    registry.bind(operator)
    trust = ChainTrust(registry)
    for name, role in (("provider", "PROVIDER"), ("consumer", "CONSUMER"), ("oracle", "COMPUTE_PROVIDER")):
        vc = issue_role_credential(operator, ids[name].did, role, f"{name} org", days=30,
                                   subject_account=ids[name].address)
        registry.grant_from_credential(operator.account, vc)
        assert vc["proof"]["type"] == "SM2SM3Signature"
        assert verify_role_credential(vc, trust, holder_did=ids[name].did, role=role).role == role
    # the datasets are of the sm profile
    assert w.key_service.service.manifests[w.sales_id]["crypto_profile"] == "sm"

    query = {"dataset": w.sales_id, **SUM_RANGE}
    job = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, query, w.store, value=PRICE)
    block = _committed_block(w, job)
    assert block["profile"] == "sm" and set(block["recipients"][0]) == {"key", "sealed"}
    assert bytes.fromhex(block["recipients"][0]["key"]) == ids["provider"].key_agreement_key
    assert w.sales_id.encode() not in json.dumps(block).encode()
    assert open_params(block, params_key(ids["provider"])) == query          # the key service's key
    with pytest.raises(ParamsError, match="not sealed to this key"):
        open_params(block, params_key(ids["oracle"]))                        # the oracle cannot read it

    runner = w.runner(tmp_path / "journal.sqlite")
    runner.run_once()
    assert runner.stats.posted == 1 and w.space.job(job)[0][3] == COMPLETED
    ev = w.space.completion(job)
    sealed = w.store.cat(result_cid_text(ev["resultCid"]))
    assert keccak(sealed) == ev["resultHash"] and Envelope.from_bytes(sealed).header["alg"] == SM2_ALG
    answer = w.open(sealed, job_id=job)["answer"]
    chosen = [a for _, _, a in w.sales_rows if 100 <= a <= 700]
    assert answer["rows"][0][:2] == [sum(chosen), len(chosen)]


def test_parameter_blocks_of_the_other_profile_are_refused_by_name(world, monkeypatch):
    w = world
    provider = w.identities["provider"]
    query = {"dataset": w.sales_id, "aggregates": [["count"]]}
    sm_block = json.loads(seal_params(query, [provider.key_agreement_key]))
    # a default-profile key service (X25519 key) given an sm block
    with pytest.raises(CryptoProfileMismatch) as exc:
        open_params(sm_block, X25519PrivateKey.generate())
    assert (exc.value.expected, exc.value.found) == ("default", "sm") and type(exc.value).__name__ == "CryptoProfileMismatch"
    assert isinstance(exc.value, ParamsError)
    # ... and the other way round: a default block met by the SM2 key service
    x = X25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    default_block = json.loads(seal_params(query, [x.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)],
                                           profile="default"))
    assert "profile" not in default_block                                   # default bytes: no new member
    with pytest.raises(CryptoProfileMismatch) as exc:
        open_params(default_block, params_key(provider))
    assert (exc.value.expected, exc.value.found) == ("sm", "default")
    stripped = {k: v for k, v in sm_block.items() if k != "profile"}       # relabelled: still refused
    with pytest.raises(CryptoProfileMismatch):
        open_params(stripped, params_key(provider))
    # the right key, but default in force: refused too
    monkeypatch.setenv("TDS_CRYPTO_PROFILE", "default")
    with pytest.raises(CryptoProfileMismatch) as exc:
        open_params(sm_block, params_key(provider))
    assert (exc.value.expected, exc.value.found) == ("default", "sm")


def test_tampered_blocks_are_refused(world):
    w = world
    provider = w.identities["provider"]
    block = json.loads(seal_params({"dataset": w.sales_id, "aggregates": [["count"]]}, [provider.key_agreement_key]))

    def flipped(hexed: str, at: int = 5) -> str:
        raw = bytearray.fromhex(hexed)
        raw[at] ^= 1
        return raw.hex()

    body = {**block, "ciphertext": flipped(block["ciphertext"])}
    wrap = {**block, "recipients": [{**block["recipients"][0], "sealed": flipped(block["recipients"][0]["sealed"], 80)}]}
    c1 = {**block, "recipients": [{**block["recipients"][0], "sealed": flipped(block["recipients"][0]["sealed"], 40)}]}
    nonce = {**block, "nonce": flipped(block["nonce"], 0)}
    for bad in (body, wrap, c1, nonce):
        with pytest.raises(ParamsError, match="do not decrypt"):
            open_params(bad, params_key(provider))
    with pytest.raises(ParamsError, match="malformed"):
        open_params({**block, "ciphertext": "zz"}, params_key(provider))
    with pytest.raises(ParamsError, match="not the x coordinate"):
        seal_params({"q": 1}, [b"\xff" * 32])                                  # x ≥ p: no such point
    with pytest.raises(ParamsError, match="32-byte x"):
        seal_params({"q": 1}, [provider.agreement_public])


def test_the_key_service_refuses_a_block_of_the_other_profile_and_a_tampered_one(world, monkeypatch):
    """On chain: the key service of an sm provider given a job whose committed block is a default
    one (or a tampered sm one) refuses it; a key service holding an X25519 key refuses an sm block."""
    from chain.params import canonical_params, params_hash

    w = world
    jobs = w.space.c["Jobs"]
    query = {"dataset": w.sales_id, "aggregates": [["count"]]}

    def commit(data: bytes) -> int:
        w.store.add_bytes(data, cid_version=1)
        r = w.space.send(w.consumer.account, jobs.functions.requestJob(w.grant_id, HOM_AGG, params_hash(data),
                                                                       w.space.now() + 3600), value=PRICE)
        job = jobs.events.JobRequested().process_receipt(r)[0]["args"]["jobId"]
        w.space.send(w.oracle.account, jobs.functions.acceptJob(job))
        return job

    x = X25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    default_job = commit(seal_params(query, [x.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)],
                                     profile="default"))
    with pytest.raises(GrantRefused, match="'default' cryptography profile where 'sm'"):
        w.key_service.prepare(default_job, Query.from_dict(query), w.oracle.address)
    good = json.loads(seal_params(query, [w.identities["provider"].key_agreement_key]))
    raw = bytearray.fromhex(good["ciphertext"])
    raw[3] ^= 0x80
    tampered_job = commit(canonical_params({**good, "ciphertext": raw.hex()}))
    with pytest.raises(GrantRefused, match="do not decrypt"):
        w.key_service.prepare(tampered_job, Query.from_dict(query), w.oracle.address)
    sm_job = commit(canonical_params(good))
    monkeypatch.setattr(w.key_service, "params_key", x)                        # a default-profile key service
    with pytest.raises(GrantRefused, match="'sm' cryptography profile where 'default'"):
        w.key_service.prepare(sm_job, Query.from_dict(query), w.oracle.address)
