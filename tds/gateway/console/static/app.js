// The participant console: connect a wallet, check its chain against the deployment, show the
// account's DID binding and roles from the chain, then the consumer's and the provider's work.
import { hexlify, toUtf8Bytes } from "./vendor.js";
import { $, $$, el, clear, facts, notify, short } from "./ui.js";
import { Chain, guarded } from "./chain.js";
import { discover, Wallet } from "./wallet.js";
import { renderCatalog, renderOfferSubmit, renderGrants } from "./consumer.js";
import { renderProvider } from "./provider.js";
import { renderJobs } from "./job.js";
import { renderCollaborations } from "./collab.js";
import { Reads } from "./reads.js";
import { b64u } from "./crypto.js";

const ctx = { config: null, wallet: null, chain: null, assets: [] };
ctx.reads = new Reads(ctx);
window.tdsConsole = ctx; // for people debugging in the browser's console

/** A wallet proof (personal_sign) for the gateway: `action` on `subject` with a nonce the gateway
 *  issued (it accepts each proof once), valid five minutes at most. */
ctx.proof = async (action, subject) => {
  const res = await fetch("/console/nonce", { method: "POST" });
  const issued = await res.json();
  if (!res.ok) throw Object.assign(new Error(`${issued.error}: ${issued.detail}`), { errorName: issued.error });
  const expires = Math.min(Math.floor(Date.now() / 1000) + 300, issued.expires);
  const message = ["Trusted Data Space console", `action: ${action}`, `subject: ${subject}`,
    `chain: ${ctx.config.chainId}`, `nonce: ${issued.nonce}`, `expires: ${expires}`].join("\n");
  const signature = await ctx.wallet.request("personal_sign", [hexlify(toUtf8Bytes(message)), ctx.wallet.account]);
  return b64u(toUtf8Bytes(JSON.stringify({ message, signature })));
};

async function start() {
  const res = await fetch("/console/config");
  if (!res.ok) { notify(`the gateway cannot reach the chain (${res.status})`, "error", "ConfigUnavailable"); return; }
  ctx.config = await res.json();
  $("#deployment").textContent = `chain ${ctx.config.chainId}`;
  setupTabs();
  const wallets = await discover();
  const pick = clear($("#wallets"));
  if (!wallets.length) {
    pick.append(el("p", { id: "no-wallet" }, "No browser wallet found. Install an EIP-1193 wallet, or use the `tds` command line."));
  }
  for (const w of wallets) {
    pick.append(el("button", { type: "button", class: "connect", "data-wallet": w.info.rdns || w.info.uuid,
      onclick: () => guarded(() => connect(w)) }, `Connect ${w.info.name}`));
  }
  await guarded(() => renderCatalog(ctx));
}

async function connect(found) {
  const wallet = new Wallet(found.provider, found.info);
  await wallet.connect();
  ctx.wallet = wallet;
  ctx.chain = new Chain(wallet, ctx.config);
  ctx.chain.afterMined = (block) => ctx.reads.settle(block);  // lists read from the index: wait for it
  wallet.on("accountsChanged", (a) => { if (a && a.length) { wallet.account = a[0]; guarded(refresh); } });
  wallet.on("chainChanged", () => guarded(refresh));
  document.body.dataset.connected = "true";
  await refresh();
}

async function refresh() {
  const w = ctx.wallet;
  await w.refreshChain();
  const box = clear($("#account"));
  const wrong = w.chainId !== ctx.config.chainId;
  document.body.dataset.chain = wrong ? "wrong" : "ok";
  box.append(facts([["Wallet", w.info.name], ["Account", w.account],
    ["Chain", wrong ? `${w.chainId} — this data space is on chain ${ctx.config.chainId}` : String(w.chainId)]], { id: "account-facts" }));
  if (wrong) {
    box.append(el("p", { id: "chain-warning", role: "alert" }, `WrongChain: the wallet is on chain ${w.chainId}; `
      + `switch it to chain ${ctx.config.chainId} before signing anything.`),
    el("button", { type: "button", id: "switch-chain", onclick: () => guarded(async () => {
      await w.switchTo(ctx.config.chainIdHex);
      await refresh();
    }) }, `Switch wallet to chain ${ctx.config.chainId}`));
    notify(`WrongChain: the wallet is on chain ${w.chainId}, the data space on chain ${ctx.config.chainId}`, "error", "WrongChain");
    return;
  }
  await showIdentity(box);
  await renderCatalog(ctx);
  renderOfferSubmit(ctx);
  await renderGrants(ctx);
  await renderJobs(ctx);
  await renderCollaborations(ctx);
  await renderProvider(ctx);
  document.body.dataset.ready = "true";
}

async function showIdentity(box) {
  const ident = await ctx.chain.identity(ctx.wallet.account);
  const bound = ident !== null;
  const did = bound ? ident.did : "not bound: run 'tds id bind' first";
  const roles = [];
  for (const [name, id] of Object.entries(ctx.config.roles)) {
    if (await ctx.chain.view("IdentityRegistry", "hasParticipantRole", [ctx.wallet.account, id])) roles.push(name);
  }
  box.append(facts([["DID", did], ["Key-agreement key", bound ? ident.keyAgreementKey : "none"],
    ["Roles", roles.join(", ") || "none"]], { id: "identity-facts", "data-did": bound ? did : "", "data-roles": roles.join(",") }));
  notify(`Connected as ${short(ctx.wallet.account)}${roles.length ? " (" + roles.join(", ") + ")" : ""}`, "ok", "Connected");
}

function setupTabs() {
  const tabs = $$("[role=tab]");
  const select = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      $("#" + t.getAttribute("aria-controls")).hidden = !on;
    }
  };
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => select(t));
    t.addEventListener("keydown", (e) => {
      const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (!d) return;
      const next = tabs[(i + d + tabs.length) % tabs.length];
      select(next);
      next.focus();
    });
  });
  select(tabs[0]);
}

start().catch((e) => notify(e.message || String(e), "error", "StartFailed"));
