"""Usage-monitor benchmark: rule evaluation throughput and detect-to-freeze latency.

    python -m bench.monitor [--json] [--events 100000] [--trials 10] [--block-interval 1.0]

Throughput: ``--events`` synthetic chain events (JobRequested, JobFailed, OracleFailureRecorded,
AssetRated, decoded-event objects as the follower yields them) and key-service log records
(releases, refusals), generated in memory, turned into observations and evaluated with the
shipped default rules in windows of 500, the evaluator state serialised after each window as
the monitor commits it. Baseline beside it: a stateless monitor that re-scans everything it has
seen with a fresh evaluator at every window (on a tenth of the events: it is quadratic).

Detect-to-freeze: on the embedded chain, blocks every ``--block-interval`` seconds (anvil mines
transactions at once; a ticker mines an empty block each interval, like a chain's block time),
the monitor in a thread with one-block confirmations and the default rules. Per trial a fresh
grant gets 21 requests in a burst (the default allows 20 a minute); the figure is the wall
time from the 21st request's receipt to the moment the chain shows the grant frozen by the
monitor. Median of ``--trials``. Targets: >= 2,000 events/s; detect-to-freeze <= 3 s.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from audit.events import ChainEvent
from audit.oplog import OpRecord
from bench import emit
from oversight.rules import Evaluator, load_rules
from oversight.sources import Context, observation_from_record, observations_from_events

TARGETS = {"events_per_s": 2000.0, "detect_to_freeze_s": 3.0}
WINDOW = 500


def synthetic(n: int, seed: int = 7) -> tuple[list[Any], dict[int, int]]:
    """``n`` chain events and log records over 2,000 grants and 500 consumers, ~200 per second."""
    rnd = random.Random(seed)
    consumers = ["0x" + f"{i:040x}" for i in range(1, 501)]
    oracles = ["0x" + f"{0xABC000 + i:040x}" for i in range(5)]
    out: list[Any] = []
    times: dict[int, int] = {}
    t0 = 1_750_000_000
    for i in range(n):
        block = i // 10
        times[block] = t0 + block // 20
        grant = rnd.randrange(1, 2001)
        consumer = consumers[grant % 500]
        tx = "0x" + f"{i:064x}"
        r = rnd.random()
        if r < 0.70:
            out.append(ChainEvent("Jobs", "JobRequested", {"jobId": grant << 32 | i, "grantId": grant,
                                  "consumer": consumer, "assetId": grant % 300 + 1}, block, tx, 0, "0x0"))
        elif r < 0.75:
            out.append(ChainEvent("Jobs", "JobFailed", {"jobId": grant << 32 | i, "oracle": oracles[i % 5],
                                  "reasonCode": rnd.choice([5, 17, 21, 0x101])}, block, tx, 0, "0x0"))
        elif r < 0.77:
            out.append(ChainEvent("Jobs", "OracleFailureRecorded", {"oracle": oracles[i % 5], "jobId": grant << 32,
                                  "reasonCode": 0x101, "failures": i}, block, tx, 1, "0x0"))
        elif r < 0.80:
            out.append(ChainEvent("QualityRatings", "AssetRated", {"assetId": grant % 300 + 1, "grantId": grant,
                                  "consumer": consumer, "score": rnd.randint(1, 5)}, block, tx, 0, "0x0"))
        else:
            failed = rnd.random() < 0.2
            out.append(OpRecord("key-release", "did:key:zProvider", "0x" + "33" * 20,
                                {"job": grant << 32 | i, "grant": grant, "requester": oracles[i % 5]},
                                result="failed" if failed else "ok",
                                error_code="OperationOutOfScope" if failed else None,
                                time=float(t0 + block // 20), id=f"r{i}"))
    return out, times


def _observe(batch: list[Any], times: dict[int, int], ctx: Context) -> list[Any]:
    events = [e for e in batch if isinstance(e, ChainEvent)]
    obs = observations_from_events(events, times, ctx)
    obs += [o for o in (observation_from_record(r, ctx) for r in batch if isinstance(r, OpRecord)) if o]
    return obs


def bench_throughput(n: int) -> dict[str, Any]:
    rules = load_rules()
    items, times = synthetic(n)
    ctx = Context(grants={str(g): [g % 300 + 1, "0x" + f"{g % 500 or 500:040x}"] for g in range(1, 2001)},
                  holders={str(a): "0x" + "33" * 20 for a in range(1, 301)})
    ev = Evaluator(rules)
    alerts, snap = 0, 0.0
    t = time.perf_counter()
    for i in range(0, n, WINDOW):
        alerts += len(ev.feed(_observe(items[i:i + WINDOW], times, ctx)))
        s = time.perf_counter()
        json.dumps(ev.snapshot())                # what the monitor commits with every step
        snap += time.perf_counter() - s
    ours = time.perf_counter() - t
    m = max(WINDOW * 2, n // 10)
    seen: list[Any] = []
    t = time.perf_counter()
    for i in range(0, m, WINDOW):
        seen += _observe(items[i:i + WINDOW], times, ctx)
        Evaluator(rules).feed(seen)
    naive = time.perf_counter() - t
    return {"events": n, "events_per_s": n / ours, "alerts": alerts, "seconds": ours,
            "evaluate_only_events_per_s": n / (ours - snap), "snapshot_share": snap / ours,
            "baseline_rescan_events": m, "baseline_rescan_events_per_s": m / naive}


def bench_freeze(trials: int, interval: float) -> dict[str, Any]:
    from chain.accounts import dev_account
    from chain.config import load_settings
    from chain.connection import connect
    from chain.node import EmbeddedNode, free_port
    from oversight.monitor import Monitor, MonitorOptions
    from tds.sandbox import PRICE, build_world

    tmp = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    stop = threading.Event()
    try:
        w = build_world(settings, tmp, rows=10)
        miner = connect(settings)
        threading.Thread(target=lambda: [miner.provider.make_request("evm_mine", []) for _ in iter(
            lambda: stop.wait(interval), True)], daemon=True).start()
        mon = Monitor(connect(settings), w.space.deployment, dev_account(2), "did:example:monitor", load_rules(),
                      tmp / "monitor", [], MonitorOptions(confirmations=1, poll_s=0.05,
                                                          start_block=w.space.w3.eth.block_number + 1))
        runner = threading.Thread(target=mon.run, daemon=True)
        runner.start()
        auth, jobs = w.space.c["Authorizations"], w.space.c["Jobs"]
        asset = auth.functions.grantOf(w.grant_id).call()[8]
        samples = []
        for k in range(trials):
            grant = w.space.grant_by_signature(w.provider, w.consumer, asset, 4, max_uses=100, price=PRICE,
                                               purpose=f"bench {k}")
            for _ in range(21):
                w.space.send(w.consumer.account, jobs.functions.requestJob(grant, 4, os.urandom(32),
                                                                           w.space.now() + 3600), value=PRICE)
            t0 = time.perf_counter()
            while auth.functions.grantOf(grant).call()[5] != 2:
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError(f"grant {grant} not frozen after 30 s")
                time.sleep(0.01)
            samples.append(time.perf_counter() - t0)
            time.sleep(0.2)
        mon.stop()
        runner.join(timeout=10)
        mon.close()
    finally:
        stop.set()
        node.down()
    return {"detect_to_freeze_s": statistics.median(samples), "detect_to_freeze_max_s": max(samples),
            "detect_to_freeze_samples": samples, "trials": trials, "block_interval_s": interval, "confirmations": 1}


def render(r: dict[str, Any]) -> str:
    rows = [("evaluation, default rules", f"{r['events_per_s']:,.0f} events/s", f"{r['events']:,} events",
             f">= {TARGETS['events_per_s']:,.0f}"),
            ("  of which rules alone", f"{r['evaluate_only_events_per_s']:,.0f} events/s",
             f"state commits {r['snapshot_share']:.0%} of the time", ""),
            ("baseline: stateless re-scan", f"{r['baseline_rescan_events_per_s']:,.0f} events/s",
             f"{r['baseline_rescan_events']:,} events", ""),
            ("detect-to-freeze (median)", f"{r['detect_to_freeze_s']:.2f} s",
             f"{r['trials']} trials, max {r['detect_to_freeze_max_s']:.2f} s", f"<= {TARGETS['detect_to_freeze_s']} s"),
            ("baseline: one block interval", f"{r['block_interval_s']:.2f} s", "confirmations 1", "")]
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(row)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--block-interval", type=float, default=1.0)
    args = ap.parse_args(argv)
    print("evaluating synthetic events ...", file=sys.stderr, flush=True)
    result: dict[str, Any] = bench_throughput(args.events)
    print(f"detect-to-freeze on the embedded chain ({args.trials} trials) ...", file=sys.stderr, flush=True)
    result |= bench_freeze(args.trials, args.block_interval)
    result["targets"] = TARGETS
    return emit(result, render, args.json)


if __name__ == "__main__":
    sys.exit(main())
