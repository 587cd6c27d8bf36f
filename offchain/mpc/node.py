"""A compute node: one OS process, one MPyC party.

    python -m offchain.mpc.node --session DIR --index I --party HOST:PORT (x m) --deadline T

The node's DID keys arrive on stdin (JSON), never on the command line or on disk. It opens
its share bundle from every provider (refusing a wrong sender, session, node or field), runs
the MPC with the other nodes (MPyC over loopback TCP), and seals its share of each output to
the consumer: it never sees a provider's value or an output. Exit codes tell the coordinator
why a node stopped (see ``EXIT``); a reason file ``node<I>.error.json`` says the rest.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account

from chain.crypto_profile import SM
from did.identity import Identity
from offchain.mpc.errors import BundleRefused, MpcError, MpcSpecError
from offchain.mpc.sharing import Bundle, open_bundle, seal_output_shares
from offchain.mpc.spec import JointSpec

EXIT = {"ok": 0, "error": 1, "BundleRefused": 3, "MinGroupRefused": 4, "MpcSpecError": 5,
        "MpcNodeLost": 6, "MpcTimeout": 7}


def identity_from_secrets(obj: dict[str, str]) -> Identity:
    """Rebuild a node identity from the hex secrets the coordinator pipes in (Ed25519 + X25519,
    or under the ``sm`` profile the two SM2 keys of a :class:`~did.sm2_identity.Sm2Participant`)."""
    account = Account.from_key(bytes.fromhex(obj["account"]))
    if obj.get("profile") == SM:
        from chain.sm2 import Sm2PrivateKey
        from did.sm2_identity import Sm2Participant
        return Sm2Participant(obj["name"], Sm2PrivateKey(bytes.fromhex(obj["sm2"])),  # type: ignore[return-value]
                              Sm2PrivateKey(bytes.fromhex(obj["sm2-agreement"])), account)
    return Identity(obj["name"], Ed25519PrivateKey.from_private_bytes(bytes.fromhex(obj["ed25519"])),
                    X25519PrivateKey.from_private_bytes(bytes.fromhex(obj["x25519"])), account)


def identity_secrets(identity: Identity) -> dict[str, str]:
    """The hex secrets :func:`identity_from_secrets` reads (piped to the node, never on disk)."""
    if getattr(identity, "profile", None) == SM:
        return {"name": identity.name, "profile": SM, "sm2": identity.signing.secret.hex(),  # type: ignore[attr-defined]
                "sm2-agreement": identity.agreement.secret.hex(),  # type: ignore[attr-defined]
                "account": bytes(identity.account.key).hex()}
    from did.keys import raw_private
    return {"name": identity.name, "ed25519": raw_private(identity.ed25519).hex(),
            "x25519": raw_private(identity.x25519).hex(), "account": bytes(identity.account.key).hex()}


def consumer_key(consumer: dict[str, str]) -> bytes:
    """The consumer's on-chain key-agreement key in ``session.json``: ``"x25519"``, or ``"sm2"``
    (the ``x`` of its SM2 key) under the ``sm`` profile."""
    return bytes.fromhex(consumer["sm2"] if "sm2" in consumer else consumer["x25519"])


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _fail(folder: Path, index: int, code: str, detail: str, **extra: Any) -> int:
    body = json.dumps({"node": index, "code": code, "detail": detail, **extra}).encode()
    _write_atomic(folder / f"node{index}.error.json", body)
    return EXIT[code]


def _watchdog(folder: Path, index: int, deadline: float) -> None:
    """Exit on the deadline, or when the coordinator is gone (orphaned nodes never linger)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.2)
            if time.time() > deadline:
                os._exit(_fail(folder, index, "MpcTimeout", "node deadline passed"))
            if os.getppid() != parent:
                os._exit(_fail(folder, index, "MpcNodeLost", "coordinator is gone"))

    threading.Thread(target=watch, daemon=True).start()


def assemble(bundles: list[Bundle], spec: JointSpec) -> tuple[int, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, list[str]]]:
    """Row count and this node's shares per column: concatenated over providers (horizontal)
    or taken from the one provider holding each column (vertical)."""
    wanted = spec.needed_columns() + ([spec.group_by] if spec.group_by else [])
    cols: dict[str, np.ndarray] = {}
    cats: dict[str, list[str]] = {}
    if spec.layout == "horizontal":
        for name in wanted:
            missing = [b.provider for b in bundles if name not in b.columns]
            if missing:
                raise MpcSpecError(f"column {name!r} is missing from the bundles of {missing}")
            cols[name] = np.concatenate([b.columns[name] for b in bundles])
            if name == spec.group_by:
                found = {tuple(b.categories.get(name, ())) for b in bundles}
                if found != {tuple(spec.categories)}:
                    raise MpcSpecError(f"group-by {name!r} was not shared over the declared categories")
    else:
        for name in wanted:
            holders = [b for b in bundles if name in b.columns]
            if len(holders) != 1:
                raise MpcSpecError(f"vertical column {name!r} is held by {len(holders)} providers, expected 1")
            cols[name] = holders[0].columns[name]
            if name == spec.group_by and holders[0].categories.get(name) != list(spec.categories):
                raise MpcSpecError(f"group-by {name!r} was not shared over the declared categories")
    rows = {len(v) for v in cols.values()} or {0}
    if len(rows) != 1:
        raise MpcSpecError(f"columns have different row counts {sorted(rows)} (not aligned)")
    onehot = {spec.group_by: cols.pop(spec.group_by)} if spec.group_by else {}
    if spec.group_by:
        cats[spec.group_by] = list(spec.categories)
    if not wanted:          # COUNT alone: the rows of the first column each provider shared
        lengths = [len(next(iter(b.columns.values()), [])) for b in bundles]
        rows = {sum(lengths) if spec.layout == "horizontal" else max(lengths)}
    return rows.pop(), cols, onehot, cats


async def run_mpc(folder: Path, index: int, me: Identity, meta: dict[str, Any], bundles: list[Bundle]) -> int:
    from offchain.mpc import protocol as pr
    from offchain.mpc import stats
    spec = JointSpec.from_json(meta["spec"])
    n, cols, onehot, cats = assemble(bundles, spec)
    await pr.mpc.start()
    (folder / f"node{index}.started").touch()
    data = stats.NodeData(n, {k: pr.load(v) for k, v in cols.items()},
                          {k: pr.load(v, integral=True) for k, v in onehot.items()}, cats)
    if not await stats.release_allowed(data, spec):
        await pr.mpc.shutdown()
        return _fail(folder, index, "MinGroupRefused", "k-rule failed", k=spec.min_group)
    outputs = stats.compute(data, spec)
    shares = await pr.share_all([o.value for o in outputs.values()])
    values = [{"name": name, "shares": s, "shape": shape, "prime": p, "frac": f, "integer": o.integer,
               "labels": o.labels} for (name, o), (s, shape, p, f) in zip(outputs.items(), shares)]
    consumer = meta["consumer"]
    sealed = seal_output_shares(me, index, meta["session"], values, consumer["did"], consumer_key(consumer))
    _write_atomic(folder / f"node{index}.out", sealed)
    await pr.mpc.shutdown()
    return EXIT["ok"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="MPC compute node")
    ap.add_argument("--session", required=True, type=Path, help="session folder")
    ap.add_argument("--index", required=True, type=int)
    ap.add_argument("--party", action="append", required=True, help="host:port of each node, in order")
    ap.add_argument("--deadline", type=float, default=time.time() + 600, help="epoch seconds")
    args = ap.parse_args(argv)
    folder, i = args.session, args.index
    _watchdog(folder, i, args.deadline)
    me = identity_from_secrets(json.loads(sys.stdin.readline()))
    meta = json.loads((folder / "session.json").read_text())
    m = len(meta["nodes"])
    if meta["nodes"][i] != me.did or len(args.party) != m:
        return _fail(folder, i, "MpcSpecError", "node identity or party list does not match the session")
    try:
        bundles = [open_bundle(me, i, (folder / "inputs" / f"node{i}" / f"provider{j}.sealed").read_bytes(),
                               did, meta["session"], m) for j, did in enumerate(meta["providers"])]
    except BundleRefused as exc:
        return _fail(folder, i, "BundleRefused", str(exc), provider=exc.provider)
    # MPyC reads its configuration from sys.argv when it is imported: set it, then import.
    sys.argv = [sys.argv[0]] + [a for addr in args.party for a in ("-P", addr)] + [
        "-I", str(i), "--no-log", "--no-prss"]
    from offchain.mpc import protocol as pr

    def on_loop_error(loop: Any, ctx: dict[str, Any]) -> None:
        exc = ctx.get("exception")
        if isinstance(exc, OSError):            # a peer's connection broke: stop, do not hang
            os._exit(_fail(folder, i, "MpcNodeLost", f"connection to a peer broke: {exc!r}"))
        loop.default_exception_handler(ctx)

    pr.mpc._loop.set_exception_handler(on_loop_error)
    try:
        return pr.mpc.run(run_mpc(folder, i, me, meta, bundles))
    except MpcSpecError as exc:
        return _fail(folder, i, "MpcSpecError", str(exc))
    except MpcError as exc:
        return _fail(folder, i, "error", str(exc))


if __name__ == "__main__":
    sys.exit(main())
