"""The oracle's compute pipeline for one job, on ciphertext only.

params (by hash, from the store) → ask the provider's key service to *prepare* (tokens for
the constants + only the peeled RND keys the plan needs) → run the query engine over the
encrypted chunks → ask the key service to *release* (it opens exactly the aggregate and seals
the answer to the consumer) → store the sealed answer → (CID, keccak hash) for the chain.
Job errors become reason codes for ``failJob``; infrastructure errors propagate (retried).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from eth_utils import keccak

from chain.errors import InvalidCid
from offchain.errors import DataPlaneError, GrantRefused, PolicyError, QueryError
from offchain.onion.peel import PeeledKeys
from offchain.query.cluster import ClusterUnavailable
from offchain.query.engine import Engine, EncryptedResult
from offchain.query.plan import EncryptedQuery, Query
from chain.cid import parse_cid
from chain import ops
from chain.params import ParamsError, is_sealed, params_cid, parse_params
from oracle.runner import JobRequest, Outcome

# failJob reason codes (docs/oracle.md)
# Below Jobs.ORACLE_FAULT_FROM (0x100) the grant use stays consumed; from it up it is given back.
BAD_PARAMS = 1
QUERY_INVALID = 2
OPERATION_NOT_PAID = 3
POLICY_REFUSED = 4
RELEASE_REFUSED = 5
DATA_UNAVAILABLE = 6
GRANT_NOT_ACTIVE = 16      # revoked by the holder, or closed by the consumer
GRANT_FROZEN = 17          # frozen by the holder, the monitor or a regulator
ASSET_NOT_USABLE = 18      # asset frozen or taken offline
ROLE_REVOKED = 19          # the consumer's, provider's or oracle's participant role
DEADLINE_PASSED = 20
DATASET_NOT_GRANTED = 21   # the query reads an asset its grant does not cover
ORACLE_RESULT_REJECTED = 0x101  # the key service's recomputation disagreed with this oracle's result
COMPUTE_CLUSTER_LOST = 0x102    # the oracle's Dask cluster was unreachable or went away mid-query

REASONS = {BAD_PARAMS: "bad parameters", QUERY_INVALID: "query invalid (unknown column, bad plan)",
           OPERATION_NOT_PAID: "query needs operations the job did not request",
           POLICY_REFUSED: "dataset onions do not support the operation",
           RELEASE_REFUSED: "key service refused (grant scope or minimum group size)",
           DATA_UNAVAILABLE: "parameters or ciphertext not in the store",
           GRANT_NOT_ACTIVE: "grant revoked or closed", GRANT_FROZEN: "grant frozen",
           ASSET_NOT_USABLE: "asset frozen or offline", ROLE_REVOKED: "a participant's role was revoked",
           DEADLINE_PASSED: "job deadline passed", DATASET_NOT_GRANTED: "query reads an asset the grant does not cover",
           ORACLE_RESULT_REJECTED: "the oracle's result did not match the key service's recomputation",
           COMPUTE_CLUSTER_LOST: "the oracle's compute cluster was unreachable or went away mid-query"}

# the named refusals of the key service (or the contract error behind them) -> reason code
_REFUSALS = {"GrantNotActive": GRANT_NOT_ACTIVE, "UnknownGrant": GRANT_NOT_ACTIVE, "GrantIsFrozen": GRANT_FROZEN,
             "AssetNotUsable": ASSET_NOT_USABLE, "ConsumerNotRegistered": ROLE_REVOKED,
             "ProviderNotRegistered": ROLE_REVOKED, "OracleRoleRevoked": ROLE_REVOKED,
             "JobDeadlinePassed": DEADLINE_PASSED, "DatasetNotGranted": DATASET_NOT_GRANTED,
             "QueryNotCommitted": BAD_PARAMS, "BadParams": BAD_PARAMS, "ParamsNotSealed": BAD_PARAMS,
             "OperationNotPaid": OPERATION_NOT_PAID, "ResultRejected": ORACLE_RESULT_REJECTED}


def refusal_reason(exc: GrantRefused) -> int:
    """The failJob reason code of a key-service refusal (its code, also when it came over HTTP)."""
    code = getattr(exc, "code", None)
    if code in (None, "GrantRefused"):
        m = re.search(r"\[(\w+)\]", str(exc))
        code = m.group(1) if m else None
    return _REFUSALS.get(code or "", RELEASE_REFUSED)


class KeyServicePort(Protocol):
    """What the oracle asks of a provider's key service (in-process or over HTTP)."""

    def prepare(self, job_id: int, query: Query | None, oracle: str
                ) -> tuple[EncryptedQuery, PeeledKeys, dict[str, dict]]:
        ...

    def release(self, job_id: int, query: Query | None, result: EncryptedResult, oracle: str) -> bytes:
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
            params = parse_params(raw, job.params_hash)
            # sealed to the provider's key service: the oracle never reads the constants; the key
            # service checks the query against the job (and what was paid) and hands out tokens
            query = None if is_sealed(params) else Query.from_dict(params)
        except (ParamsError, QueryError, KeyError, TypeError, IndexError) as exc:
            return Outcome(reason_code=BAD_PARAMS, detail=str(exc))
        needed = ops.mask_of(query.operations()) if query is not None else 0
        if needed & ~job.operation:
            return Outcome(reason_code=OPERATION_NOT_PAID,
                           detail=f"query needs {ops.describe(needed)}, job requested {ops.describe(job.operation)}")
        try:
            enc, peeled, manifests = self.key_service.prepare(job.job_id, query, self.oracle_address)
            result = Engine(manifests, self.store.cat, peeled, processes=self.processes).run(enc)
            sealed = self.key_service.release(job.job_id, query, result, self.oracle_address)
        except ClusterUnavailable as exc:  # the oracle's fault, not the consumer's: the use is given back
            return Outcome(reason_code=COMPUTE_CLUSTER_LOST, detail=str(exc))
        except GrantRefused as exc:
            return Outcome(reason_code=refusal_reason(exc), detail=str(exc))
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

