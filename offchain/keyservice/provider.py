"""The provider's key service with its on-chain checks (``tds provider serve`` wraps it).

What may leave it for a job, and when (docs/security.md lists each rule with its test):

* only for a job Accepted by the oracle asking, over the asset that job's grant covers — a query
  that names a dataset of another asset (a JOIN included) is refused until multi-grant jobs exist;
* only for the query the consumer committed on chain: the key service fetches the parameters by
  the ``paramsHash`` of ``JobRequested`` itself; an oracle that sends another query is refused;
* layer keys only while ``Jobs.checkRelease`` passes (grant active and not frozen, asset active,
  consumer, provider and oracle roles held) — re-read at every call, never cached;
* a plaintext answer only if it is the answer to that query over the rows it selects: the key
  service recomputes the encrypted result itself from the ciphertext in the store and refuses an
  oracle's result that differs (a forged "aggregate" would otherwise make it a decryption oracle);
* only operations the grant's terms document allows field by field (``"sum:amount"``), only
  under the provider's release rules (trusted consumers, minimum price for leaky layers), and —
  with the query auditor on — only if the answer cannot be differenced against the consumer's
  earlier answers into fewer than k rows; with the grant's privacy option, only with OpenDP
  noise paid from the grant's privacy budget;
* only after the provider's own ``recordRelease`` transaction — which re-checks every term in its
  block — has been mined: from then on the job cannot end in a refund, and an answer released
  for one job cannot complete another (the hash on chain binds them). Releases that arrive while
  one release transaction is in flight are recorded together in the next (``recordReleases``,
  :mod:`offchain.keyservice.group_commit`); a batch the chain refuses goes out per job, so each
  refusal is named for its own job.

One release per job: a retry gets the same sealed bytes (same CID and hash on chain).
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from eth_utils import keccak
from web3.contract import Contract

from audit.oplog import OpLog, OpRecord
from chain import ops
from chain.jobstatus import RELEASED
from chain.params import ParamsError, is_sealed, open_params
from chain.tx import Sender
from offchain.errors import GrantRefused, QueryError
from offchain.keyservice.auditor import QueryAuditor
from offchain.keyservice.group_commit import MAX_BATCH as MAX_RELEASE_BATCH, ReleaseGroupCommit
from offchain.keyservice.ledger import ReleaseLedger
from offchain.keyservice.onchain import JobChain, JobView
from offchain.keyservice.privacy import PrivacyLedger
from offchain.keyservice.release import Grant, KeyService, Release, ResultRejected, bfv_column, same_result
from offchain.keyservice.terms import GrantTermsDoc, load_terms
from offchain.onion.packing import PackingLayout
from offchain.onion.policy import DatasetPolicy
from offchain.onion.peel import PeeledKeys
from offchain.query.engine import EncryptedResult, Engine
from offchain.query.plan import EncryptedQuery, Query, split_version

# seal(payload, consumer_address) -> bytes only that consumer can open
Sealer = Callable[[dict[str, Any], str], bytes]
Fetch = Callable[[str], bytes]
PREPARED_TTL_S = 3600.0
MAX_PREPARED = 10_000   # prepared jobs kept in memory (oldest dropped first; they are recomputable)


@dataclass
class _Prepared:
    grant: Grant
    query: Query
    enc: EncryptedQuery
    peeled: PeeledKeys
    at: float
    service: KeyService          # the job's view: dataset versions pinned at prepare


@dataclass
class ProviderKeyService:
    """One provider's key service: datasets by asset id, the pure key service, sealing, log,
    the content store (to recompute results) and the provider's wallet (to record releases)."""

    jobs: Contract
    authorizations: Contract
    assets: Contract
    provider: str
    provider_did: str
    service: KeyService
    datasets_by_asset: dict[int, set[str]]
    seal: Sealer
    oplog: OpLog | None = None
    fetch: Fetch | None = None
    sender: Sender | None = None
    from_block: int = 0
    ledger: ReleaseLedger | None = None     # durable one-release-per-job (None: in memory only)
    auditor: QueryAuditor | None = None     # differencing checks per consumer and dataset (None: off)
    privacy: PrivacyLedger | None = None    # privacy budgets of grants with a DP option
    require_terms: bool = False             # refuse grants without a terms document in the store
    params_key: Any = None                  # the provider's X25519 key: opens the sealed job parameters
    release_batch: int = MAX_RELEASE_BATCH  # at most this many releases in one recordReleases (group commit)
    _commits: ReleaseGroupCommit | None = None
    _released: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    _terms: dict[int, GrantTermsDoc | None] = field(default_factory=dict)
    _prepared: dict[int, _Prepared] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.chain = JobChain(self.jobs, self.authorizations, self.assets, self.from_block)

    def register_asset(self, asset_id: int, dataset_ids: set[str]) -> None:
        self.datasets_by_asset[asset_id] = set(dataset_ids)

    # checks -----------------------------------------------------------------------------------
    def _store(self) -> Fetch:
        if self.fetch is None:
            raise GrantRefused("this key service has no content store to check results against; "
                               "configure it with the store the oracle reads", code="Misconfigured")
        return self.fetch

    def _job(self, job_id: int, oracle: str, params: bool = False) -> tuple[JobView, bool]:
        """The job, required accepted by ``oracle`` over this provider's asset, and whether
        ``Jobs.checkRelease`` passed in the same read (False: :meth:`JobChain.check_release` names why);
        ``params``: its committed parameters' log is read along."""
        view, release_ok = self.chain.job_checked(job_id, oracle, params)
        self.chain.require_accepted_by(view, oracle)
        if view.holder != self.provider:
            raise GrantRefused(f"asset {view.asset_id} of job {job_id} is not held by this provider",
                               code="NotAssetHolder")
        return view, release_ok

    def _committed_query(self, job_id: int, offered: Query | None) -> Query:
        """The query whose hash the consumer committed; ``offered`` (the oracle's) must equal it."""
        params = self.chain.committed_params(job_id, self._store())
        if self.params_key is None:
            raise GrantRefused("this key service has no key-agreement key to open job parameters",
                               code="Misconfigured")
        try:
            query = Query.from_dict(open_params(params, self.params_key))
        except ParamsError as exc:
            code = "ParamsNotSealed" if not is_sealed(params) else "BadParams"
            raise GrantRefused(f"job {job_id}'s committed parameters: {exc}", code=code) from None
        except (QueryError, KeyError, TypeError, IndexError, ValueError) as exc:
            if isinstance(exc, GrantRefused):
                raise
            raise GrantRefused(f"job {job_id}'s committed parameters are not a query: {exc}", code="BadParams") from None
        if offered is not None and offered.hash != query.hash:
            raise GrantRefused(f"job {job_id}: the oracle asked for another query than the consumer committed",
                               code="QueryNotCommitted")
        return query

    def _grant_for(self, view: JobView, query: Query) -> Grant:
        """The grant's off-chain view, refusing any dataset outside the job's asset."""
        datasets = frozenset(self.datasets_by_asset.get(view.asset_id, set()))
        if not datasets:
            raise GrantRefused(f"this key service holds no dataset for asset {view.asset_id}", code="UnknownAsset")
        touched = {split_version(query.dataset)[0]} | ({split_version(query.join.dataset)[0]} if query.join else set())
        for d in sorted(touched - datasets):
            other = next((a for a, ids in self.datasets_by_asset.items() if d in ids), None)
            where = f"asset {other}" if other is not None else "no asset of this job"
            raise GrantRefused(f"job {view.job_id}'s query reads dataset {d} of {where}; its grant "
                               f"#{view.grant_id} covers asset {view.asset_id} only", code="DatasetNotGranted")
        needed = ops.mask_of(query.operations())
        if needed & ~view.paid_mask:
            raise GrantRefused(f"job {view.job_id}'s query needs {ops.describe(needed)}; the job paid for "
                               f"{ops.describe(view.paid_mask)}", code="OperationNotPaid")
        mask = view.granted_mask & view.paid_mask
        allowed = ops.allowed(query.operations(), mask)
        terms = self._grant_terms(view.grant_id)
        if terms is not None and terms.scope is not None:
            outside = sorted(op for op in query.operations() if op not in terms.scope)
            if outside:
                raise GrantRefused(f"grant #{view.grant_id}'s terms allow {', '.join(sorted(terms.scope))}; "
                                   f"the query needs {', '.join(outside)}", outside[0], code="OperationOutOfScope")
            allowed &= terms.scope
        dp = terms.dp if terms is not None else None
        if dp is not None:
            extreme = [a.label for a in query.aggregates if a.func in ("min", "max")]
            if extreme:
                raise GrantRefused(f"grant #{view.grant_id} releases only noisy aggregates; {extreme[0]} cannot be "
                                   "made differentially private", code="DpNotSupported")
        return Grant(grant_id=str(view.grant_id), consumer=view.consumer, datasets=datasets,
                     operations=allowed, expires_at=view.expiry or None, price=view.price, dp=dp)

    def _grant_terms(self, grant_id: int) -> GrantTermsDoc | None:
        """The grant's terms document (cached: a grant's terms never change)."""
        if grant_id not in self._terms:
            doc = load_terms(self.chain.terms_hash(grant_id), self._store())
            if doc is None and self.require_terms:
                raise GrantRefused(f"grant #{grant_id} has no terms document in the store; this key service "
                                   "requires one (purposeHash = sha-256 of the terms)", code="TermsUnavailable")
            self._terms[grant_id] = doc
        return self._terms[grant_id]

    # the two calls --------------------------------------------------------------------------
    def prepare(self, job_id: int, query: Query | None, oracle: str
                ) -> tuple[EncryptedQuery, PeeledKeys, dict[str, dict]]:
        """Tokens and the RND layer keys the committed query needs, for the job's oracle only."""
        view, release_ok = self._job(job_id, oracle, params=True)
        if view.status != RELEASED and not release_ok:  # a released job's retry gets the keys it already had
            self.chain.check_release(job_id, oracle)     # raises the refusal by name
        committed = self._committed_query(job_id, query)
        prep = self._prepare(view, committed)
        manifests = {d: prep.service.manifests[d] for d in prep.enc.datasets.values()}
        self._log("key-release", oracle, {"job": job_id, "grant": prep.grant.grant_id,
                                          "layers": prep.peeled.describe()})
        return prep.enc, prep.peeled, manifests

    def _prepare(self, view: JobView, query: Query) -> _Prepared:
        """Once per job: a retry gets the same tokens and keys (both are deterministic)."""
        with self._lock:
            self._expire()
            hit = self._prepared.get(view.job_id)
        if hit is not None and hit.query.hash == query.hash:
            return hit
        grant = self._grant_for(view, query)
        pinned = self._pinned_service()
        enc, peeled = pinned.prepare(query, grant)
        prep = _Prepared(grant, query, enc, peeled, time.monotonic(), pinned)
        with self._lock:
            self._prepared[view.job_id] = prep
        return prep

    def _prepared_for(self, view: JobView, offered: Query | None) -> _Prepared:
        """The job's prepare, for its release: the committed query its prepare read from the chain
        (``JobRequested`` of a job id is immutable), or read again when this process has no
        prepare of the job (a restart, an expiry)."""
        with self._lock:
            hit = self._prepared.get(view.job_id)
        if hit is not None and hit.grant.consumer == view.consumer:
            if offered is not None and offered.hash != hit.query.hash:
                raise GrantRefused(f"job {view.job_id}: the oracle asked for another query than the consumer "
                                   "committed", code="QueryNotCommitted")
            return hit
        return self._prepare(view, self._committed_query(view.job_id, offered))

    def _pinned_service(self) -> KeyService:
        """The key service as this job sees it: a keystore changed on disk (a rotation) is re-read
        first (:class:`offchain.onion.keystore_watch.WatchedKeyring`), then the dataset versions are
        pinned, so the job's release opens what its prepare released whatever a later reload serves."""
        with self._lock:
            refresh = getattr(self.service.keyring, "refresh", None)
            if refresh is not None:
                refresh()
            pinned = copy.copy(self.service)
            pinned.manifests = dict(self.service.manifests)
        return pinned

    def _expire(self) -> None:
        cut = time.monotonic() - PREPARED_TTL_S
        for job_id in [j for j, p in self._prepared.items() if p.at < cut]:
            del self._prepared[job_id]
        while len(self._prepared) >= MAX_PREPARED:           # dicts keep insertion order: oldest first
            del self._prepared[next(iter(self._prepared))]

    # one release per job: durable in the ledger when there is one ------------------------------
    def _released_get(self, job_id: int) -> tuple[str, bytes] | None:
        if self.ledger is not None:
            return self.ledger.released(job_id)
        with self._lock:
            return self._released.get(job_id)

    def _released_put(self, job_id: int, query_hash: str, sealed: bytes, record: dict[str, Any]) -> tuple[str, bytes]:
        """Store the release (first writer wins); returns what is stored."""
        if self.ledger is not None:
            self.ledger.record_release(job_id, query_hash, sealed, record)
            done = self.ledger.released(job_id)
            assert done is not None
            return done
        with self._lock:
            return self._released.setdefault(job_id, (query_hash, sealed))

    def _released_discard(self, job_id: int, query_hash: str) -> None:
        if self.ledger is not None:
            self.ledger.discard_release(job_id, query_hash)
        else:
            with self._lock:
                if self._released.get(job_id, ("",))[0] == query_hash:
                    del self._released[job_id]

    def release(self, job_id: int, query: Query | None, result: EncryptedResult, oracle: str) -> bytes:
        """Check the oracle's result, open the answer, seal it to the consumer, record the release
        on chain, and only then hand the sealed answer out."""
        view, release_ok = self._job(job_id, oracle)
        done = self._released_get(job_id)
        if done is not None:
            return self._replay(view, done, query)
        if view.status == RELEASED:
            raise GrantRefused(f"job {job_id} was released on chain but this key service has no record of it",
                               code="ReleaseLost")
        if not release_ok:
            self.chain.check_release(job_id, oracle)   # raises the refusal by name
        prep = self._prepared_for(view, query)
        own = Engine({d: prep.service.manifests[d] for d in prep.enc.datasets.values()}, self._store(),
                     prep.peeled, track_rows=self.auditor is not None).run(prep.enc)
        if not same_result(own, result):
            self._log("result-rejected", oracle, {"job": job_id, "grant": prep.grant.grant_id}, error="ResultRejected")
            raise ResultRejected(f"job {job_id}: the oracle's encrypted result is not the committed query's "
                                 f"result over the data (recomputed by the key service)", code="ResultRejected")
        audited = self._audit(job_id, prep, own)
        rel = self._with_privacy(job_id, prep, own, prep.service.open_recomputed(prep.query, prep.grant, own))
        sealed = self.seal({"job": job_id, "answer": rel.answer, "release": rel.record}, view.consumer)
        stored = self._released_put(job_id, prep.query.hash, sealed, rel.record)
        if stored[1] != sealed:                       # a concurrent retry won the race
            return self._replay(view, stored, query)
        self._record_on_chain(job_id, prep.query.hash, sealed)
        if self.auditor is not None:
            for dataset, n_rows, sets, _k in audited:
                self.auditor.record(view.consumer, dataset, n_rows, sets, job_id)
        self._log("open-result", oracle, {"job": job_id, "grant": prep.grant.grant_id,
                                          "answer_hash": rel.record["answer_hash"],
                                          "result_hash": "0x" + keccak(sealed).hex()})
        return sealed

    def _audit(self, job_id: int, prep: _Prepared, own: EncryptedResult) -> list[tuple[str, int, list, int]]:
        """Refuse an answer the consumer could difference against its earlier ones (per dataset)."""
        if self.auditor is None:
            return []
        manifests = {side: prep.service.manifests[d] for side, d in prep.enc.datasets.items()}
        k = max(DatasetPolicy.from_dict(m["policy"]).min_group_size for m in manifests.values())
        out = []
        for side, m in manifests.items():
            sets = [g.members[side] for g in own.groups if g.rows >= k and g.members and side in g.members]
            self.auditor.check(prep.grant.consumer, m["dataset_id"], m["row_count"], sets, k, job_id=job_id)
            out.append((m["dataset_id"], m["row_count"], sets, k))
        return out

    def _with_privacy(self, job_id: int, prep: _Prepared, own: EncryptedResult, rel: Release) -> Release:
        """With the grant's privacy option: noise from OpenDP, paid from the grant's budget."""
        dp = prep.grant.dp
        if dp is None:
            return rel
        if self.privacy is None:
            raise GrantRefused(f"grant #{prep.grant.grant_id} needs differential privacy but this key service has "
                               "no privacy ledger", code="Misconfigured")
        funcs = {}
        for agg in prep.query.aggregates:
            if agg.func == "count":
                funcs[agg.label] = ("count", None, None)
                continue
            side, col = (agg.column or "").split(".", 1) if "." in (agg.column or "") else ("left", agg.column)
            manifest = prep.service.manifests[prep.enc.datasets[side]]
            bcol = bfv_column(manifest, col or "")
            slot = bcol.slot if bcol is not None else next(
                s for s in PackingLayout.from_dict(manifest["hom"]["layout"]).slots if s.name == col)
            funcs[agg.label] = (agg.func, slot.low_value, slot.high_value)
        counts = [g.rows for g in own.groups if g.rows >= rel.record["min_group_size"]]
        rows, report = self.privacy.release(prep.grant.grant_id, dp, job_id, rel.answer["columns"],
                                            rel.answer["rows"], funcs, counts=counts)
        from offchain.canonical import canonical_hash

        answer = {**rel.answer, "rows": rows}
        return Release(answer, {**rel.record, "dp": report, "answer_hash": canonical_hash(answer)})

    def _replay(self, view: JobView, done: tuple[str, bytes], query: Query | None) -> bytes:
        """A retry of a release: the same bytes, once the chain shows them released."""
        query_hash, sealed = done
        if query is not None and query.hash != query_hash:
            raise GrantRefused(f"job {view.job_id} was already released for another query", code="AlreadyReleased")
        if view.status != RELEASED:
            self._record_on_chain(view.job_id, query_hash, sealed)   # the transaction was lost: send it again
        elif self.chain.released_hash(view.job_id) != keccak(sealed):
            raise GrantRefused(f"job {view.job_id} was released on chain with another answer", code="ReleaseLost")
        return sealed

    def _record_on_chain(self, job_id: int, query_hash: str, sealed: bytes) -> None:
        if self.sender is None:
            raise GrantRefused("this key service has no provider wallet to record releases on chain",
                               code="Misconfigured")
        try:
            self._group_commit().record(job_id, keccak(sealed))
        except GrantRefused as exc:
            if exc.code == "AnswerAlreadyReleased" and self.chain.released_hash(job_id) == keccak(sealed):
                return  # an earlier attempt was mined after all (its receipt was lost with the node)
            self._released_discard(job_id, query_hash)   # refused on chain: nothing was released
            raise

    def _group_commit(self) -> ReleaseGroupCommit:
        """The release transactions' group commit for the current wallet (created on first use)."""
        with self._lock:
            gc = self._commits
            if gc is None or gc.sender is not self.sender:
                gc = self._commits = ReleaseGroupCommit(self.sender, self.chain.record_releases,
                                                        self.chain.record_release, self.release_batch)
            return gc

    def _log(self, action: str, requester: str, obj: dict[str, Any], error: str | None = None) -> None:
        if self.oplog is not None:
            self.oplog.append(OpRecord(action=action, actor_did=self.provider_did, actor_address=self.provider,
                                       object={**obj, "requester": requester}, result="failed" if error else "ok",
                                       error_code=error))


def discover_datasets(assets: Contract, fetch: Callable[[str], bytes], provider: str, from_block: int = 0
                      ) -> tuple[dict[str, dict], dict[int, set[str]]]:
    """The provider's registered datasets, from chain events and the content store.

    Each ``AssetRegistered`` of ``provider`` names the manifest's CID and hash; the manifest is
    fetched and kept only if its canonical hash is the one on chain (a store serving other
    bytes is ignored, not trusted). Assets since transferred away are skipped."""
    import json

    from chain.cid import cid_from_bytes
    from offchain.onion.dataset import manifest_hash

    manifests: dict[str, dict] = {}
    by_asset: dict[int, set[str]] = {}
    logs = assets.events.AssetRegistered().get_logs(from_block=from_block, argument_filters={"provider": provider})
    for ev in logs:
        a = ev["args"]
        if assets.functions.ownerOf(a["assetId"]).call() != provider:
            continue
        try:
            manifest = json.loads(fetch(cid_from_bytes(bytes(a["contentCid"])).encode()))
        except Exception:
            continue  # not in this store (e.g. another key service's data)
        if bytes.fromhex(manifest_hash(manifest)[2:]) != bytes(a["manifestHash"]):   # SM3 under sm
            continue
        manifests[manifest["dataset_id"]] = manifest
        by_asset[a["assetId"]] = {manifest["dataset_id"]}
    return manifests, by_asset
