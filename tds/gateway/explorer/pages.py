"""The explorer's pages over the event index: the landing page (catalog, latest activity, totals),
an asset, a grant, a job, a workflow or collaboration, an anchored log batch; trails as tables in
which every id, address, DID and hash links to its page, with verification verdicts in place."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from audit.verify import cid_text
from tds.gateway.explorer import html as h
from tds.gateway.explorer.data import ExplorerData
from tds.gateway.explorer.paging import NO_PAGING, Paging, page_slice, pager
from tds.gateway.explorer.units import (
    TIME_KEYS,
    bytes_text,
    enum_text,
    humanize_amounts,
    operations_text,
    reason_text,
)

AMOUNT_KEYS = ("amount", "price", "pricePerUse", "refund", "value")
TOKEN_KEYS = ("token", "paymentToken")
# what each verification step compares (audit/verify.py, audit/verify_collab.py)
COMPARED = {
    "signature": "the oracle's EIP-712 JobResult signature (completeJob calldata) ↔ the event's oracle, over the "
                 "digest Jobs.resultDigest computes",
    "release": "the holder's AnswerReleased result hash ↔ the JobCompleted result hash",
    "result-hash": "keccak-256 of the stored result bytes ↔ resultHash on chain",
    "payment": "the Credited shares of the job ↔ its escrowed amount and token (refund = amount on failure)",
    "batch-root": "the Merkle root recomputed from the published log file ↔ the root and count anchored",
    "batch-inclusion": "each record's inclusion proof ↔ the anchored root (locally and Evidence.verifyRecord)",
    "document": "hash of a supplied document ↔ the hash recorded on chain",
    "collab-order": "the order steps completed ↔ the collaboration's step dependencies",
    "collab-payment": "credited shares ↔ each grant use's price",
    "collab-result": "the stored step result ↔ the anchored result hash",
}


def detail_values(data: ExplorerData, detail: dict[str, Any]) -> h.Html:
    """An event's detail arguments: amounts in their token's units, reason codes named, the rest linked."""
    token = next((detail[k] for k in TOKEN_KEYS if k in detail), None)
    parts = []
    for k, v in detail.items():
        if v is None or k in ("bindingProof",):
            continue
        if isinstance(v, dict):
            shown: Any = h.Html("{ " + detail_values(data, v) + " }")
        elif k in AMOUNT_KEYS and isinstance(v, (int, str)) and str(v).isdigit():
            shown = h.tag("span", data.amount(v, token), class_="amount", title=f"{v} base units")
        elif k.endswith("Cid") and isinstance(v, str) and v.startswith("0x"):
            shown = h.tag("code", cid_text(bytes.fromhex(v[2:])), class_="wrap", title=v)
        elif k in TOKEN_KEYS and isinstance(v, str) and v.startswith("0x") and not int(v, 16):
            shown = h.tag("span", "native coin (ETH)", title=v)
        elif enum_text(k, v) is not None:
            shown = enum_text(k, v)
        elif k in TIME_KEYS and isinstance(v, int) and v > 10**8:
            shown = h.when(v)
        elif k.endswith("Ref") and isinstance(v, str) and v.startswith("0x") and bytes_text(v):
            shown = h.tag("code", bytes_text(v), title=v, class_="wrap")
        elif k == "reasonCode":
            shown = reason_text("freeze" if int(v) >= 0xA000 else "job", v)
        elif k in ("operations", "allowedOps", "operation"):
            shown = operations_text(v)
        else:
            shown = h.value(k, v)
        parts.append(f"<span class='arg'><span class='k'>{h.esc(k)}</span> {h.esc(shown)}</span>")
    return h.Html(" ".join(parts))


def _cid(value: str | None) -> h.Html:
    """A CID the chain stores as bytes, shown as text (the raw bytes on hover)."""
    if not value:
        return h.Html("—")
    text = cid_text(bytes.fromhex(value[2:])) if value.startswith("0x") else value
    return h.tag("code", text, class_="wrap", title=value)


def entry_ref(entry: dict[str, Any]) -> str | None:
    """``job:N`` / ``batch:N`` for the trail entries verdicts are about (a job's end, a batch anchor)."""
    o = entry.get("object") or {}
    if o.get("job") is not None and entry.get("action") in ("complete", "fail", "reclaim"):
        return f"job:{o['job']}"
    if o.get("batch") is not None and entry.get("event") == "BatchAnchored":
        return f"batch:{o['batch']}"
    return None


def verdict_ref(v: dict[str, Any]) -> str | None:
    """``job:N`` / ``batch:N``: the trail entry a verdict is about."""
    r = v.get("refs") or {}
    return f"job:{r['job']}" if "job" in r else (f"batch:{r['batch']}" if "batch" in r else None)


def trail_table(data: ExplorerData, entries: Iterable[Any], verdicts: list[dict[str, Any]] | None = None) -> h.Html:
    """Audit entries as a table: time and block, action, actor (address and DID), object, result,
    the event with its transaction, its arguments, and the verdicts about it."""
    rows, attrs = [], []
    for e in entries:
        d = e.to_dict() if hasattr(e, "to_dict") else e
        obj = h.join((h.value(k, v) if k not in ("payee", "to", "member") else h.address(v)
                      for k, v in d["object"].items()), " ")
        result = h.badge(d["result"], "pass" if d["result"] in ("ok", "approved") else "fail")
        if d.get("error_code") is not None:
            result = h.Html(result + " " + h.esc(reason_text("job", d["error_code"])))
        ref = entry_ref(d)
        checks = [v for v in (verdicts or []) if ref is not None and verdict_ref(v) == ref]
        marks = h.tag("span", h.join((h.badge(f"{v['step']} {v['status']}", v["status"]) for v in checks), " "),
                      class_="marks")
        tx, _, log = d["id"].rpartition(":")
        rows.append([h.when(d["time"], d["block"]), h.tag("strong", d["action"]),
                     h.address(d["actor"], d.get("actor_did")), obj, result,
                     h.tag("span", f"{d['contract']}.{d['event']}") + " " + h.tx_link(tx) + f" log {log}",
                     h.Html(detail_values(data, d.get("detail") or {}) + marks)])
        attrs.append({"data_id": d["id"], "data_action": d["action"], "data_result": d["result"],
                      "data_event": d["event"], "data_ref": ref})
    return h.table(["time · block", "action", "actor", "object", "result", "event · transaction", "details"],
                   rows, cls="trail", empty="no entries", row_attrs=attrs)


def verdict_table(verdicts: list[dict[str, Any]], data: ExplorerData | None = None) -> h.Html:
    """Verdicts with what each check compared, its result (amounts in the job's token) and the
    objects it is about (linked)."""
    rows, attrs = [], []
    for v in verdicts:
        refs = h.join((h.value(k, x) for k, x in (v.get("refs") or {}).items()), " ")
        detail: Any = h.linkify(v["detail"])
        job = (v.get("refs") or {}).get("job")
        if data is not None and job is not None and v["step"] == "payment":
            decimals, symbol = data.token((data.job_row(job) or {}).get("payment_token"))
            detail = h.tag("span", h.linkify(humanize_amounts(v["detail"], decimals, symbol)), title=v["detail"])
        rows.append([h.badge(v["status"]), v["step"], h.Html(h.esc(v["subject"]) + " " + refs),
                     COMPARED.get(v["step"], ""), detail])
        attrs.append({"class_": "verdict " + v["status"], "data_step": v["step"], "data_status": v["status"],
                      "data_subject": v["subject"], "data_ref": verdict_ref(v)})
    ok = all(v["ok"] for v in verdicts)
    failed = sum(1 for v in verdicts if v["status"] == "fail")
    head = h.tag("p", f"{'PASS' if ok else 'FAIL'}: {len(verdicts) - failed}/{len(verdicts)} verifications hold",
                 class_="verdict-summary " + ("pass" if ok else "fail"), id="status")
    return h.Html(head + h.table(["", "check", "subject", "what was compared", "result"], rows, cls="verdicts",
                                 empty="nothing to verify", row_attrs=attrs))


def verification_section(data: ExplorerData, scope: str, ident: int,
                         verdicts: list[dict[str, Any]] | None) -> h.Html:
    """The verdicts when already computed at the indexed block; else a slot the page's script fills
    from ``/explorer/verification`` (a link to the same verdicts without the script)."""
    if verdicts is not None:
        return h.section("Verification", verdict_table(verdicts, data), "verification")
    src = f"{h.BASE}/verification?{scope}={ident}"
    slot = h.tag("div", h.Html(h.tag("p", h.Html(h.esc("Verifying against the node… (the page is shown from the "
                                                          "index at once; ") + h.link(f"{src}&format=html",
                                                                                      "open the verdicts")
                                                 + h.esc(")")), class_="pending")),
                 class_="verdicts-slot", data_src=f"{src}&format=fragment", aria_live="polite", aria_busy="true")
    return h.section("Verification", slot, "verification")


def export_links(query: str) -> h.Html:
    """Links to the JSON, CSV and printable exports of ``query``'s scope."""
    return h.Html("<p class='exports'>Export: " + " · ".join(
        h.link(f"{h.BASE}/export?{query}&format={f}", label, class_="export", data_format=f)
        for f, label in (("json", "JSON"), ("csv", "CSV"), ("html", "printable report"))) + "</p>")


def landing(data: ExplorerData) -> h.Html:
    """Totals, the catalog and the latest activity across the space."""
    t = data.totals()
    paid = ", ".join(data.amount(v, k) for k, v in sorted(t["paid"].items())) or "0"
    cards = [("assets", t["assets"]), ("grants", t["grants"]), ("jobs", t["jobs"]),
             ("collaborations", t["collaborations"]), ("paid", paid), ("frozen", t["frozen"]),
             ("alerts", f"{t['alerts']} ({t['open_alerts']} open)"), ("log batches", t["batches"])]
    totals = h.Html("<ul class='totals'>" + "".join(
        f"<li data-total='{h.esc(k)}'><span class='n'>{h.esc(v)}</span><span class='l'>{h.esc(k)}</span></li>"
        for k, v in cards) + "</ul>")
    rows = [[h.entity("asset", a["asset_id"]), h.address(a["holder"], data.did_of(a["holder"])), a["classification"],
             h.badge(a["state"]), "—" if a["rating"] is None else f"{a['rating']:.1f} ({a['rating_count']})",
             a["grants"], a["uses"], h.when(a["registered_time"], a["registered_block"])] for a in data.catalog()]
    catalog = h.table(["asset", "holder", "classification", "state", "rating", "grants", "uses", "registered"], rows,
                      cls="catalog", empty="no assets registered yet")
    return h.Html(totals + h.section("Catalog", catalog, "catalog")
                  + h.section("Latest activity", trail_table(data, data.latest(15))
                              + h.tag("p", h.link(f"{h.BASE}/activity", "the whole audit log, newest first →")),
                              "latest")
                  + h.section("Export", landing_export_form()))


def landing_export_form() -> h.Html:
    """A form exporting the audit log of a time range."""
    return h.Html(f"<form class='export-range' action='{h.BASE}/export' method='get'>"
                  "<label>from <input name='from' placeholder='2026-01-01 or unix s'></label> "
                  "<label>to <input name='to' placeholder='2026-12-31'></label> "
                  "<select name='format' aria-label='format'><option>html</option><option>json</option>"
                  "<option>csv</option></select> <button type='submit'>Export the audit log</button></form>")


def asset_page(data: ExplorerData, asset_id: int, paging: Paging = NO_PAGING) -> h.Html | None:
    """An asset: facts, grants, jobs, trail (each paged), verification (filled in lazily unless
    already computed at the indexed block); None if unknown."""
    a = data.asset(asset_id)
    if a is None:
        return None
    _, trail = data.reads().asset_trail(asset_id)
    verdicts = data.verifier.cached("asset", asset_id)
    rating = f"{a['rating_sum'] / a['rating_count']:.1f} from {a['rating_count']}" if a["rating_count"] else "—"
    facts = h.kv([("state", h.badge(a["state"])), ("classification", a["classification"]),
                  ("holder", h.address(a["holder"], data.did_of(a["holder"]))),
                  ("provider", h.address(a["provider"], data.did_of(a["provider"]))),
                  ("registered", h.Html(h.when(a["registered_time"], a["registered_block"]) + " "
                                        + h.tx_link(a["registered_tx"]))),
                  ("allowed operations", operations_text(a["allowed_ops"])), ("template", a["template_id"]),
                  ("content CID", _cid(a["content_cid"])), ("metadata CID", _cid(a["metadata_cid"])),
                  ("manifest hash", h.hash_link(a["manifest_hash"])),
                  ("dataset version", f"{a['latest_version']} (of {len(a['versions'])} recorded)"),
                  ("quality report hash", h.hash_link(a["quality_report_hash"])), ("rating", rating),
                  ("trail", f"{len(trail or []):,} entries, {len(a['grants']):,} grants, {len(a['jobs']):,} jobs")])
    shown_grants, grants_nav = page_slice(a["grants"], paging, "grants")
    grants = h.table(["grant", "consumer", "status", "frozen", "uses"], [
        [h.entity("grant", g["grant_id"]), h.address(g["consumer"], data.did_of(g["consumer"])), h.badge(g["status"]),
         "frozen" if g["frozen"] else "no", f"{g['uses']} / {g['max_uses'] or '∞'}"] for g in shown_grants])
    shown_jobs, jobs_nav = page_slice(a["jobs"], paging, "jobs")
    jobs = h.table(["job", "grant", "status", "operations", "amount", "requested"], [
        [h.entity("job", j["job_id"]), h.entity("grant", j["grant_id"]), h.badge(j["status"]),
         operations_text(j["operation"]), data.amount(j["amount"], j["payment_token"]),
         h.block_link(j["requested_block"])]
        for j in shown_jobs])
    shown_versions, versions_nav = page_slice(a["versions"], paging, "versions")
    versions = h.table(["version", "manifest hash", "previous", "by", "recorded"], [
        [v["version"], h.hash_link(v["manifest_hash"]), h.hash_link(v["previous_hash"]),
         h.address(v["by"], data.did_of(v["by"])), h.Html(h.when(v["time"], v["block"]) + " " + h.tx_link(v["tx"]))]
        for v in shown_versions])
    shown_trail, trail_nav = page_slice(trail or [], paging, "trail")
    return h.Html(facts + export_links(f"asset={asset_id}")
                  + h.section("Dataset versions", versions_nav + versions, "versions")
                  + h.section("Grants", grants_nav + grants, "grants")
                  + h.section("Jobs", jobs_nav + jobs, "jobs")
                  + h.section("Trail", trail_nav + trail_table(data, shown_trail, verdicts) + trail_nav, "trail")
                  + verification_section(data, "asset", asset_id, verdicts))


def grant_page(data: ExplorerData, grant_id: int) -> h.Html | None:
    """A grant: terms in units, state, jobs, collaboration uses, freezes, history; None if unknown."""
    _, g = data.reads().grant(grant_id)
    if g is None:
        return None
    t = g.get("terms") or {}
    token = t.get("paymentToken")
    terms = h.kv([("asset", h.entity("asset", g["assetId"])),
                  ("consumer", h.address(g["consumer"], data.did_of(g["consumer"]))),
                  ("provider", h.address(g["provider"], data.did_of(g["provider"]))),
                  ("status", h.Html(h.badge(g["status"]) + (" " + h.badge("frozen", "fail") if g["frozen"] else ""))),
                  ("uses", f"{g['uses']} of {g['maxUses'] or 'unlimited'} (restored {g['restored']})"),
                  ("operations", operations_text(t.get("operations"))),
                  ("price per use", data.amount(t.get("pricePerUse"), token)),
                  ("payment token", h.address(token) if token and int(token, 16) else "native coin (ETH)"),
                  ("valid", h.Html((h.when(t["notBefore"]) if t.get("notBefore") else h.esc("from issue")) + " → "
                                   + (h.when(t["expiry"]) if t.get("expiry") else h.esc("no expiry")))),
                  ("purpose hash", h.hash_link(t.get("purposeHash"))),
                  ("algorithm provider", h.address(t.get("algorithmProvider")) if t.get("algorithmProvider") and
                   int(t["algorithmProvider"], 16) else "—"),
                  ("issued", h.Html(h.block_link(g["issued"]["block"]) + " " + h.tx_link(g["issued"]["tx"])))])
    jobs = h.table(["job", "status"], [[h.entity("job", j["jobId"]), h.badge(j["status"])] for j in g["jobs"]])
    uses = h.table(["collaboration", "step", "use"], [[h.entity("workflow/collaboration", u["collaborationId"]),
                                                       u["step"], u["useId"]] for u in g["collaborationUses"]])
    alerts = h.table(["kind", "by", "authority", "reason", "block", "lifted"], [
        [a["kind"], h.address(a["by"], data.did_of(a["by"])), a["authority"], reason_text("freeze", a["reasonCode"]),
         h.Html(h.block_link(a["block"]) + " " + h.tx_link(a["tx"])), h.block_link(a["liftedBlock"])]
        for a in g["alerts"]])
    return h.Html(terms + h.section("Jobs", jobs, "jobs") + h.section("Collaboration uses", uses)
                  + h.section("Freezes and alerts", alerts, "alerts")
                  + h.section("History", trail_table(data, g["history"]), "history"))


def job_page(data: ExplorerData, job_id: int) -> h.Html | None:
    """A job: request, result, payments, history and its verdicts; None if unknown."""
    _, j = data.reads().job(job_id)
    if j is None:
        return None
    row = data.job_row(job_id) or {"payments": []}
    res = j.get("result") or {}
    cached = data.verifier.cached("asset", j["assetId"]) if j.get("assetId") else []
    verdicts = None if cached is None else [v for v in cached if (v.get("refs") or {}).get("job") == job_id]
    facts = h.kv([("status", h.badge(j["status"])), ("grant", h.entity("grant", j["grantId"])),
                  ("asset", h.entity("asset", j["assetId"])),
                  ("consumer", h.address(j["consumer"], data.did_of(j["consumer"]))),
                  ("operations", operations_text(j["operation"])),
                  ("amount escrowed", data.amount(j["amount"], j["paymentToken"])),
                  ("deadline", h.when(j["deadline"])), ("parameters hash", h.hash_link(j["paramsHash"])),
                  ("oracle", h.address(res.get("oracle"), data.did_of(res.get("oracle"))) if res else "—"),
                  ("result CID", _cid(res.get("resultCid"))),
                  ("result hash", h.hash_link(res.get("resultHash")))])
    pays = h.table(["kind", "share", "payee", "amount", "transaction"], [
        [p["kind"], p["share"] or "", h.address(p["payee"], data.did_of(p["payee"])),
         data.amount(p["amount"], p["token"]), h.Html(h.block_link(p["block"]) + " " + h.tx_link(p["tx"]))]
        for p in row["payments"]])
    return h.Html(facts + h.section("Payments", pays, "payments")
                  + h.section("History", trail_table(data, j["history"], verdicts), "history")
                  + verification_section(data, "job", job_id, verdicts))


def workflow_page(data: ExplorerData, kind: str, flow_id: int) -> h.Html | None:
    """A Jobs workflow or a collaboration: state, steps, grant uses, history; None if unknown."""
    w = data.workflow(kind, flow_id)
    if w is None:
        return None
    if kind == "jobs" and not w["amount"] and w["grant_id"]:  # a Jobs workflow escrows price × steps
        token, price = data.grant_price(w["grant_id"])
        if price is not None:
            w = {**w, "payment_token": token, "amount": int(price) * w["step_count"]}
    facts = h.kv([("kind", "collaboration" if kind == "collaboration" else "jobs workflow"),
                  ("status", h.badge(w["status"])),
                  ("initiator", h.address(w["initiator"], data.did_of(w["initiator"]))),
                  ("grant", h.entity("grant", w["grant_id"])), ("steps", w["step_count"]),
                  ("amount", data.amount(w["amount"], w["payment_token"]) if w["amount"] else "—"),
                  ("refund", data.amount(w["refund"], w["payment_token"]) if w["refund"] else "—"),
                  ("description hash", h.hash_link(w["description_hash"])),
                  ("stopped at step", w["stopped_step"] if w["stopped_step"] is not None else "—"),
                  ("reason", reason_text("job", w["reason_code"]) if w["reason_code"] else "—"),
                  ("requested", h.when(w["requested_time"], w["requested_block"])),
                  ("ended", h.block_link(w["ended_block"]))])
    steps = h.table(["step", "status", "operations", "job", "coordinator", "result hash", "opened", "ended"], [
        [s["step"], h.badge(s["status"]), operations_text(s["operation"]), h.entity("job", s["job_id"]),
         h.address(s["coordinator"]), h.hash_link(s["result_hash"]), h.block_link(s["opened_block"]),
         h.block_link(s["ended_block"])] for s in w["steps"]])
    extra = h.Html("")
    if kind == "collaboration":
        _, c = data.reads().collaboration(flow_id)
        if c:
            extra = h.section("Grant uses", h.table(["step", "grant", "asset", "price"], [
                [u["step"], h.entity("grant", u["grantId"]), h.entity("asset", u["assetId"]),
                 data.amount(u["price"], w["payment_token"])] for u in c["grantUses"]])) + \
                h.section("History", trail_table(data, c["history"]))
    else:
        extra = h.section("History", trail_table(data, data.workflow_history(flow_id)), "history")
    return h.Html(facts + h.section("Steps", steps, "steps") + extra)


def batch_page(data: ExplorerData, batch_id: int) -> h.Html | None:
    """An anchored log batch and its batch-root / inclusion verdicts; None if unknown."""
    b = data.batch(batch_id)
    if b is None:
        return None
    verdicts = data.verifier.cached("batch", batch_id)
    facts = h.kv([("producer", h.address(b["producer"], data.did_of(b["producer"]))),
                  ("Merkle root", h.hash_link(b["root"])), ("records", b["count"]),
                  ("period", h.Html(h.when(b["period_start"]) + " → " + h.when(b["period_end"]))),
                  ("published file", h.tag("code", bytes_text(b["batch_ref"]) or b["batch_ref"], class_="wrap")
                   if b["batch_ref"].startswith("0x") else h.tag("code", b["batch_ref"], class_="wrap")),
                  ("anchored", h.Html(h.block_link(b["block"]) + " " + h.tx_link(b["tx"])))])
    return h.Html(facts + verification_section(data, "batch", batch_id, verdicts))


ACTIVITY_ROWS = 50


def activity_page(data: ExplorerData, paging: Paging = NO_PAGING) -> h.Html:
    """The whole audit log, newest first, paged in SQL (``?page=``)."""
    reads = data.reads()
    _, total, _ = reads.audit_page(limit=1)
    number = min(paging.number("page"), max(1, -(-total // ACTIVITY_ROWS)))
    hi = total - (number - 1) * ACTIVITY_ROWS
    lo = max(0, hi - ACTIVITY_ROWS)
    _, _, rows = reads.audit_page(offset=lo, limit=hi - lo)
    nav = pager(paging, "page", number, total, ACTIVITY_ROWS, "log", newest_first=True)
    return h.Html(h.section("Audit log", nav + trail_table(data, list(reversed(rows))) + nav, "log")
                  + export_links("from=0"))
