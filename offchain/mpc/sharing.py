"""Shamir sharing of provider inputs and Lagrange reconstruction of outputs (no MPC runtime here).

A provider is not an MPC party: it splits each value into ``m`` Shamir shares of degree
``t = (m-1)//2`` over the same prime field MPyC's fixed-point type uses (``ROW_PRIME``, the prime
``SecFxp(ROW_BITS, FRAC_BITS)`` picks) and seals share ``i`` to compute node ``i`` with a
:mod:`did.envelope` bound to the session, the step and the node. A node loads the field
elements as its shares of a secure fixed-point array. Outputs come back the same way: each node
seals its share of every result to the consumer, who interpolates at 0 — the only place an
output exists in the clear.

Fixed point: a value ``x`` is the field element ``round(x * 2**FRAC_BITS)`` (negatives mod p);
inputs need ``|x| < MAX_ABS`` so that secure comparisons of differences stay in ``CMP_BITS``.
"""
from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from did.envelope import open_envelope, seal
from did.errors import IdentityError
from offchain.mpc.errors import (
    BundleRefused,
    InputOutOfRange,
    MpcSpecError,
    OutputRefused,
    UnknownCategory,
)

if TYPE_CHECKING:
    from did.identity import Identity

# --- field and threshold parameters (the node checks MPyC derives the same primes) --------------
SEC_PARAM = 30                     # MPyC's statistical security parameter k (leakage 2**-k)
FRAC_BITS = 16                     # fixed-point fraction of inputs: resolution 2**-16 ~ 1.5e-5
ROW_BITS = 80                      # bit length l of the row type SecFxp(80, 16): sums up to 2**63
CMP_BITS = 48                      # bit length of secure comparisons of row values
MAX_ABS = float(2 ** 30)           # inputs |x| < 2**30, so |x - y| * 2**16 < 2**47
WIDE_BITS, WIDE_FRAC = 112, 56     # SecFxp(112, 56) finishes mean/variance/sqrt/correlation
ROW_PRIME = 340282366920938463463374607431768211283            # 128-bit: l + f + k + 2 bits
WIDE_PRIME = 1606938044258990275541962092341162602522202993782792835301259  # 200-bit
MAGIC = b"tds-mpc-shares/v1\n"


def threshold(m: int) -> int:
    """Shamir degree for ``m`` compute nodes: honest majority, t < m/2 (MPyC's default)."""
    if m < 3:
        raise MpcSpecError(f"{m} compute nodes: at least 3 are needed for an honest majority")
    return (m - 1) // 2


def purpose(session: str, step: str, node: int) -> str:
    """Envelope purpose binding a bundle to one session, one step and one compute node."""
    return f"tds-mpc:{session}:{step}:node{node}"


@dataclass(frozen=True)
class NodeKey:
    """What a provider needs to seal to a compute node: its DID and on-chain key-agreement key
    (``x25519``: the raw X25519 key, or under the ``sm`` profile the ``x`` of its SM2 key —
    :func:`did.envelope.seal` seals with the profile of the sender)."""

    did: str
    x25519: bytes

    @classmethod
    def of(cls, identity: Identity) -> NodeKey:
        return cls(identity.did, identity.key_agreement_key)


# --- field arithmetic on numpy object arrays (one C loop per operation) -----------------------
def _limbs(p: int) -> int:
    """64-bit limbs whose value mod p is within 2**-64 of uniform on GF(p)."""
    limbs = (p.bit_length() + 63) // 64
    while (1 << (64 * limbs)) % p << 64 >= 1 << (64 * limbs):
        limbs += 1
    return limbs


def random_field(n: int, p: int) -> np.ndarray:
    """``n`` uniform elements of GF(p) (bias below 2**-64), from one os.urandom call."""
    limbs = _limbs(p)
    raw = np.frombuffer(os.urandom(8 * limbs * n), dtype=np.uint64).reshape(limbs, n)
    acc = raw[0].astype(object)
    for limb in raw[1:]:
        acc = (acc << 64) | limb.astype(object)
    return acc % p


def shamir_split(secrets: np.ndarray, t: int, m: int, p: int) -> np.ndarray:
    """Shares of each secret for parties 1..m: row ``i`` holds f(i+1), deg f = t, f(0) = secret."""
    s = np.asarray(secrets, dtype=object).reshape(-1)
    if t == 1:                                  # f(x) = s + c x: f(x+1) = f(x) + c
        c, rows, y = random_field(s.size, p), [], s
        for _ in range(m):
            y = (y + c) % p
            rows.append(y)
        return np.stack(rows)
    coeffs = [random_field(s.size, p) for _ in range(t)]
    rows = []
    for x in range(1, m + 1):
        y = np.zeros(s.size, dtype=object)
        for c in coeffs:                       # Horner: ((c_t x + c_{t-1}) x + ...) x
            y = (y + c) * x
        rows.append((y + s) % p)
    return np.stack(rows)


def lagrange(xs: Sequence[int], at: int, p: int) -> list[int]:
    """Coefficients c_i with f(at) = sum c_i f(xs[i]) for every f of degree < len(xs)."""
    out = []
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num, den = num * (at - xj) % p, den * (xi - xj) % p
        out.append(num * pow(den, -1, p) % p)
    return out


def reconstruct(points: Mapping[int, Sequence[int]], p: int, t: int) -> list[int]:
    """Secrets from shares ``{x: [share, ...]}`` (x = node index + 1); with more than t+1
    points every extra one must lie on the same degree-t polynomial, else OutputRefused."""
    if len(points) < t + 1:
        raise OutputRefused(f"{len(points)} output shares, {t + 1} are needed to reconstruct")
    xs = sorted(points)
    base = xs[: t + 1]
    cols = [np.asarray(points[x], dtype=object) for x in base]
    secret = sum(c * v for c, v in zip(lagrange(base, 0, p), cols)) % p
    for x in xs[t + 1:]:
        expect = sum(c * v for c, v in zip(lagrange(base, x, p), cols)) % p
        if not np.array_equal(expect, np.asarray(points[x], dtype=object) % p):
            raise OutputRefused(f"output shares are inconsistent (node {x - 1} disagrees with nodes "
                                f"{[b - 1 for b in base]}): a compute node misbehaved; output discarded")
    return [int(v) for v in np.atleast_1d(secret)]


def to_signed(v: int, p: int) -> int:
    return v - p if v > p // 2 else v


# --- encoding of values --------------------------------------------------------------------------
def encode_fixed(column: str, values: Sequence[float | int]) -> np.ndarray:
    """Fixed-point field representatives (object ints) of a numeric column; refuses NaN/inf and
    values outside ``MAX_ABS``."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    bad = ~np.isfinite(arr) | (np.abs(arr) >= MAX_ABS)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputOutOfRange(column, row, values[row], MAX_ABS)
    return (np.rint(arr * 2 ** FRAC_BITS).astype(np.int64).astype(object)) % ROW_PRIME


def encode_onehot(column: str, values: Sequence[Any], categories: Sequence[Any]) -> np.ndarray:
    """Row-major (rows x groups) one-hot indicators in fixed point (1 -> 2**FRAC_BITS)."""
    index = {c: g for g, c in enumerate(categories)}
    out = np.zeros((len(values), len(categories)), dtype=object)
    for r, v in enumerate(values):
        if v not in index:
            raise UnknownCategory(column, r, v)
        out[r, index[v]] = 1 << FRAC_BITS
    return out


def _pack(values: np.ndarray, width: int) -> bytes:
    """Little-endian fixed-width bytes of field elements, via 64-bit limbs."""
    flat = np.asarray(values, dtype=object).reshape(-1)
    limbs = [((flat >> (64 * j)) & 0xFFFFFFFFFFFFFFFF).astype(np.uint64) for j in range(width // 8)]
    return np.stack(limbs, axis=1).astype("<u8").tobytes() if flat.size else b""


def _unpack(raw: bytes, count: int, width: int) -> np.ndarray:
    limbs = np.frombuffer(raw, dtype="<u8", count=count * width // 8).reshape(count, width // 8)
    acc = np.zeros(count, dtype=object)
    for j in reversed(range(width // 8)):
        acc = (acc << 64) | limbs[:, j].astype(object)
    return acc


WIDTH = 8 * math.ceil(ROW_PRIME.bit_length() / 64)


def share_inputs(columns: Mapping[str, Sequence[Any]], nodes: Sequence[NodeKey], provider: Identity,
                 session: str, *, categories: Mapping[str, Sequence[Any]] | None = None) -> list[bytes]:
    """Secret-share a provider's columns: one sealed bundle per compute node (in node order).

    Numeric columns become fixed-point shares; a column named in ``categories`` (the public
    list of its values, e.g. the group-by key) becomes one-hot shares over those categories."""
    cats = dict(categories or {})
    m, t = len(nodes), threshold(len(nodes))
    specs, per_node = [], [[] for _ in range(m)]
    for name, values in columns.items():
        values = list(values)
        if name in cats:
            enc = encode_onehot(name, values, cats[name])
            specs.append({"name": name, "kind": "onehot", "rows": len(values),
                          "categories": [str(c) for c in cats[name]]})
        else:
            enc = encode_fixed(name, values)
            specs.append({"name": name, "kind": "value", "rows": len(values)})
        shares = shamir_split(enc.reshape(-1), t, m, ROW_PRIME)
        for i in range(m):
            per_node[i].append(_pack(shares[i], WIDTH))
    out = []
    for i, node in enumerate(nodes):
        header = {"session": session, "step": "inputs", "provider": provider.did, "node": i, "x": i + 1,
                  "nodes": m, "threshold": t, "prime": hex(ROW_PRIME), "frac": FRAC_BITS, "width": WIDTH,
                  "columns": specs}
        head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        body = MAGIC + struct.pack(">I", len(head)) + head + b"".join(per_node[i])
        out.append(seal(provider, node.did, node.x25519, body, purpose(session, "inputs", i)).to_bytes())
    return out


@dataclass
class Bundle:
    """One provider's shares as a node holds them: column -> field elements (one-hot columns
    shaped rows x groups) and the public categories of each one-hot column."""

    provider: str
    columns: dict[str, np.ndarray]
    categories: dict[str, list[str]]


def open_bundle(node: Identity, index: int, sealed: bytes, provider_did: str, session: str,
                m: int) -> Bundle:
    """Node side: check and open one provider's bundle. Raises BundleRefused naming what was wrong."""
    try:
        body = open_envelope(node, sealed, expected_sender=provider_did, purpose=purpose(session, "inputs", index))
    except IdentityError as exc:
        raise BundleRefused(index, provider_did, str(exc)) from None
    if not body.startswith(MAGIC):
        raise BundleRefused(index, provider_did, "not a share bundle")
    (hlen,) = struct.unpack(">I", body[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4 + hlen
    h = json.loads(body[len(MAGIC) + 4:start])
    expect = {"session": session, "provider": provider_did, "node": index, "x": index + 1, "nodes": m,
              "threshold": threshold(m), "prime": hex(ROW_PRIME), "frac": FRAC_BITS, "width": WIDTH}
    for key, value in expect.items():
        if h.get(key) != value:
            raise BundleRefused(index, provider_did, f"bundle {key} is {h.get(key)!r}, expected {value!r}")
    out, cats, pos = {}, {}, start
    for col in h["columns"]:
        groups = len(col["categories"]) if col["kind"] == "onehot" else 1
        count = col["rows"] * groups
        size = count * WIDTH
        if pos + size > len(body):
            raise BundleRefused(index, provider_did, f"column {col['name']!r} is truncated")
        arr = _unpack(body[pos:pos + size], count, WIDTH)
        if (arr >= ROW_PRIME).any():
            raise BundleRefused(index, provider_did, f"column {col['name']!r} holds values outside the field")
        out[col["name"]] = arr.reshape(col["rows"], groups) if col["kind"] == "onehot" else arr
        if col["kind"] == "onehot":
            cats[col["name"]] = col["categories"]
        pos += size
    if pos != len(body):
        raise BundleRefused(index, provider_did, "bundle has trailing bytes")
    return Bundle(provider_did, out, cats)


# --- outputs: node -> consumer ------------------------------------------------------------------
def seal_output_shares(node: Identity, index: int, session: str, values: list[dict[str, Any]],
                       consumer_did: str, consumer_key: bytes) -> bytes:
    """Seal one node's shares of every output to the consumer. ``values`` entries carry
    name, shares (ints), shape, prime, frac, integer, labels."""
    payload = {"session": session, "node": index, "x": index + 1,
               "values": [{**v, "prime": hex(v["prime"]), "shares": [hex(s) for s in v["shares"]]} for v in values]}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return seal(node, consumer_did, consumer_key, body, purpose(session, "outputs", index)).to_bytes()


def open_output_shares(consumer: Identity, sealed: bytes, node_did: str, index: int, session: str) -> dict[str, Any]:
    """Consumer side: check and open one node's output shares (OutputRefused on any mismatch)."""
    try:
        payload = json.loads(open_envelope(consumer, sealed, expected_sender=node_did,
                                           purpose=purpose(session, "outputs", index)))
    except IdentityError as exc:
        raise OutputRefused(f"output of compute node {index} ({node_did}) refused: {exc}") from None
    if payload.get("session") != session or payload.get("node") != index or payload.get("x") != index + 1:
        raise OutputRefused(f"output of compute node {index} names another session or node")
    for v in payload["values"]:
        v["prime"], v["shares"] = int(v["prime"], 16), [int(s, 16) for s in v["shares"]]
    return payload


def reconstruct_outputs(payloads: Sequence[Mapping[str, Any]], t: int) -> dict[str, Any]:
    """Interpolate every named output from the nodes' payloads: name -> float / int / list,
    or a dict label -> value for labelled vectors."""
    first = payloads[0]["values"]
    out: dict[str, Any] = {}
    for j, meta in enumerate(first):
        points = {}
        for pay in payloads:
            v = pay["values"][j] if j < len(pay["values"]) else {}
            if any(v.get(k) != meta[k] for k in ("name", "prime", "frac", "shape", "integer", "labels")):
                raise OutputRefused(f"node {pay['node']} disagrees on output {meta['name']!r}")
            points[pay["x"]] = v["shares"]
        p, f = meta["prime"], meta["frac"]
        vals = [to_signed(s, p) / 2 ** f for s in reconstruct(points, p, t)]
        vals = [round(v) for v in vals] if meta["integer"] else vals
        if meta["labels"] is not None:
            out[meta["name"]] = dict(zip(meta["labels"], vals))
        else:
            out[meta["name"]] = vals[0] if meta["shape"] == [] else vals
    return out
