// A job from the page: the query built in a form (aggregates, filters, group by), every grant term
// and the price checked before the wallet is asked, the parameters sealed to the provider's key
// service in the page, the job followed live, its sealed answer fetched (wallet-proven) and opened
// with the consumer's key file — or downloaded for `tds job result`.
import { keccak256, formatEther, getBytes, toUtf8Bytes } from "./vendor.js";
import { $, $$, el, clear, field, facts, notify, confirmAction, activity, when } from "./ui.js";
import { ChainRefusal, guarded, JOB_STATUS, GRANT_STATUS } from "./chain.js";
import { sealParams, canonical, openKeyFile, openEnvelope } from "./crypto.js";
import { opNames } from "./provider.js";

const BIT = { equality: 1, group_by: 1, join: 1, range: 2, min: 2, max: 2, sum: 4, avg: 4, count: 4 };
const FUNCS = ["sum", "avg", "count", "min", "max"];

function aggRow() {
  return el("div", { class: "row agg" },
    field("Aggregate", { class: "agg-func", options: FUNCS.map((f) => [f, f]) }, "select"),
    field("Column", { class: "agg-col", placeholder: "e.g. salary (empty for count)" }));
}

function filterRow() {
  return el("div", { class: "row filter" },
    field("Filter", { class: "flt-kind", options: [["eq", "equals"], ["range", "between"]] }, "select"),
    field("Column", { class: "flt-col" }), field("Value / low", { class: "flt-lo" }), field("High", { class: "flt-hi" }));
}

const num = (v) => (v.trim() !== "" && !isNaN(Number(v)) ? Number(v) : v);

/** The query of the form (offchain.query.plan.Query.to_dict) and the operation bits it needs. */
export function readQuery(form) {
  const aggregates = $$(".agg", form).map((r) => [$(".agg-func", r).value, $(".agg-col", r).value.trim() || null])
    .filter(([f, c]) => f === "count" || c);
  const where = $$(".filter", form).filter((r) => $(".flt-col", r).value.trim()).map((r) => {
    const col = $(".flt-col", r).value.trim();
    return $(".flt-kind", r).value === "eq" ? ["eq", col, num($(".flt-lo", r).value)]
      : ["range", col, $(".flt-lo", r).value.trim() === "" ? null : num($(".flt-lo", r).value),
        $(".flt-hi", r).value.trim() === "" ? null : num($(".flt-hi", r).value)];
  });
  const group = $(".q-group", form).value.trim() || null;
  const query = { dataset: $(".q-dataset", form).value.trim(), aggregates, where, group_by: group, join: null };
  let ops = 0;
  for (const [f] of aggregates) ops |= BIT[f];
  for (const w of where) ops |= w[0] === "eq" ? BIT.equality : BIT.range;
  if (group) ops |= BIT.group_by;
  return { query, ops };
}

export async function jobForm(ctx, grantId) {
  const form = el("form", { id: "job-form", "aria-label": "Request a job" }, el("h4", {}, "Request a job"),
    field("Dataset", { class: "q-dataset", id: "q-dataset", required: true, placeholder: "dataset name in the manifest" }),
    el("fieldset", { id: "aggs" }, el("legend", {}, "Aggregates"), aggRow(),
      el("button", { type: "button", onclick: () => $("#aggs").insertBefore(aggRow(), $("#aggs .add")), class: "add" }, "Add aggregate")),
    el("fieldset", { id: "filters" }, el("legend", {}, "Filters"), filterRow(),
      el("button", { type: "button", onclick: () => $("#filters").insertBefore(filterRow(), $("#filters .add")), class: "add" }, "Add filter")),
    field("Group by (column)", { class: "q-group", id: "q-group" }),
    field("Deadline (minutes)", { id: "q-deadline", type: "number", min: 5, value: 60, required: true }),
    el("button", { type: "submit", id: "request-job" }, "Check and request"));
  form.addEventListener("submit", (e) => { e.preventDefault(); guarded(() => requestJob(ctx, grantId, form)); });
  return form;
}

/** Every check the contract will make, done first so the wallet is asked only for a job that can run. */
async function checkGrant(ctx, grantId, ops) {
  const g = await ctx.chain.view("Authorizations", "grantOf", [grantId]);
  const now = await ctx.chain.now();
  const me = ctx.wallet.account.toLowerCase();
  ctx.chain.checkChain();
  if (g.consumer.toLowerCase() !== me) throw new ChainRefusal("NotGrantConsumer", [grantId, ctx.wallet.account]);
  if (Number(g.status) !== 1) throw new ChainRefusal("GrantNotActive", [grantId, g.status]);
  if (Number(g.frozenBy)) throw new ChainRefusal("GrantIsFrozen", [grantId, g.frozenBy]);
  if (Number(g.notBefore) > now) throw new ChainRefusal("GrantNotYetValid", [grantId, g.notBefore, now]);
  if (Number(g.expiry) && Number(g.expiry) < now) throw new ChainRefusal("GrantExpired", [grantId, g.expiry, now]);
  if (Number(g.maxUses) && Number(g.uses) >= Number(g.maxUses)) {
    throw new ChainRefusal("UsesExhausted", [grantId, g.uses, g.maxUses]);
  }
  if (ops & ~Number(g.operations)) throw new ChainRefusal("OperationNotAllowed", [grantId, ops, g.operations]);
  const price = BigInt(g.pricePerUse), token = g.paymentToken.toLowerCase();
  const credits = ctx.chain.address.Credits.toLowerCase();
  let allowance = 0n;
  if (token === ZERO) {
    const balance = await ctx.chain.balance(ctx.wallet.account);
    if (balance < price) throw new ChainRefusal("InsufficientFunds", [price, balance]);
  } else if (token === credits) {
    const balance = BigInt(await ctx.chain.view("Credits", "balanceOf", [ctx.wallet.account]));
    if (balance < price) throw new ChainRefusal("InsufficientCredits", [price, balance]);
    allowance = BigInt(await ctx.chain.view("Credits", "allowance", [ctx.wallet.account, ctx.chain.address.Jobs]));
  } else {
    throw new ChainRefusal("TokenPaymentUnsupported", [g.paymentToken]);
  }
  return { g, now, price, native: token === ZERO, allowance };
}

const ZERO = "0x0000000000000000000000000000000000000000";
const money = (amount, native) => `${formatEther(amount)} ${native ? "(native coin)" : "credits"}`;

async function requestJob(ctx, grantId, form) {
  const { query, ops } = readQuery(form);
  if (!query.dataset || !query.aggregates.length) {
    throw new ChainRefusal("QueryIncomplete", [], "name the dataset and at least one aggregate");
  }
  if (ctx.config.cryptoProfile === "sm") {  // WebCrypto has no SM2: never seal an X25519 block here
    throw new ChainRefusal("UnsupportedInBrowser", [], "this deployment uses the sm cryptography profile: job "
      + "parameters are sealed to the provider's SM2 key, which the browser cannot do; request the job with "
      + "'tds job request' instead");
  }
  const { g, now, price, native, allowance } = await checkGrant(ctx, grantId, ops);
  const approve = !native && allowance < price;
  const holder = (await ctx.chain.view("AssetRegistry", "termsOf", [g.assetId]))[0];
  const ident = await ctx.chain.identity(holder);
  if (ident === null) {
    throw new ChainRefusal("NotBound", [holder], `the asset's holder ${holder} has no identity bound on chain`);
  }
  const params = await sealParams(query, [getBytes(ident.keyAgreementKey)]);
  const text = canonical(params);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const paramsHash = "0x" + [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  const deadline = now + Number($("#q-deadline").value) * 60;
  const value = native ? price : 0n;
  const summary = [["Grant", String(grantId)], ["Asset", String(g.assetId)], ["Query", canonical(query)],
    ["Operations", opNames(ops)], ["Price", money(price, native)], ["Deadline", when(deadline)],
    ["Uses left after this", Number(g.maxUses) ? String(Number(g.maxUses) - Number(g.uses) - 1) : "unlimited"],
    ["Parameters hash (sealed to the provider)", paramsHash]];
  if (approve) summary.push(["Credits allowance first", `Jobs ${ctx.chain.address.Jobs} may take ${money(price, false)}`]);
  const tx = { from: ctx.wallet.account, to: ctx.chain.address.Jobs, value: "0x" + value.toString(16),
    data: ctx.chain.iface.Jobs.encodeFunctionData("requestJob", [grantId, ops, paramsHash, deadline]) };
  if (!approve) await ctx.chain.simulate(tx);  // with an allowance still to give, it is simulated after it
  if (!(await confirmAction("Request and pay this job?", summary, (approve ? "Your wallet first allows the Jobs "
    + "contract to take the price in credits; then it" : "First your wallet") + " signs a note to store the sealed "
    + "parameters, then it sends the paid request."))) return;
  if (approve) {
    await ctx.chain.transact({ contract: "Credits", fn: "approve", args: [ctx.chain.address.Jobs, price],
      title: `Allow Jobs to take ${money(price, false)}` });
    await ctx.chain.simulate(tx);
  }
  const stored = activity("Store sealed job parameters");
  const proof = await ctx.proof("store-params", paramsHash);
  const res = await fetch("/console/params", { method: "POST", headers: { "Content-Type": "application/json",
    [ctx.config.proofHeader]: proof }, body: JSON.stringify({ params, grantId: Number(grantId), operation: ops, deadline,
    value: value.toString() }) });
  const body = await res.json();
  if (!res.ok) { stored.set("refused", body.detail); throw new ChainRefusal(body.error, [], body.detail); }
  stored.set("stored", body.paramsCid);
  const receipt = await ctx.chain.transact({ contract: "Jobs", fn: "requestJob", args: [grantId, ops, paramsHash, deadline],
    value, title: `Request a job on grant ${grantId}` });
  const jobId = receipt.events.find((x) => x.name === "JobRequested").args.jobId;
  notify(`Job ${jobId} requested and paid`, "ok", "JobRequested");
  follow(ctx, jobId);
}

/** The account's jobs (from the gateway's index, else JobRequested through the wallet): status,
 *  and follow / open or reclaim. */
export async function renderJobs(ctx) {
  const root = clear($("#my-jobs"));
  const table = el("table", { id: "jobs-table" }, el("caption", {}, "Your jobs"),
    el("thead", {}, el("tr", {}, ["Job", "Grant", "Paid", "Deadline", "Status", "Actions"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody"));
  root.append(table);
  const now = await ctx.chain.now();
  for (const j of await ctx.reads.jobsOf(ctx.wallet.account)) {
    const id = j.jobId;
    const status = j.status || JOB_STATUS[Number((await ctx.chain.view("Jobs", "jobOf", [id]))[0].status)];
    const native = j.paymentToken.toLowerCase() === ZERO;
    const late = ["requested", "accepted"].includes(status) && Number(j.deadline) < now;
    $("tbody", table).append(el("tr", { "data-job": id, "data-status": status }, el("td", {}, String(id)),
      el("td", {}, String(j.grantId)), el("td", {}, money(j.amount, native)), el("td", {}, when(j.deadline)),
      el("td", {}, status), el("td", {},
        el("button", { type: "button", class: "follow", onclick: () => follow(ctx, id) }, `Follow job ${id}`),
        late ? el("button", { type: "button", class: "reclaim", onclick: () => guarded(async () => {
          const r = await ctx.chain.transact({ contract: "Jobs", fn: "reclaim", args: [id], title: `Reclaim job ${id}`,
            confirm: () => confirmAction("Take back the payment of this unfinished job?", [["Job", String(id)],
              ["Amount", money(j.amount, native)]]) });
          if (r) { notify(`Job ${id} reclaimed`, "ok", "JobReclaimed"); await renderJobs(ctx); }
        }) }, `Reclaim job ${id}`) : "")));
  }
}

/** Follow a job live: its status from the chain every second, then its answer. */
export function follow(ctx, jobId) {
  const shown = $(`section.job[data-job="${jobId}"]`);
  if (shown) { shown.focus(); return; }
  const box = el("section", { class: "job", "data-job": jobId, tabindex: "-1", "aria-labelledby": `job-title-${jobId}` },
    el("h4", { id: `job-title-${jobId}` }, `Job ${jobId}`),
    el("p", { role: "status", "aria-live": "polite" }, "Status: ", el("strong", { class: "job-status" }, "requested")),
    el("div", { class: "job-result" }));
  $("#jobs").prepend(box);
  const tick = async () => {
    const status = await ctx.reads.jobStatus(jobId, JOB_STATUS);
    if ($(".job-status", box).textContent !== status) $(".job-status", box).textContent = status;
    box.dataset.status = status;
    if (status === "completed" || status === "released") return resultPanel(ctx, jobId, box);
    if (["failed", "reclaimed", "cancelled"].includes(status)) return;
    setTimeout(() => guarded(tick), 1000);
  };
  guarded(tick);
}

function resultPanel(ctx, jobId, box) {
  $(".job-result", box).append(sealedForm(ctx, {
    label: `the answer of job ${jobId}`, openText: "Fetch and open the answer", cls: "open-result",
    fetch: () => fetchSealed(ctx, jobId), download: () => download(ctx, jobId),
    open: async (sealed, keys) => {
      const payload = JSON.parse(await openEnvelope(sealed, keys, { purpose: "tds/job-result",
        senderCheck: (did) => boundTo(ctx, did, grantProvider(ctx, jobId)) }));
      if (payload.job !== undefined && Number(payload.job) !== Number(jobId)) {
        throw new ChainRefusal("WrongJobAnswer", [], `the answer was released for job ${payload.job}`);
      }
      return payload;
    },
    done: `Answer of job ${jobId} opened in the page` }));
}

/** A form that opens a sealed answer in the page with the consumer's key file and password (the
 *  key never leaves the page), or downloads it. */
export function sealedForm(ctx, { label, openText, cls, fetch: fetchIt, open, download: save, done }) {
  const out = el("div", { class: "sealed-out" });
  const keyFile = field("Key file (did-keys.json)", { type: "file", accept: ".json,application/json", class: "key-file" });
  const pass = field("Password of the key file", { type: "password", class: "key-password", autocomplete: "current-password" });
  const user = el("input", { type: "text", autocomplete: "username", hidden: true, value: ctx.wallet.account,
    "aria-label": "Account" });  // lets password managers file the key-file password under the account
  const form = el("form", { class: cls, "aria-label": `Open ${label}` }, user, keyFile, pass,
    el("button", { type: "submit" }, openText),
    el("button", { type: "button", class: "download", onclick: () => guarded(save) }, "Download sealed answer"), out);
  form.addEventListener("submit", (e) => { e.preventDefault(); guarded(async () => {
    const file = $("input.key-file", form).files[0];
    if (!file) throw new ChainRefusal("NoKeyFile", [], "choose your did-keys.json first");
    const keys = await openKeyFile(JSON.parse(await file.text()), $("input.key-password", form).value);
    const payload = await open(await fetchIt(), keys);
    clear(out).append(el("pre", { class: "answer", tabindex: "0", "aria-label": label }, JSON.stringify(payload, null, 2)));
    notify(done, "ok", "AnswerOpened");
  }); });
  return form;
}

/** The account that issued the job's grant (the index's grant, else its GrantIssued event). */
async function grantProvider(ctx, jobId) {
  const grantId = BigInt(jobId) >> 32n;
  if (ctx.reads.indexed) return (await ctx.reads.json(`/grants/${grantId}`)).provider;
  const [issued] = await ctx.chain.events("Authorizations", "GrantIssued", [grantId]);
  return issued.args.provider;
}

/** True if `did` is the DID of `account`'s current binding on chain (its IdentityBound, checked
 *  against the registry's commitment; the caller trusts the account, not the DID alone). */
export async function boundTo(ctx, did, account) {
  const ident = await ctx.chain.identity(await account);
  return ident !== null && ident.didHash === keccak256(toUtf8Bytes(did));
}

/** Fetch a wallet-proven sealed document and check it against the hash the chain recorded. */
export async function provenFetch(ctx, url, action, subject) {
  const proof = await ctx.proof(action, subject);
  const res = await fetch(url, { headers: { [ctx.config.proofHeader]: proof } });
  if (!res.ok) { const b = await res.json(); throw new ChainRefusal(b.error, [], b.detail); }
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (keccak256(bytes) !== res.headers.get("X-TDS-Result-Hash")) {
    throw new ChainRefusal("ResultHashMismatch", [], "the answer does not hash to the chain's resultHash");
  }
  return bytes;
}

export function saveBytes(bytes, name) {
  const a = el("a", { href: URL.createObjectURL(new Blob([bytes], { type: "application/json" })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

async function fetchSealed(ctx, jobId) {
  return provenFetch(ctx, `/console/jobs/${jobId}/result`, "read-result", `job ${jobId}`);
}

async function download(ctx, jobId) {
  saveBytes(await fetchSealed(ctx, jobId), `job-${jobId}.sealed.json`);
  notify(`Sealed answer of job ${jobId} saved: open it with 'tds job result ${jobId} --identity NAME --sealed job-${jobId}.sealed.json'`, "ok");
}

export { GRANT_STATUS, facts };
