"""Run one joint computation: start the compute-node processes, feed them the sealed share
bundles, wait (bounded), collect the sealed output shares; and open them at the consumer.

Session folder ``<workdir>/<session_id>/``: ``session.json`` (spec, node/provider DIDs,
consumer key — public data), ``inputs/node<i>/provider<j>.sealed``, ``node<i>.log``,
``node<i>.pid``, ``node<i>.out`` (sealed to the consumer) or ``node<i>.error.json``.
A rerun of the same session id starts from an empty folder.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import keccak

from chain.crypto_profile import SM, configured_profile
from did.envelope import Envelope
from did.errors import IdentityError
from offchain.mpc.errors import (
    BundleRefused,
    MinGroupRefused,
    MpcError,
    MpcNodeLost,
    MpcSpecError,
    MpcTimeout,
    OutputRefused,
)
from offchain.mpc.node import EXIT, identity_secrets
from offchain.mpc.sharing import open_output_shares, reconstruct_outputs, threshold
from offchain.mpc.spec import JointSpec

if TYPE_CHECKING:
    from did.identity import Identity

__all__ = ["JointSpec", "MpcOutcome", "open_outputs", "outputs_hash", "run_joint"]
ROOT = Path(__file__).resolve().parents[2]          # so `python -m offchain.mpc.node` resolves
SESSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")   # a folder name and an envelope purpose


@dataclass(frozen=True)
class MpcOutcome:
    """Sealed output shares (one per node, in node order), their hash for the chain, node DIDs."""

    sealed_outputs: list[bytes]
    output_hash: bytes
    nodes: list[str]
    session: str
    seconds: float


def outputs_hash(sealed_outputs: Sequence[bytes]) -> bytes:
    """keccak256 over the keccak256 of each sealed output, in node order (32 bytes)."""
    return keccak(b"".join(keccak(bytes(s)) for s in sealed_outputs))


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _key_field() -> str:
    """The name of the consumer's key in ``session.json``: ``x25519``, or ``sm2`` under ``sm``."""
    return "sm2" if configured_profile().name == SM else "x25519"


def _prepare(folder: Path, session_id: str, spec: JointSpec, bundles: Mapping[str, Sequence[bytes]],
             nodes: Sequence[Identity], consumer_did: str, consumer_key: bytes) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    providers = list(bundles)
    meta = {"session": session_id, "spec": spec.to_json(), "nodes": [n.did for n in nodes],
            "providers": providers, "consumer": {"did": consumer_did, _key_field(): bytes(consumer_key).hex()}}
    (folder / "session.json").write_text(json.dumps(meta, sort_keys=True, indent=1))
    for i in range(len(nodes)):
        d = folder / "inputs" / f"node{i}"
        d.mkdir(parents=True)
        for j, did in enumerate(providers):
            (d / f"provider{j}.sealed").write_bytes(bundles[did][i])


def _failure(folder: Path, i: int, did: str, code: int) -> MpcError:
    """The error a node's exit means, from its reason file when it wrote one."""
    try:
        why = json.loads((folder / f"node{i}.error.json").read_text())
    except (OSError, ValueError):
        why = None
    if why is None:
        how = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        return MpcNodeLost(i, did, how)
    if why["code"] == "BundleRefused":
        return BundleRefused(i, why.get("provider", "?"), why["detail"])
    if why["code"] == "MinGroupRefused":
        return MinGroupRefused(why["k"])
    if why["code"] == "MpcSpecError":
        return MpcSpecError(f"compute node {i}: {why['detail']}")
    return MpcNodeLost(i, did, f"{why['code']}: {why['detail']}")


# a refusal explains a failure best; then a node that died without saying why (killed);
# "a peer's connection broke" and timeouts are consequences, reported last
_PRIORITY = {EXIT["MinGroupRefused"]: 0, EXIT["BundleRefused"]: 1, EXIT["MpcSpecError"]: 1,
             EXIT["MpcNodeLost"]: 3, EXIT["MpcTimeout"]: 4}


def _first_cause(folder: Path, procs: Sequence[subprocess.Popen], nodes: Sequence[Identity]) -> MpcError:
    """Once a node failed, give the others a moment to fail too, then report the root cause."""
    settle = time.time() + 0.3
    while time.time() < settle and any(p.poll() is None for p in procs):
        time.sleep(0.02)
    bad = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode not in (None, 0)]
    i, code = min(bad, key=lambda ic: (_PRIORITY.get(ic[1], 2), ic[0]))
    return _failure(folder, i, nodes[i].did, code)


def run_joint(session_id: str, spec: JointSpec, bundles_per_provider: Mapping[str, Sequence[bytes]],
              node_identities: Sequence[Identity], consumer_did: str, consumer_key: bytes, workdir: Path,
              timeout: float = 120.0) -> MpcOutcome:
    """Run the joint computation on ``len(node_identities)`` node processes (>= 3).

    ``bundles_per_provider`` maps each provider's DID to its sealed bundles in node order; a
    node refuses a bundle not sealed by that DID for this session and node. Raises
    :class:`MinGroupRefused`, :class:`BundleRefused`, :class:`MpcNodeLost` or
    :class:`MpcTimeout`; in every case all node processes are stopped and nothing is output."""
    if not SESSION_RE.fullmatch(session_id):
        raise MpcSpecError(f"session id {session_id!r}: use letters, digits, '.', '_' or '-' (at most 128)")
    m = len(node_identities)
    threshold(m)
    if not bundles_per_provider:
        raise MpcSpecError("no provider bundles")
    for did, bundles in bundles_per_provider.items():
        if len(bundles) != m:
            raise MpcSpecError(f"provider {did} gave {len(bundles)} bundles for {m} compute nodes")
    folder = Path(workdir) / session_id
    _prepare(folder, session_id, spec, bundles_per_provider, node_identities, consumer_did, consumer_key)
    started = time.time()
    deadline = started + timeout
    parties = [f"127.0.0.1:{p}" for p in free_ports(m)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs: list[subprocess.Popen] = []
    try:
        for i, ident in enumerate(node_identities):
            cmd = [sys.executable, "-m", "offchain.mpc.node", "--session", str(folder), "--index", str(i),
                   "--deadline", str(deadline + 2)] + [a for p in parties for a in ("--party", p)]
            with open(folder / f"node{i}.log", "wb") as log:
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=str(ROOT), env=env)
            procs.append(proc)
            (folder / f"node{i}.pid").write_text(str(proc.pid))
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(identity_secrets(ident)) + "\n").encode())
            proc.stdin.close()
        while True:
            codes = [p.poll() for p in procs]
            bad = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                raise _first_cause(folder, procs, node_identities)
            if all(c == 0 for c in codes):
                break
            if time.time() > deadline:
                raise MpcTimeout(timeout, [i for i, c in enumerate(codes) if c is None])
            time.sleep(0.02)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()
    missing = [i for i in range(m) if not (folder / f"node{i}.out").exists()]
    if missing:
        raise MpcNodeLost(missing[0], node_identities[missing[0]].did, "exited without sealing its output")
    sealed = [(folder / f"node{i}.out").read_bytes() for i in range(m)]
    return MpcOutcome(sealed, outputs_hash(sealed), [n.did for n in node_identities], session_id,
                      time.time() - started)


def session_of(sealed_output: bytes) -> str:
    """The session id an output envelope is bound to (read from its purpose)."""
    try:
        tag, *sid, step, _ = Envelope.from_bytes(bytes(sealed_output)).purpose.split(":")
    except (IdentityError, ValueError):
        raise OutputRefused("not a sealed MPC output") from None
    if tag != "tds-mpc" or step != "outputs" or not sid:
        raise OutputRefused("not a sealed MPC output")
    return ":".join(sid)


def open_outputs(consumer_identity: Identity, sealed_outputs: Sequence[bytes], node_dids: Sequence[str],
                 session: str | None = None) -> dict[str, Any]:
    """Consumer side: open every node's sealed shares, check they agree, interpolate.

    Returns nested results: ``{"count": n, "sum": {col: v}, "mean": ..., "percentile":
    {col: {"25": v}}, "pearson": {"a,b": r}, "crosstab": {key: {"count": {cat: n},
    "sum": {col: {cat: v}}}}}``."""
    t = threshold(len(node_dids))
    session = session if session is not None else session_of(sealed_outputs[0])
    payloads = [open_output_shares(consumer_identity, raw, did, i, session)
                for i, (raw, did) in enumerate(zip(sealed_outputs, node_dids))]
    flat = reconstruct_outputs(payloads, t)
    result: dict[str, Any] = {}
    for name, value in flat.items():
        *path, leaf = name.split("/")
        node = result
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result
