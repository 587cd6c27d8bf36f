"""The gateway's catalog and trails served from the event index versus today's path (events and
calls read from the node on every request), under concurrent load on loopback.

    python -m bench.gateway [--json] [--assets 10000] [--jobs 100000] [--clients 50] [--duration 20]

A bare anvil (:func:`bench.generate.bulk_node`) gets the system, ``--assets`` generated assets
with a grant each and ``--jobs`` jobs over those grants (:mod:`bench.generate`: batched JSON-RPC,
``--per-block`` transactions a block). Measured: ``rebuild_s`` (index from empty),
``index_lag_blocks`` (median blocks between an asset's block and its visibility through the
gateway, with ``--confirmations``), ``catalog_rps`` / ``catalog_p99_ms`` (``GET
/catalog?limit=<page>`` from the index), ``trail_rps`` / ``trail_p99_ms`` (``GET
/assets/{id}/trail``, every generated asset in turn, none asked twice within a run), each with
``--clients`` connections for ``--duration`` s from ``wrk`` in a second process (an httpx client
when wrk is missing), and ``direct_catalog_rps`` (the catalog on today's path; the baseline).
Targets (issue 18, at 10,000 assets and 100,000 jobs): catalog ≥ 1,000 rps with p99 ≤ 50 ms,
trail ≥ 300 rps, index lag ≤ confirmations + 1.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_utils import keccak

from chain.accounts import dev_account
from chain.config import Settings, load_settings
from chain.connection import connect
from chain.deploy import bind
from chain.node import free_port
from chain.system import deploy_system, role_id
from chain.tx import Sender
from did.binding import make_binding_proof, proof_bytes
from did.keys import did_from_ed25519

# wrk threads: one core for the load generator, one for the gateway (with -t2 on a 2-core machine the
# gateway is descheduled behind wrk and its tail latency measures the scheduler, not the gateway)
WRK_THREADS = 1
WARM_UP_S = 2.0  # seconds of discarded load before each measured catalog run
TARGETS = {"catalog_rps": 1000.0, "catalog_p99_ms": 50.0, "trail_rps": 300.0}
SPLIT = [7000, 1000, 1500, 500]


def fresh_space(settings: Settings) -> dict[str, Any]:
    """Deploy the system on ``settings``' chain with dev account 3 as a bound provider and template 1
    published: ``{"w3", "deployment", "provider", "registry", "send"}``."""
    w3 = connect(settings)
    doc = deploy_system(settings, w3=w3)
    operator, provider = dev_account(0), dev_account(3)
    op = Sender(w3, operator)
    ident = bind(w3, doc, "IdentityRegistry")
    key = Ed25519PrivateKey.from_private_bytes(keccak(text="bench-gateway-provider"))
    did = did_from_ed25519(key.public_key())
    proof = proof_bytes(make_binding_proof(key, provider, w3.eth.chain_id))
    Sender(w3, provider).send(ident.functions.bind(did, keccak(text=did + "doc"), keccak(text=did + "kak"), proof))
    op.send(ident.functions.grantParticipantRole(provider.address, role_id("PROVIDER"), keccak(text="vc:p"), 0))
    op.send(bind(w3, doc, "CertificateTemplates").functions.publish(
        "standard", b"\x12\x20" + keccak(text="terms"), keccak(text="terms"), 3, 63, SPLIT))
    return {"w3": w3, "deployment": doc, "provider": provider, "registry": bind(w3, doc, "AssetRegistry"),
            "send": Sender(w3, provider)}


def _mint_args(tag: str) -> tuple:
    return (b"\x12\x20" + keccak(text="content-" + tag), b"\x12\x20" + keccak(text="meta-" + tag),
            keccak(text="manifest-" + tag), 1, keccak(text="q-" + tag), 1)


def mint_one(space: dict[str, Any], tag: str) -> int:
    """Mint one asset (its own block); returns the block it was mined in."""
    return int(space["send"].send(space["registry"].functions.mint(_mint_args(tag)))["blockNumber"])


def _load(url: str, clients: int, duration: float, out: Any) -> None:
    """Client process: ``clients`` concurrent async GETs of ``url`` for ``duration`` s."""
    import asyncio

    import httpx

    async def main() -> dict[str, Any]:
        lat: list[float] = []
        errors = 0
        stop = time.perf_counter() + duration
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    try:
                        r = await client.get(url)
                        ok = r.status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if ok:
                        lat.append(time.perf_counter() - t)
                    else:
                        errors += 1
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            wall = time.perf_counter() - t0
        return {"n": len(lat), "errors": errors, "wall": wall, "lat": sorted(lat)}

    out.put(asyncio.run(main()))


def _wrk_ms(text: str) -> float:
    """A wrk latency ("8.97ms", "1.20s", "450.00us") in milliseconds."""
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 2)
    return round(float(text), 2)


def load_wrk(url: str, clients: int, duration: float, script: Path | None = None) -> dict[str, Any] | None:
    """The load from ``wrk`` (Debian's package), a C load generator in its own process: it can
    drive the server past what a Python client measures (~160 rps here whatever the server does)."""
    import re
    import shutil
    import subprocess

    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    extra = ["-s", str(script)] if script is not None else []
    out = subprocess.run([wrk, f"-t{WRK_THREADS}", f"-c{clients}", f"-d{max(1, round(duration))}s", "--latency", *extra, url],
                         capture_output=True, text=True, timeout=duration + 120).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50, p99 = re.search(r"^\s+50%\s+(\S+)", out, re.M), re.search(r"^\s+99%\s+(\S+)", out, re.M)
    done = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not (rps and p50 and p99 and done):
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
    return {"rps": float(rps.group(1)), "p50_ms": _wrk_ms(p50.group(1)), "p99_ms": _wrk_ms(p99.group(1)),
            "requests": int(done.group(1)), "errors": errors, "tool": "wrk"}


def load(url: str, clients: int, duration: float, fast: bool = True) -> dict[str, Any]:
    """Requests per second and p50/p99 latency of ``url`` under load from a second process:
    ``wrk`` when installed (``apt-get install wrk``) and ``fast``, else an httpx client (a far
    lower ceiling, but a 30 s timeout: right for the slow baseline path)."""
    measured = load_wrk(url, clients, duration) if fast else None
    if measured is not None:
        return measured
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_load, args=(url, clients, duration, q))
    p.start()
    r = q.get(timeout=duration + 600)
    p.join()
    lat = r["lat"]
    if not lat:  # nothing finished within the client timeout (30 s)
        return {"rps": 0.0, "p50_ms": None, "p99_ms": None, "requests": 0, "errors": r["errors"]}
    p99 = lat[min(len(lat) - 1, int(0.99 * (len(lat) - 1) + 0.5))]
    return {"rps": round(r["n"] / r["wall"], 1), "p50_ms": round(statistics.median(lat) * 1000, 1),
            "p99_ms": round(p99 * 1000, 1), "requests": r["n"], "errors": r["errors"], "tool": "httpx"}


def serve(app: Any) -> tuple[Any, str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread: (server, base url)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _visible(client: Any, url: str, within: float) -> bool:
    """True once ``url`` answers 200, polling for ``within`` seconds."""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if client.get(url).status_code == 200:
            return True
        time.sleep(0.02)
    return False


def _rotating(path: str, first: int, count: int, tmp: Path) -> Path:
    """A wrk script requesting ``path`` (with ``{id}``) for ids first..first+count-1 in turn; with
    two wrk threads the second starts half-way (so no answer is asked for twice)."""
    script = tmp / "rotate.lua"
    before, after = path.split("{id}")
    script.write_text(f"""
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) counter = tid * {max(1, count // 2)} end
function request()
  counter = counter + 1
  local id = {first} + (counter % {count})
  return wrk.format("GET", "{before}" .. id .. "{after}")
end
""")
    return script


def measure(assets: int, jobs: int, clients: int, duration: float, page: int, confirmations: int,
            per_block: int = 500, index_range: int = 10, read_processes: int = 2) -> dict[str, Any]:
    import httpx

    from audit.index import EventIndex
    from bench.generate import bulk_node, generate
    from tds.gateway import create_app
    from tds.gateway.limits import RateLimit

    with tempfile.TemporaryDirectory(prefix="tds-bench-gateway-") as tmp:
        tmp_path = Path(tmp)
        base_settings = load_settings()
        proc, rpc = bulk_node(base_settings.node_modules, free_port(), tmp_path / "anvil.log")
        try:
            settings = replace(base_settings, home=tmp_path / "home", rpc_url=rpc, chain_id=None,
                               deployment_file=tmp_path / "deployment.json")
            space = fresh_space(settings)
            t0 = time.perf_counter()
            made = generate(space, assets, jobs, per_block=per_block)
            generate_s = time.perf_counter() - t0
            w3, doc = space["w3"], space["deployment"]
            url = f"sqlite:///{tmp_path / 'index.sqlite'}"
            t0 = time.perf_counter()
            index = EventIndex(w3, doc, url, confirmations=0, max_range=index_range)
            index.catch_up()
            rebuild_s = time.perf_counter() - t0
            live = EventIndex(w3, doc, engine=index.engine, confirmations=confirmations, max_range=index_range)
            stop = threading.Event()
            threading.Thread(target=live.run, kwargs={"stop": stop.is_set, "idle": 0.05,
                                                      "on_error": lambda e: None}, daemon=True).start()
            unlimited = {"rate_limit": RateLimit(per_second=1e9, burst=10**9)}
            app = create_app(settings, index=live, read_processes=read_processes, **unlimited)
            if app.state.read_processes is not None:
                app.state.read_processes.warm()
            server, base = serve(app)
            lags = []
            minted = made["first_asset"] + made["assets"] - 1 if made["assets"] else 0
            with httpx.Client(timeout=30) as client:
                for k in range(5):  # freshness: blocks from an asset's block to its visibility
                    block = mint_one(space, f"fresh-{k}")
                    asset = minted + k + 1
                    while not _visible(client, f"{base}/assets/{asset}", 0.5):
                        w3.provider.make_request("evm_mine", [])  # one more block, then look again
                    lags.append(w3.eth.block_number - block)
            stop.set()
            time.sleep(0.2)
            counts = live.status()["counts"]
            # warm-up (discarded): the first answers build and cache the page with every client
            # waiting; the figures below are the steady state a running gateway serves
            load(f"{base}/catalog?limit={page}", clients, WARM_UP_S)
            catalog = load(f"{base}/catalog?limit={page}", clients, duration)
            trail_tool = "wrk"
            if shutil.which("wrk") is not None:
                script = _rotating("/assets/{id}/trail", made["first_asset"] or 1, max(1, made["assets"]), tmp_path)
                trail = load_wrk(f"{base}/assets/1/trail", clients, duration, script=script)
            else:
                trail_tool = "httpx"
                trail = load(f"{base}/assets/{made['first_asset'] or 1}/trail", clients, duration, fast=False)
            direct_server, direct_base = serve(create_app(settings, **unlimited))
            direct = load(f"{direct_base}/catalog?limit={page}", min(clients, 4), min(duration, 10), fast=False)
            server.should_exit = direct_server.should_exit = True
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"assets": made["assets"], "grants": made["grants"], "jobs": made["jobs"], "events": counts["events"],
            "generate_s": round(generate_s, 1), "generate": made, "page": page, "clients": clients,
            "duration_s": duration, "confirmations": confirmations, "read_processes": read_processes,
            "rebuild_s": round(rebuild_s, 2), "machine_load": round(os.getloadavg()[0], 2),
            "index_lag_blocks": statistics.median(lags),
            "catalog_rps": catalog["rps"], "catalog_p50_ms": catalog["p50_ms"], "catalog_p99_ms": catalog["p99_ms"],
            "catalog_errors": catalog["errors"], "trail_rps": trail["rps"], "trail_p50_ms": trail["p50_ms"],
            "trail_p99_ms": trail["p99_ms"], "trail_errors": trail["errors"], "trail_tool": trail_tool,
            "direct_catalog_rps": direct["rps"], "direct_catalog_p99_ms": direct["p99_ms"],
            "direct_clients": min(clients, 4), "load_tool": catalog.get("tool", "httpx"), "load_threads": WRK_THREADS}


def table(r: dict[str, Any]) -> str:
    rows = [
        (f"catalog from the index (GET /catalog?limit={r['page']})", f"{r['catalog_rps']:.0f} rps", "≥ 1000",
         r["catalog_rps"] >= TARGETS["catalog_rps"]),
        ("  p99 latency", f"{r['catalog_p99_ms']:.1f} ms", "≤ 50 ms", r["catalog_p99_ms"] <= TARGETS["catalog_p99_ms"]),
        ("trail from the index (each asset once)", f"{r['trail_rps']:.0f} rps", "≥ 300",
         r["trail_rps"] >= TARGETS["trail_rps"]),
        ("  p99 latency", "none" if r["trail_p99_ms"] is None else f"{r['trail_p99_ms']:.1f} ms", "", True),
        ("catalog today (from the node; baseline)", f"{r['direct_catalog_rps']:.2f} rps", "", True),
        ("  p99 latency", "none in 30 s" if r["direct_catalog_p99_ms"] is None else f"{r['direct_catalog_p99_ms']:.0f} ms",
         "", True),
        ("index lag (median blocks to visibility)", f"{r['index_lag_blocks']}", f"≤ {r['confirmations'] + 1}",
         r["index_lag_blocks"] <= r["confirmations"] + 1),
        ("rebuild from empty", f"{r['rebuild_s']:.1f} s", "", True),
        ("generation (assets, grants, jobs)", f"{r['generate_s']:.1f} s", "", True),
    ]
    out = [f"gateway: {r['assets']} assets, {r['grants']} grants, {r['jobs']} jobs ({r['events']} events), "
           f"{r['clients']} clients ({r['direct_clients']} on the baseline), {r['duration_s']:.0f} s each, "
           f"{r['read_processes']} reader processes, load {r['machine_load']}",
           f"{'measure':48} {'value':>12} {'target':>10}  verdict", "-" * 82]
    out += [f"{a:48} {b:>12} {c:>10}  {'ok' if ok else 'MISSED'}" for a, b, c, ok in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--assets", type=int, default=10_000, help="generated assets (one grant each)")
    ap.add_argument("--jobs", type=int, default=100_000, help="generated jobs, spread over the grants")
    ap.add_argument("--per-block", type=int, default=500, help="generated transactions per block")
    ap.add_argument("--index-range", type=int, default=10, help="blocks per index window (dense blocks)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load per measured route")
    ap.add_argument("--page", type=int, default=100, help="assets per catalog page")
    ap.add_argument("--confirmations", type=int, default=2)
    ap.add_argument("--read-processes", type=int, default=2,
                    help="gateway reader processes for trails (0: one reader thread, the earlier path)")
    a = ap.parse_args(argv)
    r = measure(a.assets, a.jobs, a.clients, a.duration, a.page, a.confirmations, a.per_block, a.index_range, a.read_processes)
    print(table(r), file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(r, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
