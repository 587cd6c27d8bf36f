"""A job's sealed result as the gateway serves it to the job's consumer: the bytes the content
store holds under the ``resultCid`` the chain recorded, checked against the ``resultHash`` the chain
committed to (the gateway cannot open them: they are sealed to the consumer)."""
from __future__ import annotations

from typing import Any, Callable

from eth_utils import keccak

from tds.gateway.errors import BadUpstream, Forbidden, NotFound, Unavailable


def consumers_result(reader: Any, fetcher: Callable[[str], bytes | None] | None, job_id: int,
                     account: str, what: str = "result") -> tuple[str, bytes, bytes]:
    """``(cid, result hash, bytes)`` of ``job_id``'s result for ``account``, its consumer; refusals
    are the gateway's named errors (unknown job 404, not the consumer 403, no result 404, store 503,
    bytes that do not match the chain 502)."""
    from audit.verify import cid_text

    req = reader.select("Jobs", "JobRequested", jobId=job_id)
    if not req:
        raise NotFound("unknown-job", f"unknown job {job_id}: no JobRequested event for it")
    if req[0].args["consumer"] != account:
        raise Forbidden("not-consumer", f"job {job_id}'s {what} is sealed for its consumer "
                                        f"{req[0].args['consumer']}, not for {account}")
    done = reader.select("Jobs", "JobCompleted", jobId=job_id)
    if not done:
        raise NotFound("no-result", f"job {job_id} has no result yet")
    if fetcher is None:
        raise Unavailable("store-unavailable", "this gateway has no content store to read results from")
    cid, want = cid_text(done[0].args["resultCid"]), bytes(done[0].args["resultHash"])
    try:
        data = fetcher(cid)
    except Exception as exc:
        raise Unavailable("store-unavailable", f"the content store cannot return {cid}: {exc}") from None
    if data is None:
        raise Unavailable("store-unavailable", f"the content store does not hold {cid}")
    if keccak(data) != want:
        raise BadUpstream("result-hash-mismatch", f"the stored result {cid} does not hash to the resultHash "
                                                  "on chain; refusing to serve it")
    return cid, want, data
