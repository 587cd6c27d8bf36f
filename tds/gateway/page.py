"""The auditor's page: one static HTML document; its script reads the gateway's JSON API only
(``/assets/{id}/trail`` and ``/audit/verify?asset=id``), so everything it shows can also be
rebuilt with an independent client from the chain's events: each timeline step names its
event (``Contract.Event``), its decoded arguments and its id (``txhash:logIndex``)."""

AUDITOR_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>TDS auditor</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
 h1 { font-size: 1.3rem; } form { margin-bottom: 1rem; }
 #status { margin: .5rem 0; font-weight: 600; }
 .pass { color: #137333; } .fail { color: #c5221f; } .skip { color: #a56300; }
 ol#timeline { list-style: none; padding-left: 0; border-left: 3px solid #ccd; }
 ol#timeline li { margin: 0 0 .8rem 1rem; position: relative; }
 ol#timeline li::before { content: ""; position: absolute; left: -1.45rem; top: .35rem; width: .7rem;
   height: .7rem; border-radius: 50%; background: #88a; }
 .event { color: #445; font-size: .85em; } .when { color: #666; font-size: .85em; } .action { font-weight: 600; } code { font-size: .85em; }
 .checks span { margin-right: .6rem; font-size: .9em; }
 table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #eee; padding: .25rem .4rem;
   text-align: left; vertical-align: top; }
</style>
</head>
<body>
<h1>Trusted Data Space &mdash; auditor</h1>
<p>The <a href="/explorer">explorer</a> shows every asset, grant, job, transaction and participant with links, verdicts and exports.</p>
<form id="f"><label>Asset id <input id="asset" name="asset" type="number" min="1" required></label>
<button type="submit">Audit</button></form>
<div id="status"></div>
<ol id="timeline"></ol>
<h2>Verifications</h2>
<table id="verdicts"><thead><tr><th></th><th>step</th><th>subject</th><th>detail</th></tr></thead>
<tbody></tbody></table>
<script>
const MARK = {pass: "\\u2713", fail: "\\u2717", skip: "\\u2013"};
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text; return e; }
function objText(o) { return Object.entries(o).filter(([, v]) => v !== null)
  .map(([k, v]) => k + " " + (typeof v === "object" ? JSON.stringify(v) : v)).join(", "); }
function relevant(entry, v) {
  const r = v.refs || {}, o = entry.object || {};
  if (r.job !== undefined) return o.job === r.job && ["complete", "fail", "reclaim"].includes(entry.action);
  if (r.batch !== undefined) return o.batch === r.batch && entry.event === "BatchAnchored";
  if (r.hash !== undefined) return o.hash === r.hash ||
      Object.values(entry.detail || {}).includes(r.hash);
  return false;
}
async function getJson(url) {
  const resp = await fetch(url);
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.detail || body.error || resp.statusText);
  return body;
}
async function audit(id) {
  const status = document.getElementById("status");
  const tl = document.getElementById("timeline"), tb = document.querySelector("#verdicts tbody");
  tl.replaceChildren(); tb.replaceChildren(); status.className = ""; status.textContent = "loading\\u2026";
  try {
    const [trail, report] = await Promise.all([getJson("/assets/" + id + "/trail"),
                                               getJson("/audit/verify?asset=" + id)]);
    for (const e of trail.trail) {
      const li = el("li"); li.dataset.id = e.id; li.dataset.action = e.action; li.dataset.result = e.result;
      li.append(el("div", "when", e.time_iso + "  \\u00b7  block " + e.block));
      const line = el("div"); line.append(el("span", "action", e.action + " "),
        el("span", "", objText(e.object) + " by " + (e.actor_did || e.actor)));
      if (e.result !== "ok") line.append(el("span", "fail", " [" + e.result +
        (e.error_code !== null ? " " + e.error_code : "") + "]"));
      const ev = el("div", "event"); ev.dataset.event = e.event;
      ev.append(el("span", "", e.contract + "." + e.event + " "),
                el("code", "args", objText(Object.assign({}, e.object, e.detail))));
      li.append(line, ev, el("code", "uid", e.id));
      const checks = el("div", "checks");
      for (const v of report.verdicts.filter(v => relevant(e, v))) {
        const c = el("span", "check " + v.status, MARK[v.status] + " " + v.step);
        c.dataset.step = v.step; c.dataset.status = v.status; checks.append(c);
      }
      if (checks.childElementCount) li.append(checks);
      tl.append(li);
    }
    for (const v of report.verdicts) {
      const tr = el("tr"); tr.className = "verdict " + v.status;
      tr.dataset.step = v.step; tr.dataset.subject = v.subject; tr.dataset.status = v.status;
      tr.append(el("td", v.status, MARK[v.status]), el("td", "", v.step), el("td", "", v.subject),
                el("td", "", v.detail));
      tb.append(tr);
    }
    document.body.dataset.loaded = id;
    const failed = report.verdicts.filter(v => v.status === "fail").length;
    status.className = report.ok ? "pass" : "fail";
    status.textContent = (report.ok ? "PASS" : "FAIL") + ": " + (report.verdicts.length - failed) + "/" +
      report.verdicts.length + " verifications hold; " + trail.trail.length + " events";
  } catch (err) { status.className = "fail"; status.textContent = "error: " + err.message; }
}
document.getElementById("f").addEventListener("submit", ev => { ev.preventDefault();
  const id = document.getElementById("asset").value; history.replaceState(null, "", "?asset=" + id); audit(id); });
const q = new URLSearchParams(location.search).get("asset");
if (q) { document.getElementById("asset").value = q; audit(q); }
</script>
</body>
</html>
"""
