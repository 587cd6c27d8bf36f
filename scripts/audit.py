"""Audit step: an auditor with nothing but the chain, the published operation logs and the
documents whose hashes are on chain reconstructs every asset's trail and verifies it — each
result signature and result hash, each anchored log batch and inclusion proof, the quality
reports and destruction proofs, and that every payment was split exactly.

    brownie run scripts/audit.py --network tds-anvil                (after scripts/destroy.py)

The same check from the command line:
``tds audit verify --logs $TDS_HOME/scripts/logs --doc FILE …`` (see README). Exits non-zero if
any verification fails.
"""
from __future__ import annotations

from pathlib import Path

from audit.events import ChainReader
from audit.trail import build_trail
from audit.verify import overall, verify_all

from ._common import Step, fail


def main() -> dict:
    step = Step("audit")
    assets = step.need("register", "assets")
    documents = {f"asset:{a['asset']}:quality": Path(a["qualityReport"]).read_bytes() for a in assets.values()}
    for p in step.state.get("destruction", {}).values():
        documents[f"grant:{p['grant']}:destruction"] = Path(p["file"]).read_bytes()
    reader = ChainReader(step.w3, step.deployment)
    for name, a in assets.items():
        trail = build_trail(reader, a["asset"])
        actions = sorted({e.action for e in trail})
        step.say(f"asset #{a['asset']} ({name}): {len(trail)} events on chain — {', '.join(actions)}")
    verdicts = verify_all(None, None, reader=reader, logs_dir=step.work / "logs", fetch=step.store.cat,
                          documents=documents)
    mark = {"pass": "✓", "fail": "✗", "skip": "–"}
    for v in verdicts:
        step.say(f"  {mark[v['status']]} {v['step']:16} {v['subject']:28} {v['detail']}")
    failed = [v for v in verdicts if v["status"] == "fail"]
    counts = {s: sum(v["status"] == s for v in verdicts) for s in ("pass", "fail", "skip")}
    step.state["audit"] = {"ok": overall(verdicts), **counts}
    step.done(**step.state["audit"])
    step.say(f"{'PASS' if not failed else 'FAIL'}: {counts['pass']} verifications hold, {counts['fail']} fail, "
             f"{counts['skip']} skipped")
    if failed:
        fail(f"{len(failed)} verification(s) failed: " + "; ".join(f"{v['step']} {v['subject']}" for v in failed))
    return step.state["audit"]
