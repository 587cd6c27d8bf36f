"""What the provider's key service reads from and writes to the chain for one job.

Every answer to "may this be released?" comes from the chain at the moment of asking, never from
a cache: the job and who accepted it, the grant behind it, who holds the asset, the parameters
the consumer committed (by hash, in ``JobRequested``), and — in one view call that reverts with a
named custom error — whether the grant, the asset and every participant's role still allow a
release (``Jobs.checkRelease``). The release itself is recorded by the provider's own transaction
(``Jobs.recordRelease``), which re-checks all of it in the block that includes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from eth_abi import decode
from eth_utils import event_abi_to_log_topic
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from chain.connection import log_matches
from chain.jobstatus import ACCEPTED, NAMES, RELEASED
from chain.params import ParamsError, params_cid, parse_params
from chain.retry import is_transient
from chain.revert import describe_revert
from chain.tx import Reverted, Sender
from offchain.errors import GrantRefused
from offchain.keyservice.rawcalls import RawCallsUnavailable, ViewCall, call_batch


@dataclass(frozen=True)
class JobView:
    """One job as the chain has it now."""

    job_id: int
    grant_id: int
    status: int
    paid_mask: int
    deadline: int
    oracle: str
    consumer: str
    granted_mask: int
    asset_id: int
    expiry: int
    holder: str
    price: int


def refused_by_chain(exc: BaseException) -> GrantRefused | None:
    """A contract's custom-error revert as a named refusal (None if ``exc`` is not a revert)."""
    if isinstance(exc, Reverted):
        return GrantRefused(str(exc), code=exc.error)
    data = getattr(exc, "data", None)
    if isinstance(exc, (ContractCustomError, ContractLogicError)) and isinstance(data, (str, bytes)) and data:
        text = describe_revert(data)
        return GrantRefused(f"the chain refuses it: {text}", code=text.split("(", 1)[0])
    return None


class JobChain:
    """The key service's reads and writes against Jobs, Authorizations and AssetRegistry."""

    def __init__(self, jobs: Contract, authorizations: Contract, assets: Contract, from_block: int = 0) -> None:
        self.jobs, self.authorizations, self.assets = jobs, authorizations, assets
        self.from_block = from_block
        self._asset_of: dict[int, int] = {}    # grant id -> asset id (a grant's asset never changes)
        self._views: tuple[ViewCall, ViewCall, ViewCall, ViewCall] | None = None
        self._raw = True                        # False once the node refused a raw batch
        self._requested_topic: str | None = None
        self._requested_data: tuple[list[str], int] = ([], 0)
        self._requested_logs: dict[int, list[Any]] = {}   # job id -> its JobRequested logs, read with the job

    def job_checked(self, job_id: int, oracle: str, params: bool = False) -> tuple[JobView, bool]:
        """The job (as :meth:`job`) and whether ``Jobs.checkRelease(job, oracle)`` passes now, read
        in one JSON-RPC batch (:mod:`offchain.keyservice.rawcalls`) — with ``params``, the job's
        ``JobRequested`` log too, for the next :meth:`committed_params`. False does not name the
        refusal: :meth:`check_release` does. Falls back to the separate web3 reads when the batch
        cannot answer (an unknown job or grant, a node without batches, the grant's asset not yet known)."""
        grant_id = job_id >> 32
        asset = self._asset_of.get(grant_id)
        if self._raw and asset is not None:
            try:
                if self._views is None:
                    self._views = (ViewCall(self.jobs, "jobOf"), ViewCall(self.authorizations, "grantOf"),
                                   ViewCall(self.assets, "ownerOf"), ViewCall(self.jobs, "checkRelease"))
                job_of, grant_of, owner_of, check = self._views
                query = self._requested_query(job_id) if params else None
                got = call_batch(self.jobs.w3, [(job_of, (job_id,)), (grant_of, (grant_id,)), (owner_of, (asset,)),
                                                (check, (job_id, oracle))],
                                 [("eth_getLogs", [query])] if query else [])
                if query is not None and isinstance(got[4], list):
                    self._keep_requested(job_id, [lg for lg in got[4] if log_matches(lg, query)])
                if all(r is not None for r in got[:3]):
                    (core, exec_), (g,), (holder,) = got[0], got[1], got[2]
                    if core[0] == grant_id and g[8] == asset:
                        return self._view(job_id, core, exec_, g, holder), got[3] is not None
            except Exception as exc:  # the web3 path below answers (and names errors)
                if is_transient(exc):
                    raise
                if isinstance(exc, RawCallsUnavailable):
                    self._raw = False
        view = self.job(job_id)
        try:
            self.check_release(job_id, oracle)
            return view, True
        except GrantRefused:
            return view, False

    @staticmethod
    def _view(job_id: int, core: Any, exec_: Any, g: Any, holder: str) -> JobView:
        return JobView(job_id, core[0], core[3], core[4], core[2], exec_[0], g[0], g[3], g[8], g[10], holder, g[12])

    def job(self, job_id: int) -> JobView:
        """Job, grant and asset holder, read in one JSON-RPC batch (job id = grantId << 32 | use)."""
        try:
            core, exec_, g = self._batch(job_id)
        except Exception as exc:
            if is_transient(exc):
                raise
            refusal = refused_by_chain(exc)
            if refusal is not None:
                raise refusal from None
            raise GrantRefused(f"job {job_id} cannot be read on chain: {exc}", code="UnknownJob") from None
        holder = self.assets.functions.ownerOf(g[8]).call()
        self._asset_of[core[0]] = g[8]
        return self._view(job_id, core, exec_, g, holder)

    def _batch(self, job_id: int) -> tuple[Any, Any, Any]:
        try:
            with self.jobs.w3.batch_requests() as batch:
                batch.add(self.jobs.functions.jobOf(job_id))
                batch.add(self.authorizations.functions.grantOf(job_id >> 32))
                (core, exec_), g = batch.execute()
            if core[0] == job_id >> 32:
                return core, exec_, g
        except Exception as exc:  # an unknown job reverts inside the batch: the plain reads name it
            if is_transient(exc):
                raise
        core, exec_ = self.jobs.functions.jobOf(job_id).call()
        return core, exec_, self.authorizations.functions.grantOf(core[0]).call()

    def require_accepted_by(self, view: JobView, oracle: str) -> None:
        """The job must be Accepted (or already Released) by ``oracle``."""
        if view.status not in (ACCEPTED, RELEASED) or view.oracle != oracle:
            state = NAMES[view.status] if view.status < len(NAMES) else str(view.status)
            raise GrantRefused(f"job {view.job_id} is {state} and not accepted by {oracle}", code="NotJobOracle")

    def check_release(self, job_id: int, oracle: str) -> None:
        """``Jobs.checkRelease``: grant active and not frozen, asset active, every role held."""
        try:
            self.jobs.functions.checkRelease(job_id, oracle).call()
        except Exception as exc:
            if is_transient(exc):
                raise
            refusal = refused_by_chain(exc)
            if refusal is None:
                raise
            raise refusal from None

    def committed_params(self, job_id: int, fetch: Callable[[str], bytes]) -> dict[str, Any]:
        """The parameters the consumer committed for ``job_id`` (``paramsHash`` in JobRequested),
        fetched from the content store by the CID that hash determines and checked against it."""
        digest = self._params_hash(job_id)
        try:
            return parse_params(fetch(params_cid(digest)), digest)
        except ParamsError as exc:
            raise GrantRefused(f"job {job_id}'s committed parameters: {exc}", code="BadParams") from None

    def _requested_query(self, job_id: int) -> dict[str, Any]:
        """The ``eth_getLogs`` filter of the job's ``JobRequested`` (by its topics)."""
        if self._requested_topic is None:
            entry = next(e for e in self.jobs.abi if e.get("type") == "event" and e.get("name") == "JobRequested")
            self._requested_topic = "0x" + event_abi_to_log_topic(entry).hex()
            data = [i for i in entry["inputs"] if not i["indexed"]]
            self._requested_data = ([i["type"] for i in data], [i["name"] for i in data].index("paramsHash"))
        return {"address": self.jobs.address, "fromBlock": hex(self.from_block), "toBlock": "latest",
                "topics": [self._requested_topic, "0x" + job_id.to_bytes(32, "big").hex()]}

    def _keep_requested(self, job_id: int, logs: list[Any]) -> None:
        """Keep the ``JobRequested`` logs read with the job for the :meth:`_params_hash` that follows."""
        if len(self._requested_logs) > 1024:   # never taken (the caller failed in between): forget them
            self._requested_logs.clear()
        self._requested_logs[job_id] = logs

    def _params_hash(self, job_id: int) -> bytes:
        """``paramsHash`` of the job's ``JobRequested``: read along with the job (:meth:`job_checked`)
        or by its topics now, decoded by hand (the contract-event API re-validates the whole ABI per call)."""
        query = self._requested_query(job_id)
        logs = self._requested_logs.pop(job_id, None)
        if not logs:
            logs = self.jobs.w3.eth.get_logs({**query, "fromBlock": self.from_block})
        if not logs:
            raise GrantRefused(f"no JobRequested event for job {job_id}", code="UnknownJob")
        data = logs[-1]["data"]
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        types, at = self._requested_data
        return bytes(decode(types, raw)[at])

    def record_release(self, sender: Sender, job_id: int, result_hash: bytes, gas: int | None = None) -> None:
        """The provider's transaction ``recordRelease``; a revert becomes a named refusal. With
        ``gas`` None the limit is estimated (a refusal is then named before anything is sent)."""
        _send_or_refuse(sender, self.jobs.functions.recordRelease(job_id, result_hash), gas)

    def record_releases(self, sender: Sender, job_ids: list[int], result_hashes: list[bytes],
                        gas: int | None = None) -> None:
        """``recordReleases``: several releases in one transaction, all or nothing."""
        _send_or_refuse(sender, self.jobs.functions.recordReleases(job_ids, result_hashes), gas)

    def terms_hash(self, grant_id: int) -> bytes:
        """The grant's ``purposeHash`` (its terms), from its ``GrantIssued`` event; immutable."""
        logs = self.authorizations.events.GrantIssued().get_logs(from_block=self.from_block,
                                                                argument_filters={"grantId": grant_id})
        if not logs:
            raise GrantRefused(f"no GrantIssued event for grant {grant_id}", code="UnknownGrant")
        return bytes(logs[-1]["args"]["terms"]["purposeHash"])

    def released_hash(self, job_id: int) -> bytes:
        return bytes(self.jobs.functions.releasedHash(job_id).call())


def _send_or_refuse(sender: Sender, fn: Any, gas: int | None) -> None:
    """Send ``fn``; a revert by the contract becomes the named refusal (:func:`refused_by_chain`)."""
    try:
        sender.send(fn, gas=gas)
    except Exception as exc:
        refusal = refused_by_chain(exc)
        if refusal is None:
            raise
        raise refusal from None
