"""Group commit of the key service's releases (issue 14, "Many jobs"), on a real chain with real
ciphertext and signatures: releases that arrive while one release transaction is in flight go
out together in one ``recordReleases``; each answer leaves only once its release is on chain;
a batch with a refused job falls back to one transaction per job, so the refusal is named for
that job and the others are still released."""
from __future__ import annotations

import threading
import time

import pytest
from eth_utils import keccak

from chain.jobstatus import ACCEPTED, RELEASED
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from offchain.errors import GrantRefused
from offchain.keyservice.group_commit import ReleaseGroupCommit, release_gas
from offchain.query.engine import Engine
from offchain.query.plan import Query
from oracle.pipeline import GRANT_NOT_ACTIVE, refusal_reason
from tds.sandbox import PRICE, build_world

QUERY = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 700]]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from dataclasses import replace

    from chain.config import load_settings
    from chain.node import EmbeddedNode, free_port

    tmp = tmp_path_factory.mktemp("group-commit")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    yield build_world(settings, tmp)
    node.down(save=False)


def _grant(w, purpose: str) -> int:
    asset = next(a for a, ids in w.key_service.datasets_by_asset.items() if w.sales_id in ids)
    return w.space.grant_by_signature(w.provider, w.consumer, asset, DET_EQ | OPE_RANGE | HOM_AGG, max_uses=20,
                                      price=PRICE, purpose=purpose)


def _ready_job(w, grant: int):
    """A job requested, accepted by the oracle and computed on ciphertext: (job, query, result)."""
    query = {"dataset": w.sales_id, **QUERY}
    job = w.space.request_job(w.consumer, grant, OPE_RANGE | HOM_AGG, query, w.store, value=PRICE)
    w.space.send(w.oracle.account, w.space.c["Jobs"].functions.acceptJob(job))
    q = Query.from_dict(query)
    enc, peeled, manifests = w.key_service.prepare(job, q, w.oracle.address)
    return job, q, Engine(manifests, w.store.cat, peeled).run(enc)


class Gate:
    """Holds the first release transaction back until ``n`` releases queue behind it, so the test
    decides what is in flight together (timing only: every transaction is real)."""

    def __init__(self, gc: ReleaseGroupCommit, queued: int, before_batch=None):
        self.gc, self.queued, self.before_batch = gc, queued, before_batch
        self.send_one, self.send_batch = gc.send_one, gc.send_batch
        self.first = True

    def __enter__(self) -> "Gate":
        self.gc.send_one, self.gc.send_batch = self._one, self._batch
        return self

    def __exit__(self, *exc) -> None:
        self.gc.send_one, self.gc.send_batch = self.send_one, self.send_batch

    def _hold(self) -> None:
        if self.first:
            self.first = False
            deadline = time.monotonic() + 60
            while len(self.gc._queue) < self.queued:
                assert time.monotonic() < deadline, "releases did not queue behind the first one"
                time.sleep(0.01)
            if self.before_batch is not None:
                self.before_batch()

    def _one(self, *a):
        self._hold()
        return self.send_one(*a)

    def _batch(self, *a):
        self._hold()
        return self.send_batch(*a)


def _release_all(w, ready):
    """Release every job from its own thread at once; per job: sealed bytes, or the exception;
    and whether the chain already showed the release when the answer came back."""
    out: dict[int, object] = {}
    on_chain_at_return: dict[int, bool] = {}
    jobs = w.space.c["Jobs"]

    def one(job, q, result):
        try:
            sealed = w.key_service.release(job, q, result, w.oracle.address)
            on_chain_at_return[job] = bytes(jobs.functions.releasedHash(job).call()) == keccak(sealed)
            out[job] = sealed
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            out[job] = exc

    threads = [threading.Thread(target=one, args=r) for r in ready]
    threads[0].start()          # the first job's release leads (and is held back by the gate) ...
    gc = w.key_service._group_commit()
    deadline = time.monotonic() + 60
    while not gc._busy:
        assert time.monotonic() < deadline, "the first release never reached the chain"
        time.sleep(0.005)
    for t in threads[1:]:       # ... the others queue behind it
        t.start()
    for t in threads:
        t.join(120)
    return out, on_chain_at_return


def _released_events(w, from_block: int) -> dict[int, list]:
    events: dict[int, list] = {}
    for ev in w.space.c["Jobs"].events.AnswerReleased().get_logs(from_block=from_block):
        events.setdefault(ev["args"]["jobId"], []).append(ev)
    return events


def test_concurrent_releases_go_out_together_each_once_and_only_after_it_is_on_chain(world):
    w = world
    grant = _grant(w, "group commit")
    ready = [_ready_job(w, grant) for _ in range(6)]
    gc = w.key_service._group_commit()
    before_tx, before_batches = gc.stats.transactions, len(gc.stats.batches)
    start = w.space.w3.eth.block_number + 1
    with Gate(gc, queued=len(ready) - 1):
        out, on_chain = _release_all(w, ready)
    assert all(isinstance(v, bytes) for v in out.values()), out
    # fewer transactions than releases: the first alone, the five that queued behind it together
    assert gc.stats.transactions - before_tx == 2
    assert gc.stats.batches[before_batches:] == [1, len(ready) - 1]
    events = _released_events(w, start)
    assert sorted(events) == sorted(j for j, _, _ in ready)
    assert all(len(evs) == 1 for evs in events.values())            # every job released exactly once
    txs = {ev["transactionHash"] for evs in events.values() for ev in evs}
    assert len(txs) == 2
    for job, _, _ in ready:                                          # the answer left after its release
        assert on_chain[job] is True
        assert bytes(events[job][0]["args"]["resultHash"]) == keccak(out[job])
        assert w.space.job(job)[0][3] == RELEASED
    # a fixed gas limit from the measured gas per job: no eth_estimateGas under the nonce lock
    limits = sorted(w.space.w3.eth.get_transaction(h)["gas"] for h in txs)
    assert limits == [release_gas(1), release_gas(len(ready) - 1)]
    # a retry of a released job gets the same bytes, and sends nothing
    job, q, result = ready[0]
    assert w.key_service.release(job, q, result, w.oracle.address) == out[job]
    assert gc.stats.transactions - before_tx == 2


def test_a_refused_job_in_a_batch_is_named_and_the_others_are_still_released(world):
    w = world
    good = _grant(w, "group commit, kept")
    doomed = _grant(w, "group commit, revoked while the batch waits")
    ready = [_ready_job(w, good), _ready_job(w, good), _ready_job(w, doomed), _ready_job(w, good)]
    refused_job = ready[2][0]
    gc = w.key_service._group_commit()
    before_fallbacks = gc.stats.fallbacks
    start = w.space.w3.eth.block_number + 1

    def revoke() -> None:  # every release has passed its checks and is queued: the chain changes now
        w.space.send(w.provider.account, w.space.c["Authorizations"].functions.revoke(doomed, keccak(text="r")))

    with Gate(gc, queued=len(ready) - 1, before_batch=revoke):
        out, on_chain = _release_all(w, ready)
    refusal = out[refused_job]
    assert isinstance(refusal, GrantRefused), refusal
    assert refusal.code == "GrantNotActive"                          # named, for its own job
    assert f"grantId={doomed}" in str(refusal)                       # the contract names that job's grant
    assert refusal_reason(refusal) == GRANT_NOT_ACTIVE               # the oracle fails it with reason 16
    assert gc.stats.fallbacks - before_fallbacks == 1                # the batch reverted, then one tx per job
    assert w.space.job(refused_job)[0][3] == ACCEPTED                # nothing released for it ...
    assert w.key_service._released_get(refused_job) is None          # ... nor kept by the key service
    events = _released_events(w, start)
    assert refused_job not in events
    for job, _, _ in ready:
        if job == refused_job:
            continue
        assert isinstance(out[job], bytes) and on_chain[job] is True
        assert len(events[job]) == 1 and bytes(events[job][0]["args"]["resultHash"]) == keccak(out[job])


def test_a_lone_release_waits_for_nobody(world):
    w = world
    job, q, result = _ready_job(w, _grant(w, "group commit, alone"))
    gc = w.key_service._group_commit()
    before = len(gc.stats.batches)
    sealed = w.key_service.release(job, q, result, w.oracle.address)
    assert gc.stats.batches[before:] == [1]
    assert bytes(w.space.c["Jobs"].functions.releasedHash(job).call()) == keccak(sealed)


def test_group_commit_refuses_a_batch_size_the_contract_refuses(world):
    w = world
    with pytest.raises(ValueError):
        ReleaseGroupCommit(w.key_service.sender, w.key_service.chain.record_releases,
                           w.key_service.chain.record_release, max_batch=65)


def test_the_one_batch_read_answers_as_the_web3_reads_do(world, tmp_path):
    """The raw JSON-RPC batch (job, grant, holder, checkRelease) gives the same view as web3's
    separate reads; a failing checkRelease comes back False and is then named by web3's read."""
    from oracle.batch import _read_raw, read_jobs
    from oracle.journal import JobEntry

    w = world
    grant = _grant(w, "raw reads")
    job, _, _ = _ready_job(w, grant)
    chain = w.key_service.chain
    view, ok = chain.job_checked(job, w.oracle.address)
    assert ok is True
    assert chain._asset_of.get(grant) is not None                      # the raw path was the one taken
    assert view == chain.job(job)
    _, ok_other = chain.job_checked(job, w.consumer.address)          # not the job's oracle
    assert ok_other is False
    w.space.send(w.provider.account, w.space.c["Authorizations"].functions.revoke(grant, keccak(text="r")))
    view_after, ok_after = chain.job_checked(job, w.oracle.address)
    assert ok_after is False and view_after == chain.job(job)
    with pytest.raises(GrantRefused) as refused:
        chain.check_release(job, w.oracle.address)
    assert refused.value.code == "GrantNotActive"
    # the oracle's status reads: the raw batch and web3's batch agree
    runner = w.runner(tmp_path / "journal.sqlite")
    entries = [JobEntry(job, "seen", 0, "0x", {}, None, 0)]
    raw = _read_raw(runner, entries)
    runner._raw_reads = False                                         # now through web3's batch
    assert raw == read_jobs(runner, entries)
    assert raw[job][:2] == (ACCEPTED, w.oracle.address)
    runner.journal.close()
