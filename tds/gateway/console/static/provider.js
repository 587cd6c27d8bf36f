// The provider's side: applications to approve or reject, offers composed and signed with
// eth_signTypedData_v4 (what they expose shown first), grants revoked or frozen, earnings withdrawn.
import { keccak256, toUtf8Bytes, formatEther, parseEther, getAddress, toBeHex, hexlify } from "./vendor.js";
import { $, el, clear, field, notify, confirmAction, short, when } from "./ui.js";
import { guarded, ChainRefusal, GRANT_STATUS, APPLICATION_STATUS, FREEZE } from "./chain.js";

const OPS = [[1, "DET_EQ", "equality, group by, join"], [2, "OPE_RANGE", "ranges, min, max"], [4, "HOM_AGG", "sum, avg, count"],
  [8, "MPC", "multi-party computation"], [16, "FL", "federated learning"], [32, "DOWNLOAD", "download"], [64, "PSI", "set intersection"]];
const ZERO = "0x0000000000000000000000000000000000000000";

export function opNames(mask) {
  return OPS.filter(([b]) => Number(mask) & b).map(([, n]) => n).join(" | ") || "none";
}

export function opsFieldset(id, allowed = 127, checked = 4) {
  return el("fieldset", { id, class: "ops" }, el("legend", {}, "Operations"), OPS.filter(([b]) => allowed & b).map(
    ([b, n, what]) => el("label", { class: "check" }, el("input", { type: "checkbox", value: b, checked: (checked & b) !== 0 }),
      ` ${n} (${what})`)));
}

export function opsFromForm(id) {
  return [...document.querySelectorAll(`#${id} input:checked`)].reduce((m, i) => m | Number(i.value), 0);
}

export async function renderProvider(ctx) {
  const mine = (ctx.assets || []).filter((a) => a.holder.toLowerCase() === ctx.wallet.account.toLowerCase());
  ctx.myAssets = mine;
  await renderApplications(ctx, mine);
  renderOfferComposer(ctx, mine);
  await renderHeldGrants(ctx, mine);
  await renderEarnings(ctx);
}

async function renderApplications(ctx, mine) {
  const root = clear($("#applications"));
  const table = el("table", { id: "apps" }, el("caption", {}, "Applications for your assets"),
    el("thead", {}, el("tr", {}, ["Application", "Asset", "Consumer", "Operations", "Uses", "Until", "Status", "Actions"].map(
      (h) => el("th", { scope: "col" }, h)))), el("tbody"));
  root.append(table);
  for (const a of mine) {
    for (const args of await ctx.reads.applicationsFor(a.assetId)) {
      const app = await ctx.chain.view("Authorizations", "applicationOf", [args.applicationId]);
      const status = APPLICATION_STATUS[Number(app.status)];
      const id = args.applicationId;
      const price = el("input", { type: "text", inputmode: "decimal", value: "0.001", class: "price", id: `price-${id}`,
        "aria-label": `Price per use of application ${id} (native coin)` });
      const paid = el("select", { class: "currency", "aria-label": `Currency of application ${id}` },
        el("option", { value: "native" }, "native coin"), el("option", { value: "credits" }, "credits"));
      const actions = status !== "pending" ? "" : el("span", {}, price, paid,
        el("button", { type: "button", class: "approve",
          onclick: () => guarded(() => decide(ctx, id, true, price.value, paid.value)) }, `Approve ${id}`),
        el("button", { type: "button", class: "reject", onclick: () => guarded(() => decide(ctx, id, false)) }, `Reject ${id}`));
      $("tbody", table).append(el("tr", { "data-application": id, "data-status": status },
        el("td", {}, String(id)), el("td", {}, String(a.assetId)), el("td", { title: args.consumer }, short(args.consumer)),
        el("td", {}, opNames(args.operations)), el("td", {}, String(args.maxUses)), el("td", {}, when(args.expiry)),
        el("td", {}, status), el("td", {}, actions)));
    }
  }
}

/** The payment token of a currency choice, and how an amount in it reads. */
export function currency(ctx, choice) {
  const token = choice === "credits" ? ctx.chain.address.Credits : ZERO;
  return { token, show: (amount) => `${formatEther(amount)} ${token === ZERO ? "(native coin)" : "credits"}` };
}

async function decide(ctx, id, approve, priceText = "0", paidIn = "native") {
  const price = parseEther(priceText.trim() || "0");
  const { token, show } = currency(ctx, paidIn);
  const receipt = approve
    ? await ctx.chain.transact({ contract: "Authorizations", fn: "approve", args: [id, token, price, ZERO],
      title: `Approve application ${id}`, confirm: () => confirmAction("Approve this application?", [
        ["Application", String(id)], ["Price per use", show(price)]]) })
    : await ctx.chain.transact({ contract: "Authorizations", fn: "reject", args: [id, keccak256(toUtf8Bytes("rejected"))],
      title: `Reject application ${id}`, confirm: () => confirmAction("Reject this application?", [["Application", String(id)]]) });
  if (!receipt) return;
  const ev = receipt.events.find((x) => x.name === "ApplicationApproved" || x.name === "ApplicationRejected");
  notify(approve ? `Application ${id} approved: grant ${ev.args.grantId}` : `Application ${id} rejected`, "ok", ev.name);
  await renderApplications(ctx, ctx.myAssets);
}

function renderOfferComposer(ctx, mine) {
  const root = clear($("#offer-compose"));
  const form = el("form", { id: "offer-form", "aria-label": "Compose a signed offer" },
    field("Asset", { id: "offer-asset", options: mine.map((a) => [a.assetId, `asset ${a.assetId} (${a.classification})`]) }, "select"),
    field("Consumer address", { id: "offer-consumer", required: true, placeholder: "0x…" }),
    field("Purpose", { id: "offer-purpose", required: true }, "textarea"),
    opsFieldset("offer-ops"),
    field("Uses", { id: "offer-uses", type: "number", min: 1, value: 3, required: true }),
    field("Valid for (days)", { id: "offer-days", type: "number", min: 1, value: 30, required: true }),
    field("Price per use", { id: "offer-price", value: "0.001", required: true }),
    field("Paid in", { id: "offer-token", options: [["native", "native coin"], ["credits", "credits (ERC-20)"]] }, "select"),
    field("Offer open for (hours)", { id: "offer-hours", type: "number", min: 1, value: 24, required: true }),
    el("button", { type: "submit" }, "Review and sign"),
    field("Signed offer (give it to the consumer)", { id: "offer-out", rows: 6, readonly: true }, "textarea"));
  form.addEventListener("submit", (e) => { e.preventDefault(); guarded(() => signOffer(ctx)); });
  root.append(form);
}

async function signOffer(ctx) {
  ctx.chain.checkChain();
  const assetId = Number($("#offer-asset").value);
  if (!assetId) throw new ChainRefusal("NoAsset", [], "you hold no asset to offer");
  let consumer;
  try { consumer = getAddress($("#offer-consumer").value.trim()); } catch (_) {
    throw new ChainRefusal("InvalidAddress", [], "the consumer address is not a valid address");
  }
  const now = await ctx.chain.now();
  const purpose = $("#offer-purpose").value.trim();
  const { token, show } = currency(ctx, $("#offer-token").value);
  const terms = { assetId, consumer, purposeHash: keccak256(toUtf8Bytes(purpose)), operations: opsFromForm("offer-ops"),
    kind: 0, notBefore: 0, expiry: now + Number($("#offer-days").value) * 86400, maxUses: Number($("#offer-uses").value),
    paymentToken: token, pricePerUse: parseEther($("#offer-price").value.trim()).toString(), algorithmProvider: ZERO };
  const transfers = BigInt(await ctx.chain.view("AssetRegistry", "transfersOf", [assetId]));
  const salt = BigInt(hexlify(crypto.getRandomValues(new Uint8Array(20))));
  const nonce = ((transfers << 224n) | (salt << 64n)).toString();  // chain.eip712.offer_nonce, sequence 0
  const deadline = now + Number($("#offer-hours").value) * 3600;
  const ok = await confirmAction("Sign this offer?", [["Asset", String(assetId)], ["Consumer", consumer],
    ["Purpose", purpose], ["Operations exposed", opNames(terms.operations)], ["Uses", String(terms.maxUses)],
    ["Valid until", when(terms.expiry)], ["Price per use", show(terms.pricePerUse)],
    ["Offer can be submitted until", when(deadline)], ["Signed for", `Authorizations ${ctx.chain.address.Authorizations} on chain ${ctx.config.chainId}`]],
  "Whoever holds this signed offer can turn it into a grant for this consumer, until it is cancelled or expires.");
  if (!ok) return;
  const typed = grantTypedData(ctx, terms, nonce, deadline);
  const signature = await ctx.wallet.request("eth_signTypedData_v4", [ctx.wallet.account, JSON.stringify(typed)]);
  $("#offer-out").value = JSON.stringify({ terms, nonce, deadline, signature });
  const cancel = el("button", { type: "button", id: "cancel-offer", onclick: () => guarded(async () => {
    const r = await ctx.chain.transact({ contract: "Authorizations", fn: "cancelOffer", args: [BigInt(nonce)],
      title: `Cancel the offer for asset ${assetId}`, confirm: () => confirmAction("Cancel this signed offer on chain?",
        [["Asset", String(assetId)], ["Consumer", consumer], ["Nonce", nonce]], "Once cancelled, it can no longer be submitted.") });
    if (r) { notify(`Offer for asset ${assetId} cancelled`, "ok", "OfferCancelled"); cancel.remove(); }
  }) }, "Cancel this offer on chain");
  const old = $("#cancel-offer");
  if (old) old.remove();
  $("#offer-out").closest(".field").after(cancel);
  notify(`Offer for asset ${assetId} signed; give the JSON to ${short(consumer)}`, "ok", "OfferSigned");
}

/** chain.eip712.grant_typed_data, field for field. */
export function grantTypedData(ctx, terms, nonce, deadline) {
  const t = (n, type) => ({ name: n, type });
  return { types: { EIP712Domain: [t("name", "string"), t("version", "string"), t("chainId", "uint256"), t("verifyingContract", "address")],
    Grant: [t("assetId", "uint256"), t("consumer", "address"), t("purposeHash", "bytes32"), t("operations", "uint16"),
      t("kind", "uint8"), t("notBefore", "uint32"), t("expiry", "uint32"), t("maxUses", "uint32"), t("paymentToken", "address"),
      t("pricePerUse", "uint96"), t("algorithmProvider", "address"), t("nonce", "uint256"), t("deadline", "uint256")] },
  primaryType: "Grant", domain: { name: "TDS Authorizations", version: "1", chainId: ctx.config.chainId,
    verifyingContract: ctx.chain.address.Authorizations }, message: { ...terms, nonce, deadline } };
}

async function renderHeldGrants(ctx, mine) {
  const root = clear($("#held-grants"));
  const table = el("table", { id: "provider-grants" }, el("caption", {}, "Grants on your assets"),
    el("thead", {}, el("tr", {}, ["Grant", "Asset", "Consumer", "Status", "Uses", "Actions"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody"));
  root.append(table);
  for (const a of mine) {
    for (const args of await ctx.reads.grantsOn(a.assetId)) {
      const g = await ctx.chain.view("Authorizations", "grantOf", [args.grantId]);
      const status = GRANT_STATUS[Number(g.status)] + (Number(g.frozenBy) ? `, frozen by ${FREEZE[Number(g.frozenBy)]}` : "");
      const id = args.grantId;
      $("tbody", table).append(el("tr", { "data-grant": id }, el("td", {}, String(id)), el("td", {}, String(a.assetId)),
        el("td", { title: g.consumer }, short(g.consumer)), el("td", {}, status), el("td", {}, `${g.uses} / ${Number(g.maxUses) || "∞"}`),
        el("td", {}, Number(g.status) !== 1 ? "" : el("span", {},
          el("button", { type: "button", onclick: () => guarded(() => holderAct(ctx, "revoke", id)) }, `Revoke ${id}`),
          Number(g.frozenBy) === 0 ? el("button", { type: "button", onclick: () => guarded(() => holderAct(ctx, "freeze", id)) }, `Freeze ${id}`)
            : Number(g.frozenBy) === 1 ? el("button", { type: "button", onclick: () => guarded(() => holderAct(ctx, "unfreeze", id)) }, `Unfreeze ${id}`)
              : ""))));
    }
  }
}

const HOLDER_ACTS = {
  revoke: ["Revoke", "revoked", "GrantRevoked", "A revoked grant cannot be used again."],
  freeze: ["Freeze", "frozen", "GrantFrozen", "A grant you froze can be unfrozen by you later."],
  unfreeze: ["Unfreeze", "unfrozen", "GrantUnfrozen", "The consumer can use the grant again."],
};

async function holderAct(ctx, what, id) {
  const [verb, done, code, note] = HOLDER_ACTS[what];
  const args = what === "revoke" ? [id, keccak256(toUtf8Bytes("revoked by the holder"))] : what === "freeze" ? [id, 1] : [id];
  const r = await ctx.chain.transact({ contract: "Authorizations", fn: what, args, title: `${verb} grant ${id}`,
    confirm: () => confirmAction(`${verb} grant ${id}?`, [["Grant", String(id)]], note) });
  if (r) {
    notify(`Grant ${id}: ${done}`, "ok", code);
    await renderHeldGrants(ctx, ctx.myAssets);
  }
}

async function renderEarnings(ctx) {
  const root = clear($("#earnings"));
  for (const [suffix, choice] of [["", "native"], ["-credits", "credits"]]) {
    const { token, show } = currency(ctx, choice);
    const owed = await ctx.chain.view("Jobs", "balanceOf", [ctx.wallet.account, token]);
    root.append(el("p", {}, "To withdraw: ", el("strong", { id: "earned" + suffix }, formatEther(owed)),
      choice === "native" ? " (native coin) " : " credits ",
      el("button", { type: "button", id: "withdraw" + suffix, disabled: owed === 0n, onclick: () => guarded(async () => {
        const r = await ctx.chain.transact({ contract: "Jobs", fn: "withdraw", args: [token], title: `Withdraw ${show(owed)}`,
          confirm: () => confirmAction("Withdraw your earnings?", [["Amount", show(owed)], ["To", ctx.wallet.account]]) });
        if (r) { notify(`Withdrawn: ${show(owed)}`, "ok", "Withdrawn"); await renderEarnings(ctx); }
      }) }, choice === "native" ? "Withdraw" : "Withdraw credits")));
  }
}

export { toBeHex };
