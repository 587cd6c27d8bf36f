"""Secret-sharing MPC benchmark (three compute-node processes on this machine), with baselines.

    python -m bench.mpc [--json] [--rows 100000] [--comparisons 20000] [--psi-rows 1000000]

* joint COUNT, SUM, MEAN, VARIANCE over three providers x ``--rows`` rows, end to end: each
  provider shares and seals its column, three node processes compute, the consumer opens and
  reconstructs — beside the same statistics on plaintext with numpy. Target <= 10 s.
* secure comparisons per second: one vectorised ``x < y`` over ``--comparisons`` pairs of
  the engine's fixed-point values (48-bit comparisons, 3 parties) — beside MPyC's per-element
  comparison of default 32-bit fixed-point numbers. Target >= 1,000/s.
* PSI (``bench/psi.py``, if present): ``psi_rows``, ``psi_s``, ``psi_openmined_10k_s``.

Table on stderr; with ``--json`` one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import emit

ROOT = Path(__file__).resolve().parents[1]


def bench_joint(rows: int, log: Callable[[str], None]) -> dict[str, Any]:
    from did.identity import Identity
    from offchain.mpc.session import JointSpec, open_outputs, run_joint
    from offchain.mpc.sharing import NodeKey, share_inputs

    nodes = [Identity.create(f"node{i}") for i in range(3)]
    providers = [Identity.create(f"provider{i}") for i in range(3)]
    consumer = Identity.create("consumer")
    rng = np.random.default_rng(11)
    cols = [np.round(rng.lognormal(3, 1, rows), 2) for _ in providers]
    spec = JointSpec(["count", "sum", "mean", "variance"], columns=["amount"])
    log(f"joint COUNT/SUM/MEAN/VARIANCE: 3 providers x {rows} rows, 3 node processes ...")
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        keys = [NodeKey.of(n) for n in nodes]
        bundles = {p.did: share_inputs({"amount": c.tolist()}, keys, p, "bench") for p, c in zip(providers, cols)}
        t1 = time.perf_counter()
        out = run_joint("bench", spec, bundles, nodes, consumer.did, consumer.x25519_public, Path(work), timeout=300)
        t2 = time.perf_counter()
        res = open_outputs(consumer, out.sealed_outputs, out.nodes)
        t3 = time.perf_counter()
    t = time.perf_counter()
    x = np.concatenate(cols)
    plain = {"count": x.size, "sum": float(x.sum()), "mean": float(x.mean()), "variance": float(x.var(ddof=1))}
    plain_s = time.perf_counter() - t
    err = max(abs(res[k]["amount"] - plain[k]) / abs(plain[k]) for k in ("sum", "mean", "variance"))
    assert res["count"] == plain["count"] and err < 1e-6, (res, plain)
    return {"mpc_joint_stats_s": t3 - t0, "mpc_share_s": t1 - t0, "mpc_run_s": t2 - t1, "mpc_open_s": t3 - t2,
            "plaintext_joint_stats_s": plain_s, "mpc_joint_max_rel_error": err,
            "mpc_bundle_bytes_per_node": sum(len(b[0]) for b in bundles.values())}


def _comparison_party(index: int, ports: list[int], n: int, baseline: bool) -> None:
    """One of three MPyC parties timing ``n`` secure comparisons: the engine's vectorised
    ``less`` (or, with ``baseline``, stock MPyC — PRSS on, nothing patched — comparing default
    32-bit fixed-point numbers one by one, all scheduled at once)."""
    sys.argv = [sys.argv[0]] + [a for p in ports for a in ("-P", f"127.0.0.1:{p}")] + [
        "-I", str(index), "--no-log"] + ([] if baseline else ["--no-prss"])
    if baseline:
        from mpyc.runtime import mpc
    else:
        from offchain.mpc import protocol as pr
        mpc = pr.mpc

    async def main() -> float:
        await mpc.start()
        rng = np.random.default_rng(5)                      # public test data, same at every party
        xs, ys = np.round(rng.normal(0, 1000, n), 2), np.round(rng.normal(0, 1000, n), 2)
        if baseline:
            sec = mpc.SecFxp()
            a, b = [sec(float(v)) for v in xs], [sec(float(v)) for v in ys]
        else:
            a, b = pr.Row.array(xs), pr.Row.array(ys)
        await mpc.barrier()
        t = time.perf_counter()
        if baseline:
            await mpc.output([u < v for u, v in zip(a, b)])
        else:
            await mpc.output(pr.total(pr.less(a, b)))
        took = time.perf_counter() - t
        await mpc.shutdown()
        return took

    took = mpc.run(main())
    if index == 0:
        print(json.dumps({"seconds": took}))


def _time_comparisons(n: int, baseline: bool) -> float:
    from offchain.mpc.session import free_ports
    ports = free_ports(3)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "bench.mpc", "--comparison-party", str(i),
                               "--comparisons", str(n), "--ports", ",".join(map(str, ports))]
                              + (["--baseline"] if baseline else []),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
             for i in range(3)]
    try:
        out = procs[0].communicate(timeout=600)[0]
        for p in procs[1:]:
            p.wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return json.loads(out.decode().strip().splitlines()[-1])["seconds"]


def bench_comparisons(n: int, scalar: int, log: Callable[[str], None]) -> dict[str, Any]:
    log(f"secure comparisons: {n} vectorised (engine), {scalar} per element (stock MPyC), 3 parties ...")
    vec = _time_comparisons(n, baseline=False)
    per = _time_comparisons(scalar, baseline=True)
    return {"mpc_comparisons_per_s": n / vec, "mpc_comparisons_n": n,
            "mpc_comparisons_per_element_per_s": scalar / per}


def bench_psi(rows: int, log: Callable[[str], None]) -> dict[str, Any]:
    try:
        from bench import psi
    except ImportError:
        log("note: bench/psi.py is not there yet; the PSI figures are left out")
        return {}
    log(f"PSI over {rows} rows (bench.psi) ...")
    res = psi.measure(rows, min(2, os.cpu_count() or 1), log=log)
    return {k: res[k] for k in ("psi_rows", "psi_s", "psi_openmined_10k_s") if k in res}


def render(r: dict[str, Any]) -> str:
    lines = ["measurement                                  MPC              baseline            target",
             "-" * 96]

    def row(name: str, ours: str, base: str = "", target: str = "") -> None:
        lines.append(f"{name:<44} {ours:<16} {base:<19} {target}")

    if "mpc_joint_stats_s" in r:
        ok = "MET" if r["mpc_joint_stats_s"] <= 10 else f"MISSED by {r['mpc_joint_stats_s'] - 10:.1f} s"
        row(f"COUNT/SUM/MEAN/VAR, 3 x {r['mpc_rows_per_provider']} rows, e2e", f"{r['mpc_joint_stats_s']:.2f} s",
            f"{r['plaintext_joint_stats_s'] * 1e3:.1f} ms numpy", "<= 10 s " + ok)
        row("  providers share + seal", f"{r['mpc_share_s']:.2f} s")
        row("  node processes (open, MPC, seal)", f"{r['mpc_run_s']:.2f} s")
        row("  consumer opens + reconstructs", f"{r['mpc_open_s'] * 1e3:.0f} ms")
        row("  max relative error vs plaintext", f"{r['mpc_joint_max_rel_error']:.1e}")
    if "mpc_comparisons_per_s" in r:
        ok = "MET" if r["mpc_comparisons_per_s"] >= 1000 else f"MISSED by {1000 - r['mpc_comparisons_per_s']:.0f}/s"
        row(f"secure comparisons, {r['mpc_parties']} parties, vectorised", f"{r['mpc_comparisons_per_s']:.0f} /s",
            f"{r['mpc_comparisons_per_element_per_s']:.0f} /s per element", ">= 1000/s " + ok)
    if "psi_s" in r:
        row(f"PSI, {r.get('psi_rows')} rows", f"{r['psi_s']:.2f} s",
            f"{r.get('psi_openmined_10k_s', float('nan')):.2f} s OpenMined 10k")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--rows", type=int, default=100_000, help="rows per provider (0 skips)")
    ap.add_argument("--comparisons", type=int, default=20_000, help="vectorised comparisons (0 skips)")
    ap.add_argument("--scalar-comparisons", type=int, default=2000, help="per-element baseline comparisons")
    ap.add_argument("--psi-rows", type=int, default=1_000_000, help="PSI rows (0 skips)")
    ap.add_argument("--comparison-party", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.comparison_party is not None:
        _comparison_party(args.comparison_party, [int(p) for p in args.ports.split(",")], args.comparisons,
                          args.baseline)
        return 0
    log = lambda m: print(m, file=sys.stderr, flush=True)
    result: dict[str, Any] = {"mpc_parties": 3, "mpc_rows_per_provider": args.rows}
    if args.rows:
        result.update(bench_joint(args.rows, log))
    if args.comparisons:
        result.update(bench_comparisons(args.comparisons, args.scalar_comparisons, log))
    if args.psi_rows:
        result.update(bench_psi(args.psi_rows, log))
    return emit(result, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
