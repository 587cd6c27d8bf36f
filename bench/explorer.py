"""The explorer's asset page on a chain with many events: the page is rendered from the event index
at once and its verification verdicts come in a second request (computed once per indexed block).

    python -m bench.explorer [--json] [--assets 500] [--jobs 25000]

A bare anvil (:func:`bench.generate.bulk_node`) gets the system, ``--assets`` assets with a grant
each and ``--jobs`` jobs over them (:mod:`bench.generate`); an event index catches up; a TestClient
of ``create_app(index=...)`` then asks, for an asset in the middle: its page (first time, again,
another asset's), its verdicts (``/explorer/verification``, first time and again), the landing page
and the asset's JSON export. Baseline: the explorer before the verdicts were lazy (commit c88ca5b),
whose first asset page ran ``audit.verify`` over every event of the chain read from the node.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from audit.index import EventIndex
from bench.gateway import fresh_space
from bench.generate import bulk_node, generate
from chain.config import load_settings
from chain.node import free_port
from tds.gateway import create_app
from tds.gateway.limits import RateLimit

# measured with the explorer of commit c88ca5b at 500 assets / 25,000 jobs (2 cores)
BASELINE_MS = {"asset_page_first_ms": 20616.6, "asset_page_again_ms": 27.7, "other_asset_page_ms": 91.4,
               "landing_ms": 366.1, "export_json_ms": 43.6}


def timed(client: TestClient, url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = client.get(url)
    return round((time.perf_counter() - t0) * 1000, 1), r.status_code


def measure(assets: int, jobs: int) -> dict[str, Any]:
    """Generate the chain, index it, and time the explorer's reads (milliseconds)."""
    out: dict[str, Any] = {"assets": assets, "jobs": jobs}
    with tempfile.TemporaryDirectory(prefix="tds-bench-explorer-") as tmp:
        settings = load_settings()
        proc, url = bulk_node(settings.node_modules, free_port(), Path(tmp) / "anvil.log")
        try:
            settings = replace(settings, home=Path(tmp) / "home", rpc_url=url, chain_id=None,
                               deployment_file=Path(tmp) / "deployment.json")
            space = fresh_space(settings)
            g = generate(space, assets, jobs)
            out["transactions"], out["blocks"] = g["transactions"], g["blocks"]
            t0 = time.perf_counter()
            idx = EventIndex(space["w3"], space["deployment"], f"sqlite:///{Path(tmp) / 'i.sqlite'}")
            idx.catch_up()
            out["index_s"] = round(time.perf_counter() - t0, 1)
            app = create_app(replace(settings, chain_id=space["w3"].eth.chain_id), index=idx,
                             rate_limit=RateLimit(per_second=10**6, burst=10**6))
            c = TestClient(app)
            asset = g["first_asset"] + assets // 2
            out["asset_page_first_ms"], status = timed(c, f"/explorer/asset/{asset}")
            assert status == 200, status
            out["asset_page_again_ms"] = timed(c, f"/explorer/asset/{asset}")[0]
            out["other_asset_page_ms"] = timed(c, f"/explorer/asset/{asset + 1}")[0]
            out["verification_first_ms"] = timed(c, f"/explorer/verification?asset={asset}")[0]
            out["verification_again_ms"] = timed(c, f"/explorer/verification?asset={asset}")[0]
            out["asset_page_with_verdicts_ms"] = timed(c, f"/explorer/asset/{asset}")[0]
            out["landing_ms"] = timed(c, "/explorer")[0]
            out["export_json_ms"] = timed(c, f"/explorer/export?asset={asset}&format=json")[0]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=25_000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    r = measure(a.assets, a.jobs)
    if a.json:
        print(json.dumps({"result": r, "baseline": BASELINE_MS}, sort_keys=True))
        return 0
    print(f"{r['assets']} assets, {r['jobs']} jobs, {r['transactions']} transactions in {r['blocks']} blocks; "
          f"index caught up in {r['index_s']} s")
    print(f"{'measure':32} {'now (ms)':>10} {'baseline (ms)':>14}")
    for k, v in r.items():
        if k.endswith("_ms"):
            base = BASELINE_MS.get(k)
            print(f"{k:32} {v:>10} {base if base is not None else '—':>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
