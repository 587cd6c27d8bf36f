"""``tds demo``: the main job — the whole lifecycle on the embedded chain, every result checked."""
from __future__ import annotations

import json
import sys
import time

import click

from tds.cli.output import console
from chain.config import load_settings


@click.command("demo")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON report here (default .tds/demo-report.json).")
@click.option("--rows", type=int, default=600, show_default=True, help="Rows in the sample sales table.")
def demo(report: str | None, rows: int) -> None:
    """Run the full lifecycle demo; exit 1 if any step or verification fails."""
    from tds.demo import run_demo

    settings = load_settings()
    t0 = time.perf_counter()
    rep = run_demo(settings, say=lambda m: console.print(m), rows=rows)
    out = report or str(settings.home / "demo-report.json")
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"ok": rep.ok, "seconds": round(time.perf_counter() - t0, 2), "steps": rep.steps}, fh, indent=1,
                  default=str)
    failed = [s["step"] for s in rep.steps if not s["ok"]]
    verdict = "[bold green]all steps verified[/]" if rep.ok else f"[bold red]FAILED: {', '.join(failed)}[/]"
    console.print(f"{verdict} in {time.perf_counter() - t0:.1f} s; report: {out}")
    if not rep.ok:
        sys.exit(1)
