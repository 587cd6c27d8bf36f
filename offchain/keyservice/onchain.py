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

from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from chain.jobstatus import ACCEPTED, NAMES, RELEASED
from chain.params import ParamsError, params_cid, parse_params
from chain.retry import is_transient
from chain.revert import describe_revert
from chain.tx import Reverted, Sender
from offchain.errors import GrantRefused


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
        return JobView(job_id, core[0], core[3], core[4], core[2], exec_[0], g[0], g[3], g[8], g[10], holder, g[12])

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
        logs = self.jobs.events.JobRequested().get_logs(from_block=self.from_block,
                                                        argument_filters={"jobId": job_id})
        if not logs:
            raise GrantRefused(f"no JobRequested event for job {job_id}", code="UnknownJob")
        digest = bytes(logs[-1]["args"]["paramsHash"])
        try:
            return parse_params(fetch(params_cid(digest)), digest)
        except ParamsError as exc:
            raise GrantRefused(f"job {job_id}'s committed parameters: {exc}", code="BadParams") from None

    def record_release(self, sender: Sender, job_id: int, result_hash: bytes) -> None:
        """The provider's transaction ``recordRelease``; a revert becomes a named refusal."""
        try:
            sender.send(self.jobs.functions.recordRelease(job_id, result_hash))
        except Exception as exc:
            refusal = refused_by_chain(exc)
            if refusal is None:
                raise
            raise refusal from None

    def terms_hash(self, grant_id: int) -> bytes:
        """The grant's ``purposeHash`` (its terms), from its ``GrantIssued`` event; immutable."""
        logs = self.authorizations.events.GrantIssued().get_logs(from_block=self.from_block,
                                                                argument_filters={"grantId": grant_id})
        if not logs:
            raise GrantRefused(f"no GrantIssued event for grant {grant_id}", code="UnknownGrant")
        return bytes(logs[-1]["args"]["terms"]["purposeHash"])

    def released_hash(self, job_id: int) -> bytes:
        return bytes(self.jobs.functions.releasedHash(job_id).call())
