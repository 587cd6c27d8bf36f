"""``tds demo``: the main job. At this stage: compile, deploy, print the addresses."""
from __future__ import annotations

import json

import click

from oracle.cli.output import console
from oracle.config import load_settings


@click.command("demo")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write a JSON report here.")
def demo(report: str | None) -> None:
    """Run the full lifecycle demo on the embedded chain."""
    from oracle.system import deploy_system

    settings = load_settings()
    doc = deploy_system(settings)
    console.print(f"[bold]Trusted Data Space[/] deployed on chain {doc['chainId']} at block {doc['block']}:")
    for name, entry in sorted(doc["contracts"].items()):
        console.print(f"  {name:24} {entry['address']}")
    out = report or str(settings.home / "demo-report.json")
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"ok": True, "deployment": {k: v["address"] for k, v in doc["contracts"].items()}}, fh, indent=2)
    console.print(f"report: {out}")
