"""The provider's key service at the moment of release (issue 12, items 1–4, 7, 8, 11, 12), on a
real chain with real ciphertext: it reads only the granted asset, is not a decryption oracle,
re-checks the chain at release, records the release before the answer leaves, and binds the
answer to its job."""
from __future__ import annotations

import pytest
from eth_utils import keccak

from chain.jobstatus import ACCEPTED, RELEASED
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from chain.tx import Reverted
from did.sealing import ChainDirectory, WrongJobAnswer
from offchain.errors import GrantRefused
from offchain.keyservice.provider import ResultRejected
from offchain.query.engine import DatasetView, Engine, EncryptedResult
from offchain.query.plan import Query
from oracle.pipeline import (ASSET_NOT_USABLE, DATASET_NOT_GRANTED, GRANT_FROZEN, GRANT_NOT_ACTIVE, ROLE_REVOKED,
                             JobPipeline)
from tds.sandbox import PRICE, build_world

SUM_RANGE = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 700]]}
ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from dataclasses import replace

    from chain.config import load_settings
    from chain.node import EmbeddedNode, free_port

    tmp = tmp_path_factory.mktemp("release-path")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    yield build_world(settings, tmp)
    node.down(save=False)


def fresh_grant(w, purpose: str) -> int:
    return w.space.grant_by_signature(w.provider, w.consumer, _asset_of(w, w.sales_id), DET_EQ | OPE_RANGE | HOM_AGG,
                                      max_uses=10, price=PRICE, purpose=purpose)


def _asset_of(w, dataset_id: str) -> int:
    return next(a for a, ids in w.key_service.datasets_by_asset.items() if dataset_id in ids)


def accepted(w, grant: int, query: dict, ops: int = OPE_RANGE | HOM_AGG) -> int:
    job = w.space.request_job(w.consumer, grant, ops, query, w.store, value=PRICE)
    w.space.send(w.oracle.account, w.space.c["Jobs"].functions.acceptJob(job))
    return job


def compute(w, job: int, query: dict) -> tuple[Query, EncryptedResult]:
    q = Query.from_dict(query)
    enc, peeled, manifests = w.key_service.prepare(job, q, w.oracle.address)
    return q, Engine(manifests, w.store.cat, peeled).run(enc)


def status(w, job: int) -> int:
    return w.space.job(job)[0][3]


def refund_of(w) -> int:
    return w.space.c["Jobs"].functions.balanceOf(w.consumer.address, ZERO).call()


# ------------------------------------------------------------------ 1. only the granted asset

def test_join_naming_another_asset_is_refused_and_refunded(world, tmp_path):
    w = world
    join = {"dataset": w.sales_id, "aggregates": [["sum", "amount"]], "group_by": "right.segment",
            "join": [w.customers_id, "customer", "customer"]}
    job = accepted(w, w.grant_id, join, DET_EQ | HOM_AGG)
    with pytest.raises(GrantRefused, match="DatasetNotGranted"):
        w.key_service.prepare(job, Query.from_dict(join), w.oracle.address)
    before = refund_of(w)
    outcome = JobPipeline(w.store, w.key_service, w.oracle.address)(_request(w, job))
    assert outcome.reason_code == DATASET_NOT_GRANTED
    w.space.send(w.oracle.account, w.space.c["Jobs"].functions.failJob(job, outcome.reason_code))
    assert refund_of(w) - before == PRICE


def test_query_over_another_assets_dataset_is_refused(world):
    w = world
    other = {"dataset": w.customers_id, "aggregates": [["count"]]}
    job = accepted(w, w.grant_id, other, HOM_AGG)
    with pytest.raises(GrantRefused, match="DatasetNotGranted"):
        w.key_service.prepare(job, Query.from_dict(other), w.oracle.address)


def _request(w, job: int):
    from oracle.runner import JobRequest

    ev = w.space.c["Jobs"].events.JobRequested().get_logs(from_block=w.space.deployment["block"],
                                                          argument_filters={"jobId": job})[0]["args"]
    return JobRequest(job, ev["grantId"], ev["consumer"], ev["operation"], bytes(ev["paramsHash"]), ev["deadline"])


# ------------------------------------------------------------------ 2. not a decryption oracle

def test_forged_aggregate_is_refused_and_nothing_is_released(world):
    """One row's ciphertext raised to the row count passes the count slot; the key service's own
    recomputation refuses it."""
    w = world
    query = {"dataset": w.sales_id, **SUM_RANGE}
    job = accepted(w, w.grant_id, query)
    q, honest = compute(w, job, query)
    manifest = w.key_service.service.manifests[w.sales_id]
    enc, peeled, _ = w.key_service.prepare(job, q, w.oracle.address)
    view = DatasetView(manifest, w.store.cat, peeled)
    g = honest.groups[0]
    forged = EncryptedResult(honest.query_hash, honest.datasets, [type(g)(g.label, g.rows, {
        "left": int(pow(view.hom()[0], g.rows, view.pub.n2))}, dict(g.codes))], honest.plan)
    with pytest.raises(ResultRejected, match="ResultRejected"):
        w.key_service.release(job, q, forged, w.oracle.address)
    assert status(w, job) == ACCEPTED and w.space.c["Jobs"].functions.releasedHash(job).call() == b"\0" * 32
    sealed = w.key_service.release(job, q, honest, w.oracle.address)  # the honest result still goes through
    answer = w.open(sealed, job_id=job)["answer"]
    sel = [a for _, _, a in w.sales_rows if 100 <= a <= 700]
    assert answer["rows"][0] == [sum(sel), len(sel)]


def test_oracle_cannot_substitute_another_query(world):
    w = world
    query = {"dataset": w.sales_id, **SUM_RANGE}
    job = accepted(w, w.grant_id, query)
    narrower = {"dataset": w.sales_id, "aggregates": [["sum", "amount"], ["count"]],
                "where": [["range", "amount", 100, 101]]}
    with pytest.raises(GrantRefused, match="QueryNotCommitted"):
        w.key_service.prepare(job, Query.from_dict(narrower), w.oracle.address)


# ------------------------------------------------------------------ 3. revocation at once

@pytest.mark.parametrize("action, reason", [
    ("revoke", GRANT_NOT_ACTIVE), ("monitor-freeze", GRANT_FROZEN), ("asset-freeze", ASSET_NOT_USABLE),
    ("consumer-role", ROLE_REVOKED), ("consumer-close", GRANT_NOT_ACTIVE),
])
def test_revocation_between_request_and_release_refuses_and_refunds(world, action, reason):
    w = world
    grant = fresh_grant(w, f"revocation {action}")
    query = {"dataset": w.sales_id, **SUM_RANGE}
    job = accepted(w, grant, query)
    q, result = compute(w, job, query)  # keys were released while the grant was live
    c, space = w.space.c, w.space
    undo = None
    if action == "revoke":
        space.send(w.provider.account, c["Authorizations"].functions.revoke(grant, keccak(text="r")))
    elif action == "monitor-freeze":
        from chain.accounts import dev_account

        space.send(dev_account(2), c["Authorizations"].functions.freeze(grant, 9))
    elif action == "asset-freeze":
        asset = _asset_of(w, w.sales_id)
        space.send(w.provider.account, c["AssetRegistry"].functions.freeze(asset, 1))
        undo = lambda: space.send(w.provider.account, c["AssetRegistry"].functions.unfreeze(asset))  # noqa: E731
    elif action == "consumer-role":
        from chain.system import role_id

        space.send(w.operator, c["IdentityRegistry"].functions.revokeParticipantRole(
            w.consumer.address, role_id("CONSUMER"), keccak(text="x")))
        undo = lambda: space.grant_role(w.operator, w.consumer, "CONSUMER", keccak(text="vc:again"))  # noqa: E731
    else:
        space.send(w.consumer.account, c["Authorizations"].functions.close(grant, keccak(text="destroyed")))
    try:
        before = refund_of(w)
        outcome = JobPipeline(w.store, w.key_service, w.oracle.address)(_request(w, job))
        assert outcome.reason_code == reason, outcome.detail
        assert status(w, job) == ACCEPTED  # nothing released
        space.send(w.oracle.account, c["Jobs"].functions.failJob(job, outcome.reason_code))
        assert refund_of(w) - before == PRICE
    finally:
        if undo:
            undo()


# ------------------------------------------------------------------ 4. payment final once released

def test_released_job_cannot_be_failed_by_a_colluding_oracle(world):
    w = world
    query = {"dataset": w.sales_id, **SUM_RANGE}
    job = accepted(w, w.grant_id, query)
    q, result = compute(w, job, query)
    sealed = w.key_service.release(job, q, result, w.oracle.address)
    assert status(w, job) == RELEASED
    assert bytes(w.space.c["Jobs"].functions.releasedHash(job).call()) == keccak(sealed)
    with pytest.raises(Reverted, match="AnswerAlreadyReleased"):
        w.space.send(w.oracle.account, w.space.c["Jobs"].functions.failJob(job, 3))
    # the oracle stays silent: after the accept timeout the provider settles with the released answer
    cid = w.store.add_bytes(sealed, cid_version=1)
    from chain.cid import parse_cid

    with pytest.raises(Reverted, match="SettlementTooEarly"):
        w.space.send(w.provider.account, w.space.c["Jobs"].functions.settleReleased(job, parse_cid(cid).to_bytes()))
    w.space.w3.provider.make_request("evm_increaseTime", [3700])
    w.space.w3.provider.make_request("evm_mine", [])
    w.space.send(w.provider.account, w.space.c["Jobs"].functions.settleReleased(job, parse_cid(cid).to_bytes()))
    ev = w.space.completion(job)
    assert bytes(ev["resultHash"]) == keccak(sealed)
    assert w.open(w.store.cat(cid), job_id=job)["answer"]["rows"][0][1] > 0


def test_release_retry_returns_the_same_bytes(world):
    w = world
    query = {"dataset": w.sales_id, **SUM_RANGE}
    job = accepted(w, w.grant_id, query)
    q, result = compute(w, job, query)
    first = w.key_service.release(job, q, result, w.oracle.address)
    assert w.key_service.release(job, q, result, w.oracle.address) == first
    assert w.key_service.release(job, None, result, w.oracle.address) == first
    # a recording whose receipt was lost (node restart) and is sent again: already on chain, kept
    w.key_service._record_on_chain(job, q.hash, first)
    assert w.key_service.release(job, q, result, w.oracle.address) == first


# ------------------------------------------------------------------ 11. answer bound to its job

def test_an_older_answer_cannot_complete_a_new_job(world):
    w = world
    query = {"dataset": w.sales_id, **SUM_RANGE}
    old = accepted(w, w.grant_id, query)
    q, result = compute(w, old, query)
    old_sealed = w.key_service.release(old, q, result, w.oracle.address)
    new = accepted(w, w.grant_id, query)
    q2, result2 = compute(w, new, query)
    w.key_service.release(new, q2, result2, w.oracle.address)
    from chain.eip712 import job_result_typed_data, sign_typed

    cid = b"\x01\x55\x12\x20" + keccak(old_sealed)
    rh = keccak(old_sealed)
    sig = sign_typed(job_result_typed_data(new, rh, cid, w.space.w3.eth.chain_id, w.space.c["Jobs"].address),
                     w.oracle.account.key)
    with pytest.raises(Reverted, match="ResultMismatch"):  # on chain
        w.space.send(w.oracle.account, w.space.c["Jobs"].functions.completeJob(new, cid, rh, sig))
    with pytest.raises(WrongJobAnswer):  # and in the consumer's client
        w.open(old_sealed, job_id=new)


# ------------------------------------------------------------------ 12. sealing uses the current key

def test_sealing_follows_a_key_rotation(world):
    w = world
    from did.identity import Identity
    from did.registry import IdentityRegistryClient

    directory = ChainDirectory(w.space.c["IdentityRegistry"], w.space.deployment["block"])
    did, key = directory.resolve(w.consumer.address)
    assert key == w.space.key_agreement_key(w.consumer.address)
    rotated = Identity.create("consumer-rotated", w.consumer.account)
    IdentityRegistryClient(w.space.w3, w.space.c["IdentityRegistry"]).bind(rotated)
    w.space.sender(w.consumer.account).resync()  # that bind went through another nonce tracker
    did2, key2 = directory.resolve(w.consumer.address)
    assert (did2, key2) != (did, key) and key2 == w.space.key_agreement_key(w.consumer.address)
    w.identities["consumer"] = rotated


# ------------------------------------------------------------------ 8. parameters sealed, salted

def test_parameters_are_sealed_to_the_key_service_and_salted(world):
    import json

    from chain.params import ParamsError, open_params, params_cid

    w = world
    query = {"dataset": w.sales_id, "aggregates": [["count"]], "where": [["range", "amount", 123, 456]]}
    job = accepted(w, w.grant_id, query)
    ev = w.space.c["Jobs"].events.JobRequested().get_logs(from_block=w.space.deployment["block"],
                                                          argument_filters={"jobId": job})[0]["args"]
    block = w.store.cat(params_cid(bytes(ev["paramsHash"])))
    # ciphertext only in the shared store: no dataset id, no query words, no constants as the query wrote them
    # (a bare "456" may occur in random hex by chance)
    assert w.sales_id.encode() not in block and b'"range"' not in block and b"123,456" not in block
    params = json.loads(block)
    with pytest.raises(ParamsError, match="not sealed to this key"):
        open_params(params, w.identities["oracle"].x25519)  # the oracle cannot read the constants
    assert open_params(params, w.identities["provider"].x25519) == query
    again = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, query, w.store, value=PRICE)
    ev2 = w.space.c["Jobs"].events.JobRequested().get_logs(from_block=w.space.deployment["block"],
                                                           argument_filters={"jobId": again})[0]["args"]
    assert ev2["paramsHash"] != ev["paramsHash"]  # salted: the same query never hashes the same


def test_plaintext_parameters_are_refused(world):
    from chain.params import canonical_params, params_hash

    w = world
    query = {"dataset": w.sales_id, "aggregates": [["count"]]}
    data = canonical_params(query)
    w.store.add_bytes(data, cid_version=1)
    jobs = w.space.c["Jobs"]
    r = w.space.send(w.consumer.account, jobs.functions.requestJob(w.grant_id, HOM_AGG, params_hash(data),
                                                                   w.space.now() + 3600), value=PRICE)
    job = jobs.events.JobRequested().process_receipt(r)[0]["args"]["jobId"]
    w.space.send(w.oracle.account, jobs.functions.acceptJob(job))
    with pytest.raises(GrantRefused, match="ParamsNotSealed"):
        w.key_service.prepare(job, Query.from_dict(query), w.oracle.address)
