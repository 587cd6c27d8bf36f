// The consumer's side: the catalog (search by classification, template, provider, rating), an
// asset's terms and quality report, applications, submitting a provider's signed offer, the
// account's grants (rate, close with a destruction proof) and, through job.js, jobs.
import { keccak256, toUtf8Bytes, getAddress, formatEther } from "./vendor.js";
import { $, el, clear, field, facts, notify, confirmAction, short, when } from "./ui.js";
import { guarded, GRANT_STATUS, FREEZE } from "./chain.js";
import { opNames, opsFromForm, opsFieldset, currency } from "./provider.js";
import { jobForm } from "./job.js";

const CLASSES = ["public", "internal", "sensitive", "confidential"];
const ZERO = "0x0000000000000000000000000000000000000000";

export async function renderCatalog(ctx) {
  const root = clear($("#catalog"));
  const assets = await ctx.reads.catalog();
  const form = el("form", { id: "search", class: "row", role: "search" },
    field("Classification", { id: "q-class", name: "classification", options: [["", "any"], ...CLASSES.map((c) => [c, c])] }, "select"),
    field("Template", { id: "q-template", type: "number", min: 0, name: "template" }),
    field("Provider (address or DID)", { id: "q-provider", name: "provider" }),
    field("Minimum rating", { id: "q-rating", type: "number", min: 0, max: 5, step: "0.5", name: "rating" }),
    el("button", { type: "submit" }, "Search"));
  const table = el("table", { id: "assets" }, el("caption", {}, "Registered data assets"),
    el("thead", {}, el("tr", {}, ["Asset", "Classification", "Template", "Provider", "State", "Rating", "Actions"].map(
      (h) => el("th", { scope: "col" }, h)))), el("tbody"));
  root.append(form, table, el("div", { id: "asset-detail", tabindex: "-1", role: "region", "aria-label": "Asset details" }));
  const show = () => {
    const cls = $("#q-class").value, tpl = $("#q-template").value, prov = $("#q-provider").value.trim().toLowerCase();
    const min = Number($("#q-rating").value || 0);
    const body = clear($("tbody", table));
    for (const a of assets) {
      if (cls && a.classification.toLowerCase() !== cls) continue;
      if (tpl !== "" && a.templateId !== Number(tpl)) continue;
      if (prov && !(a.provider.toLowerCase().includes(prov) || (a.provider_did || "").toLowerCase().includes(prov))) continue;
      if (min && (a.rating.count === 0 || a.rating.mean < min)) continue;
      body.append(el("tr", { "data-asset": a.assetId },
        el("td", {}, String(a.assetId)), el("td", {}, a.classification), el("td", {}, String(a.templateId)),
        el("td", { title: a.provider }, a.provider_did || short(a.provider)), el("td", {}, a.state),
        el("td", {}, a.rating.count ? `${a.rating.mean.toFixed(2)} (${a.rating.count})` : "not rated"),
        el("td", {}, el("button", { type: "button", class: "open-asset", "data-asset": a.assetId,
          onclick: () => guarded(() => renderAsset(ctx, a)) }, `Details of asset ${a.assetId}`))));
    }
    table.dataset.shown = body.children.length;
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); show(); });
  show();
}

async function renderAsset(ctx, a) {
  if (!ctx.chain) { notify("Connect a wallet to read the asset's terms from the chain", "info", "NotConnected"); return; }
  const box = clear($("#asset-detail"));
  const terms = await ctx.chain.view("AssetRegistry", "termsOf", [a.assetId]);
  const pub = await ctx.chain.events("CertificateTemplates", "TemplatePublished", [a.templateId]);
  const tpl = pub.length ? pub[0].args : null;
  const split = tpl ? [...tpl.splitBps].map((b) => `${Number(b) / 100}%`).join(" / ") : "unknown";
  box.append(el("h3", {}, `Asset ${a.assetId}`), facts([
    ["Holder", a.holder_did ? `${a.holder_did} (${a.holder})` : a.holder], ["State", a.state],
    ["Classification", a.classification], ["Template", `${a.templateId}${tpl ? " — " + tpl.name : ""}`],
    ["Terms (template document hash)", tpl ? tpl.termsHash : "unknown"],
    ["Revenue split provider / algorithm / compute / operator", split],
    ["Allowed operations", opNames(Number(terms[2]))], ["Quality report hash (sha-256, on chain)", a.qualityReportHash],
    ["Manifest hash", a.manifestHash], ["Registered", `${a.registered.time} (block ${a.registered.block})`],
    ["Rating", a.rating.count ? `${a.rating.mean.toFixed(2)} from ${a.rating.count} ratings` : "not rated"],
    ["Grants / jobs", `${a.grants.length} / ${a.jobs.length}`]], { id: "asset-facts" }));
  box.append(await qualityReport(a));
  const form = el("form", { id: "apply-form", "aria-label": "Apply for a grant" },
    el("h4", {}, "Apply for a grant"),
    field("Purpose", { id: "apply-purpose", required: true, placeholder: "what the data is used for" }, "textarea"),
    opsFieldset("apply-ops", Number(terms[2])),
    field("Kind", { id: "apply-kind", options: [["0", "per task (a number of uses)"], ["1", "per period"]] }, "select"),
    field("Valid for (days)", { id: "apply-days", type: "number", min: 1, value: 30, required: true }),
    field("Uses", { id: "apply-uses", type: "number", min: 0, value: 5, required: true }),
    el("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (e) => { e.preventDefault(); guarded(() => apply(ctx, a.assetId)); });
  box.append(form);
  box.focus();
}

/** The asset's quality report from the content store, checked against its hash on chain (by the
 *  gateway, and again here): shown as a table, or why it cannot be. */
async function qualityReport(a) {
  const box = el("section", { id: "quality", "aria-labelledby": "quality-title" }, el("h4", { id: "quality-title" }, "Quality report"));
  const res = await fetch(`/console/assets/${a.assetId}/quality`);
  if (!res.ok) {
    const b = await res.json().catch(() => ({}));
    const what = b.error === "quality-report-mismatch" ? "QualityReportMismatch: the stored report is NOT the one "
      + "the provider registered on chain; do not rely on it. " : "QualityReportUnavailable: the report cannot be read now. ";
    box.dataset.state = b.error === "quality-report-mismatch" ? "mismatch" : "unavailable";
    box.append(el("p", { class: "warning", role: "alert" }, what + (b.detail || "")));
    return box;
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = "0x" + [...digest].map((x) => x.toString(16).padStart(2, "0")).join("");
  const want = (res.headers.get("X-TDS-Quality-Hash") || "").toLowerCase();
  if (want !== a.qualityReportHash.toLowerCase() || hex !== want) {
    box.dataset.state = "mismatch";
    box.append(el("p", { class: "warning", role: "alert" }, `QualityReportMismatch: the report hashes to ${hex}, the `
      + `chain records ${a.qualityReportHash}; do not rely on it.`));
    return box;
  }
  const report = JSON.parse(new TextDecoder().decode(bytes));
  box.dataset.state = "verified";
  const rows = Object.entries(report).filter(([, v]) => typeof v !== "object" || v === null)
    .map(([k, v]) => [k, String(v)]);
  box.append(el("p", { class: "ok" }, `Verified: it hashes to ${hex}, as recorded on chain (CID ${res.headers.get("X-TDS-Quality-Cid")}).`),
    facts(rows, { id: "quality-facts" }));
  for (const [k, v] of Object.entries(report)) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      box.append(el("h5", {}, k), facts(Object.entries(v).map(([kk, vv]) => [kk, typeof vv === "object" ? JSON.stringify(vv) : String(vv)])));
    }
  }
  return box;
}

async function apply(ctx, assetId) {
  const purpose = $("#apply-purpose").value.trim();
  const ops = opsFromForm("apply-ops"), kind = Number($("#apply-kind").value);
  const expiry = (await ctx.chain.now()) + Number($("#apply-days").value) * 86400;
  const uses = Number($("#apply-uses").value);
  const args = [assetId, keccak256(toUtf8Bytes(purpose)), ops, kind, 0, expiry, uses];
  const receipt = await ctx.chain.transact({ contract: "Authorizations", fn: "applyFor", args,
    title: `Apply for asset ${assetId}`, confirm: () => confirmAction("Send this application?", [
      ["Asset", String(assetId)], ["Purpose", purpose], ["Purpose hash (on chain)", args[1]],
      ["Operations", opNames(ops)], ["Uses", String(uses)], ["Valid until", when(expiry)], ["From", ctx.wallet.account]],
    "The purpose text stays with you; the chain records its hash.") });
  if (!receipt) return;
  const ev = receipt.events.find((x) => x.name === "ApplicationSubmitted");
  notify(`Application ${ev.args.applicationId} submitted for asset ${assetId}`, "ok", "ApplicationSubmitted");
}

export function renderOfferSubmit(ctx) {
  const root = clear($("#offer-submit"));
  const form = el("form", { id: "submit-offer-form", "aria-label": "Submit a signed offer" },
    field("Signed offer (JSON from the provider)", { id: "offer-json", rows: 6, required: true }, "textarea"),
    el("button", { type: "submit" }, "Submit offer"));
  form.addEventListener("submit", (e) => { e.preventDefault(); guarded(() => submitOffer(ctx)); });
  root.append(form);
}

async function submitOffer(ctx) {
  let offer;
  try { offer = JSON.parse($("#offer-json").value); } catch (_) {
    throw Object.assign(new Error("MalformedOffer: the offer is not JSON"), { errorName: "MalformedOffer" });
  }
  const t = offer.terms;
  const tuple = [t.assetId, getAddress(t.consumer), t.purposeHash, t.operations, t.kind, t.notBefore, t.expiry,
    t.maxUses, getAddress(t.paymentToken), BigInt(t.pricePerUse), getAddress(t.algorithmProvider)];
  const receipt = await ctx.chain.transact({ contract: "Authorizations", fn: "grantBySignature",
    args: [tuple, BigInt(offer.nonce), BigInt(offer.deadline), offer.signature], title: `Submit offer for asset ${t.assetId}`,
    confirm: () => confirmAction("Accept this signed offer?", [["Asset", String(t.assetId)], ["Consumer", t.consumer],
      ["Operations", opNames(t.operations)], ["Uses", String(t.maxUses)], ["Valid until", when(t.expiry)],
      ["Price per use", t.paymentToken.toLowerCase() === ZERO ? `${formatEther(BigInt(t.pricePerUse))} (native coin)`
        : `${formatEther(BigInt(t.pricePerUse))} of token ${t.paymentToken}`], ["Offer expires", when(offer.deadline)]],
    "You send the provider's signed offer; you pay the gas.") });
  if (!receipt) return;
  const ev = receipt.events.find((x) => x.name === "GrantIssued");
  notify(`Grant ${ev.args.grantId} issued from the signed offer`, "ok", "GrantIssued");
  await renderGrants(ctx);
}

export async function renderGrants(ctx) {
  const root = clear($("#grants"));
  const issued = await ctx.reads.grantsOf(ctx.wallet.account);
  const table = el("table", { id: "my-grants" }, el("caption", {}, "Your grants (as consumer)"),
    el("thead", {}, el("tr", {}, ["Grant", "Asset", "Status", "Uses", "Price", "Valid until", "Actions"].map(
      (h) => el("th", { scope: "col" }, h)))), el("tbody"));
  root.append(table, el("div", { id: "grant-detail", tabindex: "-1", role: "region", "aria-label": "Grant" }));
  for (const args of issued) {
    const g = args.summary ? fromIndex(args.summary) : await ctx.chain.view("Authorizations", "grantOf", [args.grantId]);
    const state = args.summary ? args.summary.status : GRANT_STATUS[Number(g.status)];
    const status = state + (args.summary ? (args.summary.frozen ? " (frozen)" : "")
      : (Number(g.frozenBy) ? ` (frozen by ${FREEZE[Number(g.frozenBy)]})` : ""));
    $("tbody", table).append(el("tr", { "data-grant": args.grantId, "data-status": state },
      el("td", {}, String(args.grantId)), el("td", {}, String(g.assetId)), el("td", {}, status),
      el("td", {}, `${g.uses} / ${Number(g.maxUses) || "∞"}`), el("td", {}, currency(ctx,
        g.paymentToken.toLowerCase() === ctx.chain.address.Credits.toLowerCase() ? "credits" : "native").show(g.pricePerUse)),
      el("td", {}, when(g.expiry)),
      el("td", {}, el("button", { type: "button", class: "use-grant", "data-grant": args.grantId,
        onclick: () => guarded(() => grantPanel(ctx, args.grantId)) }, `Use grant ${args.grantId}`))));
  }
}

/** The grant's row values from its index summary (GrantSummary: state, uses, issued terms). */
function fromIndex(summary) {
  const t = summary.terms || {};
  return { assetId: summary.assetId, uses: summary.uses, maxUses: summary.maxUses, paymentToken: t.paymentToken || ZERO,
    pricePerUse: BigInt(t.pricePerUse || 0), expiry: t.expiry || 0 };
}

async function grantPanel(ctx, grantId) {
  const box = clear($("#grant-detail"));
  box.append(el("h3", {}, `Grant ${grantId}`));
  box.append(await jobForm(ctx, grantId));
  const rate = el("form", { id: "rate-form", class: "row", "aria-label": "Rate the asset" },
    field("Rating (1–5)", { id: "rate-score", type: "number", min: 1, max: 5, value: 5, required: true }),
    el("button", { type: "submit" }, "Rate"));
  rate.addEventListener("submit", (e) => { e.preventDefault(); guarded(async () => {
    const score = Number($("#rate-score").value);
    const r = await ctx.chain.transact({ contract: "QualityRatings", fn: "rate", args: [grantId, score],
      title: `Rate grant ${grantId}`, confirm: () => confirmAction("Rate the asset?", [["Grant", String(grantId)],
        ["Score", String(score)]]) });
    if (r) notify(`Rated ${score} through grant ${grantId}`, "ok", "AssetRated");
  }); });
  const close = el("form", { id: "close-form", "aria-label": "Close the grant" },
    field("Destruction statement (how the answers were destroyed)", { id: "close-proof", required: true }, "textarea"),
    el("button", { type: "submit" }, "Close grant"));
  close.addEventListener("submit", (e) => { e.preventDefault(); guarded(async () => {
    const proof = $("#close-proof").value, hash = keccak256(toUtf8Bytes(proof));
    const r = await ctx.chain.transact({ contract: "Authorizations", fn: "close", args: [grantId, hash],
      title: `Close grant ${grantId}`, confirm: () => confirmAction("Close this grant for good?", [
        ["Grant", String(grantId)], ["Destruction proof hash", hash]], "Keep the statement: the chain holds its hash.") });
    if (r) { notify(`Grant ${grantId} closed`, "ok", "GrantClosed"); await renderGrants(ctx); }
  }); });
  box.append(el("h4", {}, "Rate and close"), rate, close);
  box.focus();
}
