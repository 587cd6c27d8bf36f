"""Job parameters: the consumer's query, stored content-addressed, committed on chain by hash.

``paramsHash`` (on chain) = sha-256 of the canonical query JSON. Stored as a single raw block,
its CIDv1 is ``raw`` + sha2-256 of exactly those bytes, so the oracle derives the CID from the
hash on chain alone and the store cannot substitute other parameters.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from chain.cid import Cid

RAW_CODEC = 0x55
MAX_PARAMS = 256 * 1024  # one raw block


class ParamsError(ValueError):
    """Parameters that are missing, oversized, not JSON or not matching the hash on chain."""


def canonical_params(query: dict[str, Any]) -> bytes:
    data = json.dumps(query, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > MAX_PARAMS:
        raise ParamsError(f"job parameters are {len(data)} bytes; the limit is {MAX_PARAMS}")
    return data


def params_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def params_cid(digest: bytes) -> str:
    """The CIDv1 (raw, sha2-256) of a parameter block with sha-256 ``digest``."""
    return Cid(version=1, codec=RAW_CODEC, digest=digest).encode()


def parse_params(data: bytes, expected: bytes) -> dict[str, Any]:
    """Check ``data`` against the on-chain hash and decode it."""
    if params_hash(data) != expected:
        raise ParamsError("job parameters do not match paramsHash on chain")
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ParamsError(f"job parameters are not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ParamsError("job parameters must be a JSON object")
    return obj
