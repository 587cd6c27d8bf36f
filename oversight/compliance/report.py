"""The regulator's compliance report: JSON (``tds-compliance-report/1``) and one printable HTML
page (every value escaped; no scripts, no external resources)."""
from __future__ import annotations

import html
import time
from typing import Any

from oversight.compliance.checks import CATEGORIES, SEVERITIES
from oversight.compliance.findings import FindingStore

REPORT_FORMAT = "tds-compliance-report/1"


def build_report(store: FindingStore, deployment: dict[str, Any], anchored: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Every finding with its transitions (and, given ``anchored`` — transition key
    ``"<finding>#<seq>"`` → proof — where each is anchored), counted by state, category, severity."""
    findings = []
    for f in store.list():
        steps = []
        for t in store.transitions(f.id):
            proof = (anchored or {}).get(f"{t.finding}#{t.seq}")
            steps.append({"seq": t.seq, "from": t.from_state, "to": t.to_state, "actor": t.actor, "note": t.note,
                          "time": t.time, "batch_root": t.root, **({"anchor": proof} if proof else {})})
        findings.append({**f.to_json(), "transitions": steps})
    count = {k: {v: sum(1 for f in findings if f[k] == v) for v in vals}
             for k, vals in (("state", ("opened", "acknowledged", "fixed", "verified")), ("category", CATEGORIES),
                             ("severity", SEVERITIES))}
    return {"format": REPORT_FORMAT, "generated": int(time.time()), "chainId": deployment.get("chainId"),
            "assetRegistry": deployment.get("contracts", {}).get("AssetRegistry", {}).get("address"),
            "counts": count, "findings": findings}


_CSS = ("body{font-family:sans-serif;margin:2em;color:#111}table{border-collapse:collapse;width:100%;margin:1em 0}"
        "th,td{border:1px solid #999;padding:4px 6px;text-align:left;vertical-align:top;font-size:12px}"
        "th{background:#eee}.critical{color:#a00;font-weight:bold}.severe{color:#c40}.warning{color:#960}"
        "code{font-size:11px;word-break:break-all}@media print{body{margin:0}}")


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else ""


def render_html(report: dict[str, Any]) -> str:
    """One self-contained printable page; every value from the report is HTML-escaped."""
    rows = []
    for f in report["findings"]:
        steps = "<br>".join(f"{_e(t['to'])} by <code>{_e(t['actor'])}</code> {_e(_when(t['time']))}"
                            + (f" — tx <code>{_e(t['anchor']['tx'])}</code>" if t.get("anchor") else
                               f" — root <code>{_e(t['batch_root'])}</code>")
                            + (f" — {_e(t['note'])}" if t["note"] else "") for t in f["transitions"])
        evidence = "<br>".join(f"<code>{_e(x)}</code>" for x in f["evidence"])
        rows.append(f"<tr><td><code>{_e(f['id'])}</code></td><td class=\"{_e(f['severity'])}\">{_e(f['severity'])}</td>"
                    f"<td>{_e(f['category'])}<br>{_e(f['check'])}</td><td>{_e(f['subject'])}</td>"
                    f"<td><code>{_e(f['responsible'])}</code></td><td>{_e(f['detail'])}<br><i>fix:</i> {_e(f['fix'])}"
                    f"</td><td>{evidence}</td><td>{_e(f['state'])}{'' if f['present'] else ' (no longer seen)'}"
                    f"<br>{steps}</td></tr>")
    counts = "".join(f"<tr><th>{_e(k)}</th>" + "".join(f"<td>{_e(n)}: {_e(c)}</td>" for n, c in v.items()) + "</tr>"
                     for k, v in report["counts"].items())
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Compliance report — chain {_e(report['chainId'])}</title><style>{_CSS}</style></head><body>"
            f"<h1>Compliance report</h1><p>chain {_e(report['chainId'])}, AssetRegistry "
            f"<code>{_e(report['assetRegistry'])}</code>, generated {_e(_when(report['generated']))}; "
            f"format {_e(report['format'])}</p><table>{counts}</table>"
            "<table><tr><th>finding</th><th>grade</th><th>check</th><th>subject</th><th>responsible</th>"
            "<th>what and the suggested fix</th><th>evidence</th><th>state and transitions (each anchored)</th></tr>"
            + "".join(rows) + "</table></body></html>\n")
