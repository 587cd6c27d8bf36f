// TDS explorer: local times, copy buttons, "/" focuses the search, verdicts filled in after the page
// (each slot links to them for a browser without script). Pages work without it.
(function () {
  "use strict";
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const fmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
  for (const t of document.querySelectorAll("time[data-ts]")) {
    const d = new Date(Number(t.dataset.ts) * 1000);
    t.textContent = fmt.format(d);
    t.title = t.getAttribute("datetime") + " (UTC)";
  }
  const tzEl = document.getElementById("tz");
  if (tzEl) tzEl.textContent = tz;
  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button.copy");
    if (!b) return;
    const text = b.dataset.copy;
    try { await navigator.clipboard.writeText(text); } catch (e) {
      const ta = document.createElement("textarea"); ta.value = text; document.body.append(ta); ta.select();
      try { document.execCommand("copy"); } catch (e2) { /* nothing more to try */ } ta.remove();
    }
    b.classList.add("done"); setTimeout(() => b.classList.remove("done"), 1200);
  });
  document.addEventListener("keydown", (ev) => {
    const q = document.getElementById("q");
    if (ev.key === "/" && q && document.activeElement !== q && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {
      ev.preventDefault(); q.focus(); q.select();
    }
  });
  // verdicts come in a second request: the page is shown from the index at once
  async function fill(slot) {
    let html;
    try {
      const r = await fetch(slot.dataset.src, { credentials: "same-origin" });
      html = r.ok ? await r.text() : `<p class="fail" role="alert">verification unavailable (HTTP ${r.status})</p>`;
    } catch (e) { html = `<p class="fail" role="alert">verification unavailable (${String(e)})</p>`; }
    slot.innerHTML = html;
    slot.removeAttribute("aria-busy");
    for (const v of slot.querySelectorAll("tr[data-ref]")) {
      for (const marks of document.querySelectorAll(`table.trail tr[data-ref="${v.dataset.ref}"] .marks`)) {
        const b = document.createElement("span");
        b.className = "badge " + v.dataset.status;
        b.textContent = v.dataset.step + " " + v.dataset.status;
        marks.append(b, " ");
      }
    }
  }
  Promise.all([...document.querySelectorAll(".verdicts-slot[data-src]")].map(fill))
    .finally(() => { document.body.dataset.ready = "1"; });
})();
