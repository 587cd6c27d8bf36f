"""PSI benchmark: our ECDH-X25519 engine end to end against the openmined-psi library.

    python -m bench.psi [--json] [--rows 1000000] [--processes 2]

Two providers hold ``rows`` IDs each, half of them shared, in different formats (``1xxxxxxxxxx``
and ``+86 1xxx-xxxx-xxxx``, brought together by normalisation rules). ``psi_s``: ``run_psi`` in
mode ``intersection`` over real loopback TCP (DID-sealed frames, the intersection sealed to a
consumer and opened by it), checked against the plaintext. Baseline beside it: openmined-psi
2.0.6 (ECDH over P-256, one thread, ``reveal_intersection=True``, raw set, no network) on
10k x 10k with the same overlap, and ours on the same 10k x 10k. Table on stderr; with
``--json`` one JSON object on stdout (``bench.mpc`` imports :func:`measure`)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import emit
from did.identity import Identity
from offchain.psi.ecdh import blind_blob, new_scalar, shutdown_pools
from offchain.psi.session import PsiParty, open_intersection, run_psi

RULES_B = ["digits_only", {"strip_prefix": "86"}]
SMALL = 10_000


def make_sets(rows: int) -> tuple[list[str], list[str], set[str]]:
    """Provider A: ``1`` + 10 digits; provider B: the same numbers written ``+86 1xxx-xxxx-xxxx``,
    offset by half, so ``rows // 2`` IDs are shared."""
    a = [f"1{i:010d}" for i in range(rows)]
    b = []
    for i in range(rows // 2, rows // 2 + rows):
        d = f"{i:010d}"
        b.append(f"+86 1{d[:2]}-{d[2:6]}-{d[6:]}")
    return a, b, {f"1{i:010d}" for i in range(rows // 2, rows)}


def run_ours(rows: int, processes: int, ids: tuple[Identity, Identity, Identity]) -> tuple[float, bool]:
    a_ids, b_ids, expected = make_sets(rows)
    a, b, consumer = ids
    t = time.perf_counter()
    out = run_psi(f"bench-{rows}", [PsiParty(a, a_ids, ["strip"]), PsiParty(b, b_ids, RULES_B)], "intersection",
                  consumer.did, consumer.x25519_public, processes=processes, transport="tcp", timeout=900)
    got = open_intersection(consumer, out.sealed_result or b"", a.did)
    elapsed = time.perf_counter() - t
    return elapsed, out.size == len(expected) and set(got) == expected


def run_openmined(rows: int) -> tuple[float, bool]:
    import private_set_intersection.python as psi
    a_ids, b_ids, expected = make_sets(rows)
    t = time.perf_counter()
    b_norm = ["1" + "".join(c for c in v if c.isdigit())[3:] for v in b_ids]
    client, server = psi.client.CreateWithNewKey(True), psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(0.0, len(a_ids), b_norm, psi.DataStructure.RAW)
    response = server.ProcessRequest(client.CreateRequest(a_ids))
    idx = client.GetIntersection(setup, response)
    elapsed = time.perf_counter() - t
    return elapsed, {a_ids[i] for i in idx} == expected


def mults_per_second(n: int = 4000) -> float:
    """X25519 scalar multiplications per second on one core (key object reused)."""
    blob = b"".join(os.urandom(32) for _ in range(n))
    k = new_scalar()
    t = time.perf_counter()
    blind_blob(blob, k, 1)
    return n / (time.perf_counter() - t)


def measure(rows: int = 1_000_000, processes: int = os.cpu_count() or 1,
            log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Run the PSI benchmark; returns ``psi_*`` figures (seconds) with their baselines."""
    ids = (Identity.create("provider-a"), Identity.create("provider-b"), Identity.create("consumer"))
    log("X25519 rate on one core ...")
    rate = mults_per_second()
    log(f"openmined-psi {SMALL} x {SMALL} ...")
    om_s, om_ok = run_openmined(SMALL)
    log(f"ours {SMALL} x {SMALL}, 1 process ...")
    one_s, one_ok = run_ours(SMALL, 1, ids)
    log(f"ours {SMALL} x {SMALL}, {processes} processes (first use starts the worker pool) ...")
    run_ours(SMALL, processes, ids)
    small_s, small_ok = run_ours(SMALL, processes, ids)
    log(f"ours {rows} x {rows}, {processes} processes, TCP, mode intersection ...")
    big_s, big_ok = run_ours(rows, processes, ids)
    shutdown_pools()
    return {"psi_rows": rows, "psi_s": big_s, "psi_mode": "intersection", "psi_transport": "tcp",
            "psi_processes": processes, "psi_correct": big_ok and small_ok and one_ok and om_ok,
            "psi_rows_per_s": rows / big_s, "psi_openmined_10k_s": om_s, "psi_ecdh_10k_s": small_s,
            "psi_ecdh_10k_1proc_s": one_s, "psi_openmined_extrapolated_s": om_s * rows / SMALL,
            "psi_x25519_mults_per_s_core": rate, "psi_scalar_mults": 4 * rows,
            "psi_target_s": 120.0, "psi_target_met": big_s <= 120.0}


def render(r: dict[str, Any]) -> str:
    lines = [f"{'measure':<46} {'ours':<12} {'baseline':<22} ratio", "-" * 90]

    def row(name: str, ours: str, base: str = "", ratio: str = "") -> None:
        lines.append(f"{name:<46} {ours:<12} {base:<22} {ratio}")

    row("X25519 scalar mult, one core", f"{r['psi_x25519_mults_per_s_core']:.0f}/s")
    row(f"PSI 10k x 10k, {r['psi_processes']} processes (TCP, sealed)", f"{r['psi_ecdh_10k_s']:.2f} s",
        f"{r['psi_openmined_10k_s']:.2f} s openmined", f"{r['psi_openmined_10k_s'] / r['psi_ecdh_10k_s']:.1f}x")
    row("PSI 10k x 10k, 1 process (TCP, sealed)", f"{r['psi_ecdh_10k_1proc_s']:.2f} s",
        f"{r['psi_openmined_10k_s']:.2f} s openmined", f"{r['psi_openmined_10k_s'] / r['psi_ecdh_10k_1proc_s']:.1f}x")
    rows = r["psi_rows"]
    row(f"PSI {rows} x {rows}, {r['psi_processes']} processes, {r['psi_mode']}", f"{r['psi_s']:.1f} s",
        f"~{r['psi_openmined_extrapolated_s']:.0f} s openmined (lin.)",
        f"<= 120 s {'MET' if r['psi_target_met'] else 'MISSED'}")
    row("  rows per second (each side)", f"{r['psi_rows_per_s']:.0f}")
    row("  results equal the plaintext set operation", str(r["psi_correct"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--rows", type=int, default=1_000_000, help="IDs per provider")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    result = measure(args.rows, args.processes, log=lambda m: print(m, file=sys.stderr, flush=True))
    return emit(result, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
