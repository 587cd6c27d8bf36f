"""The provider's key service with its on-chain checks (``tds provider serve`` wraps it).

Before it peels a layer or opens an aggregate it re-reads the chain: the job must be Accepted
by the oracle asking, the grant must belong to this provider's asset and be usable by the
job's consumer, and only operations both granted and paid for are allowed. It opens exactly
one aggregate per job (never rows), seals the answer to the consumer's key-agreement key, and
logs every release for anchoring.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from web3.contract import Contract

from offchain.errors import GrantRefused
from offchain.keyservice.release import Grant, KeyService
from offchain.onion.peel import PeeledKeys
from offchain.query.engine import EncryptedResult
from offchain.query.plan import EncryptedQuery, Query
from chain import ops
from audit.oplog import OpLog, OpRecord
from chain.retry import is_transient
from chain.jobstatus import ACCEPTED

# seal(payload, consumer_address) -> bytes only that consumer can open
Sealer = Callable[[dict[str, Any], str], bytes]


@dataclass
class ProviderKeyService:
    """One provider's key service: datasets by asset id, the pure key service, sealing, log."""

    jobs: Contract
    authorizations: Contract
    assets: Contract
    provider: str
    provider_did: str
    service: KeyService
    datasets_by_asset: dict[int, set[str]]
    seal: Sealer
    oplog: OpLog | None = None
    _released: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    _prepared: dict[tuple[int, str, str], Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register_asset(self, asset_id: int, dataset_ids: set[str]) -> None:
        self.datasets_by_asset[asset_id] = set(dataset_ids)

    def _read_chain(self, job_id: int, query: Query) -> tuple[tuple, tuple, tuple, str | None]:
        """(job core, job exec, grant, holder of the grant's asset). One JSON-RPC batch when the
        job id names its grant (``grantId << 32 | useIndex``) and the query's dataset names the
        asset — both re-checked against what the chain returns; otherwise three reads in turn."""
        asset_guess = next((a for a, ids in self.datasets_by_asset.items() if query.dataset in ids), None)
        if asset_guess is not None:
            try:
                with self.jobs.w3.batch_requests() as batch:
                    batch.add(self.jobs.functions.jobOf(job_id))
                    batch.add(self.authorizations.functions.grantOf(job_id >> 32))
                    batch.add(self.assets.functions.ownerOf(asset_guess))
                    (core, exec_), g, owner = batch.execute()
                if core[0] == job_id >> 32 and g[8] == asset_guess:
                    return core, exec_, g, owner
            except Exception as exc:  # an unknown job or grant reverts: the plain reads name it
                if is_transient(exc):
                    raise
        core, exec_ = self.jobs.functions.jobOf(job_id).call()
        g = self.authorizations.functions.grantOf(core[0]).call()
        return core, exec_, g, None

    def _grant_for(self, job_id: int, query: Query, oracle: str) -> Grant:
        core, exec_, g, owner = self._read_chain(job_id, query)
        grant_id, status, paid_mask = core[0], core[3], core[4]
        if status != ACCEPTED or exec_[0] != oracle:
            raise GrantRefused(f"job {job_id} is not accepted by {oracle}")
        consumer, granted_mask, asset_id, expiry = g[0], g[3], g[8], g[10]
        if owner is None:
            owner = self.assets.functions.ownerOf(asset_id).call()
        if owner != self.provider:
            raise GrantRefused(f"asset {asset_id} of job {job_id} is not held by this provider")
        datasets = set(self.datasets_by_asset.get(asset_id, set()))
        if not datasets:
            raise GrantRefused(f"this key service holds no dataset for asset {asset_id}")
        mask = granted_mask & paid_mask
        if query.join:
            datasets |= self._join_datasets(query, consumer)
        return Grant(grant_id=str(grant_id), consumer=consumer, datasets=frozenset(datasets),
                     operations=ops.allowed(query.operations(), mask), expires_at=expiry or None)

    def _join_datasets(self, query: Query, consumer: str) -> set[str]:
        """A JOIN partner table must be another asset of this provider the consumer may join on."""
        for asset_id, ids in self.datasets_by_asset.items():
            if query.join and query.join.dataset in ids:
                if self.assets.functions.ownerOf(asset_id).call() == self.provider:
                    return set(ids)
        return set()

    def prepare(self, job_id: int, query: Query, oracle: str) -> tuple[EncryptedQuery, PeeledKeys, dict[str, dict]]:
        grant = self._grant_for(job_id, query, oracle)
        with self._lock:
            self._prepared[(job_id, oracle, query.hash)] = grant
        enc, peeled = self.service.prepare(query, grant)
        manifests = {d: self.service.manifests[d] for d in enc.datasets.values()}
        self._log("key-release", oracle, {"job": job_id, "grant": grant.grant_id, "layers": peeled.describe()})
        return enc, peeled, manifests

    def release(self, job_id: int, query: Query, result: EncryptedResult, oracle: str) -> bytes:
        # the grant was checked on chain moments ago by prepare(); only the job's state can have
        # moved since (failed, reclaimed, taken over), and that is one read
        with self._lock:
            grant = self._prepared.pop((job_id, oracle, query.hash), None)
        if grant is None:
            grant = self._grant_for(job_id, query, oracle)
        else:
            core, exec_ = self.jobs.functions.jobOf(job_id).call()
            if core[3] != ACCEPTED or exec_[0] != oracle:
                raise GrantRefused(f"job {job_id} is no longer accepted by {oracle}")
        with self._lock:
            # One release per job: a retry (oracle restarted mid-job) gets the same sealed
            # bytes, so the CID and hash it posts are the same too.
            done = self._released.get(job_id)
            if done is not None:
                if done[0] != query.hash:
                    raise GrantRefused(f"job {job_id} was already released for another query")
                return done[1]
            rel = self.service.open(query, grant, result)
            sealed = self.seal({"job": job_id, "answer": rel.answer, "release": rel.record}, grant.consumer)
            self._released[job_id] = (query.hash, sealed)
        self._log("open-result", oracle, {"job": job_id, "grant": grant.grant_id,
                                          "answer_hash": rel.record["answer_hash"]})
        return sealed

    def _log(self, action: str, requester: str, obj: dict[str, Any]) -> None:
        if self.oplog is not None:
            self.oplog.append(OpRecord(action=action, actor_did=self.provider_did, actor_address=self.provider,
                                       object={**obj, "requester": requester}))


def discover_datasets(assets: Contract, fetch: Callable[[str], bytes], provider: str, from_block: int = 0
                      ) -> tuple[dict[str, dict], dict[int, set[str]]]:
    """The provider's registered datasets, from chain events and the content store.

    Each ``AssetRegistered`` of ``provider`` names the manifest's CID and hash; the manifest is
    fetched and kept only if its canonical hash is the one on chain (a store serving other
    bytes is ignored, not trusted). Assets since transferred away are skipped."""
    import json

    from offchain.canonical import canonical_hash
    from chain.cid import cid_from_bytes

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
        if bytes.fromhex(canonical_hash(manifest)[2:]) != bytes(a["manifestHash"]):
            continue
        manifests[manifest["dataset_id"]] = manifest
        by_asset[a["assetId"]] = {manifest["dataset_id"]}
    return manifests, by_asset
