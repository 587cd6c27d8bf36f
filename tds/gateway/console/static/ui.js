// DOM helpers of the console. Text is always set with textContent (never innerHTML), so nothing a
// participant, the chain or the gateway supplies is ever parsed as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** An element: el("td", {class: "x", "data-id": 3}, "text", child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

/** A labelled form field: label text, input attributes; returns the wrapper. */
export function field(label, attrs = {}, tag = "input") {
  const id = attrs.id || "f-" + Math.random().toString(36).slice(2, 9);
  const input = tag === "select" ? el("select", { ...attrs, id }, ...(attrs.options || []).map(
    ([v, t]) => el("option", { value: v }, t))) : el(tag, { ...attrs, id });
  if (tag === "select") input.removeAttribute("options");
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

/** A definition list of [term, value] pairs. */
export function facts(pairs, attrs = {}) {
  return el("dl", { class: "facts", ...attrs }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

/** The activity list: one entry per transaction or request, its state kept up to date. */
export function activity(title) {
  const item = el("li", { class: "act", "data-state": "preparing" }, el("span", { class: "what" }, title),
    " ", el("span", { class: "state" }, "preparing"), el("div", { class: "detail" }));
  const list = $("#activity");
  list.prepend(item);
  return {
    node: item,
    set(state, detail = "") {
      item.dataset.state = state;
      $(".state", item).textContent = state;
      $(".detail", item).textContent = detail;
      announce(`${title}: ${state}`);
    },
  };
}

/** Say `text` to screen readers through the transaction-state live region (polite). */
export function announce(text) {
  const region = $("#tx-status");
  if (region) region.textContent = text;
}

/** Show a message in the page's message area; kind: info | ok | error (an error is announced at
 *  once, role=alert, and focused unless a dialog is open). */
export function notify(text, kind = "info", code = "") {
  const box = $("#message");
  box.dataset.kind = kind;
  box.dataset.code = code;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.textContent = text;
  if (kind === "error" && !$("#confirm").open) box.focus();
}

/** Ask before the wallet is asked: shows what will be signed or sent; resolves true on confirm. */
export function confirmAction(title, pairs, note = "") {
  const dlg = $("#confirm");
  $("#confirm-title").textContent = title;
  const body = clear($("#confirm-body"));
  body.append(facts(pairs, { id: "confirm-facts" }));
  if (note) body.append(el("p", { class: "note" }, note));
  const opener = document.activeElement;  // focus goes back there when the dialog closes
  dlg.showModal();
  $("#confirm-ok").focus();
  return new Promise((resolve) => {
    const done = (ok) => {
      dlg.close();
      cleanup();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      announce(ok ? `${title} confirmed: your wallet asks next` : `${title} cancelled`);
      resolve(ok);
    };
    const ok = () => done(true), cancel = () => done(false);
    const esc = (e) => { e.preventDefault(); done(false); };
    $("#confirm-ok").addEventListener("click", ok);
    $("#confirm-cancel").addEventListener("click", cancel);
    dlg.addEventListener("cancel", esc);
    function cleanup() {
      $("#confirm-ok").removeEventListener("click", ok);
      $("#confirm-cancel").removeEventListener("click", cancel);
      dlg.removeEventListener("cancel", esc);
    }
  });
}

export function short(addr) { return addr ? addr.slice(0, 8) + "…" + addr.slice(-4) : ""; }

export function when(ts) {
  const n = Number(ts);
  return n ? new Date(n * 1000).toISOString().replace(".000Z", "Z") : "none";
}
