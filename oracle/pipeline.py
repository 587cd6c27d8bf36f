"""The oracle's compute pipeline for one job, on ciphertext only.

params (by hash, from the store) → ask the provider's key service to *prepare* (tokens for
the constants + only the peeled RND keys the plan needs) → run the query engine over the
encrypted chunks → ask the key service to *release* (it opens exactly the aggregate and seals
the answer to the consumer) → store the sealed answer → (CID, keccak hash) for the chain.
Job errors become reason codes for ``failJob``; infrastructure errors propagate (retried).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from eth_utils import keccak

from chain.errors import InvalidCid
from offchain.errors import DataPlaneError, GrantRefused, PolicyError, QueryError
from offchain.onion.peel import PeeledKeys
from offchain.query.engine import Engine, EncryptedResult
from offchain.query.plan import EncryptedQuery, Query
from chain.cid import parse_cid
from chain import ops
from chain.params import ParamsError, params_cid, parse_params
from oracle.runner import JobRequest, Outcome

# failJob reason codes (docs/oracle.md)
BAD_PARAMS = 1
QUERY_INVALID = 2
OPERATION_NOT_PAID = 3
POLICY_REFUSED = 4
RELEASE_REFUSED = 5
DATA_UNAVAILABLE = 6

REASONS = {BAD_PARAMS: "bad parameters", QUERY_INVALID: "query invalid (unknown column, bad plan)",
           OPERATION_NOT_PAID: "query needs operations the job did not request",
           POLICY_REFUSED: "dataset onions do not support the operation",
           RELEASE_REFUSED: "key service refused (grant scope or minimum group size)",
           DATA_UNAVAILABLE: "parameters or ciphertext not in the store"}


class KeyServicePort(Protocol):
    """What the oracle asks of a provider's key service (in-process or over HTTP)."""

    def prepare(self, job_id: int, query: Query, oracle: str) -> tuple[EncryptedQuery, PeeledKeys, dict[str, dict]]:
        ...

    def release(self, job_id: int, query: Query, result: EncryptedResult, oracle: str) -> bytes:
        ...


class Store(Protocol):
    def add_bytes(self, data: bytes, cid_version: int = 0, pin: bool = True) -> str: ...
    def cat(self, cid: str) -> bytes: ...


@dataclass
class JobPipeline:
    """Compute function for :class:`oracle.runner.OracleRunner`."""

    store: Store
    key_service: KeyServicePort
    oracle_address: str
    processes: int = 1

    def __call__(self, job: JobRequest) -> Outcome:
        try:
            raw = self.store.cat(params_cid(job.params_hash))
        except Exception as exc:
            return Outcome(reason_code=DATA_UNAVAILABLE, detail=f"parameters not found: {exc}")
        try:
            query = Query.from_dict(parse_params(raw, job.params_hash))
        except (ParamsError, QueryError, KeyError, TypeError, IndexError) as exc:
            return Outcome(reason_code=BAD_PARAMS, detail=str(exc))
        needed = ops.mask_of(query.operations())
        if needed & ~job.operation:
            return Outcome(reason_code=OPERATION_NOT_PAID,
                           detail=f"query needs {ops.describe(needed)}, job requested {ops.describe(job.operation)}")
        try:
            enc, peeled, manifests = self.key_service.prepare(job.job_id, query, self.oracle_address)
            result = Engine(manifests, self.store.cat, peeled, processes=self.processes).run(enc)
            sealed = self.key_service.release(job.job_id, query, result, self.oracle_address)
        except GrantRefused as exc:
            return Outcome(reason_code=RELEASE_REFUSED, detail=str(exc))
        except PolicyError as exc:
            return Outcome(reason_code=POLICY_REFUSED, detail=str(exc))
        except QueryError as exc:
            return Outcome(reason_code=QUERY_INVALID, detail=str(exc))
        except (DataPlaneError, InvalidCid) as exc:
            return Outcome(reason_code=QUERY_INVALID, detail=f"{type(exc).__name__}: {exc}")
        cid = self.store.add_bytes(sealed, cid_version=1)
        return Outcome(result_cid=parse_cid(cid).to_bytes(), result_hash=keccak(sealed))


def result_cid_text(cid_bytes: bytes) -> str:
    """The text CID of the binary CID posted on chain."""
    from chain.cid import cid_from_bytes

    return cid_from_bytes(cid_bytes).encode()


def describe_reason(code: int) -> str:
    return REASONS.get(code, f"reason {code}")

