// The consumer's collaborations (docs/collab.md): the ones the account started, every step's
// state, and an output step's sealed result fetched (wallet-proven) and opened in the page with
// the consumer's key file — as a job's answer is — or downloaded for `tds collab result`.
import { $, el, clear, notify } from "./ui.js";
import { ChainRefusal } from "./chain.js";
import { openEnvelope } from "./crypto.js";
import { sealedForm, provenFetch, saveBytes, boundTo } from "./job.js";

const RESULT_FORMAT = "tds-collab-result/1";

export async function renderCollaborations(ctx) {
  const root = clear($("#collaborations"));
  const found = await ctx.reads.collaborationsOf(ctx.wallet.account);
  const table = el("table", { id: "collabs-table" }, el("caption", {}, "Your collaborations"),
    el("thead", {}, el("tr", {}, ["Collaboration", "Status", "Steps", "Outputs"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody"));
  root.append(table, el("div", { id: "collab-output", tabindex: "-1" }));
  if (!found.length) $("tbody", table).append(el("tr", {}, el("td", { colspan: 4 }, "You have started no collaboration.")));
  for (const c of found) {
    const id = c.collaborationId;
    const steps = el("ul", { class: "steps", "aria-label": `Steps of collaboration ${id}` }, c.steps.map((s) =>
      el("li", { "data-step": s.step, "data-status": s.status }, `step ${s.step}: ${s.status}`)));
    const outputs = c.steps.filter((s) => s.status === "completed" && s.resultCid).map((s) =>
      el("button", { type: "button", class: "open-output", "data-collab": id, "data-step": s.step,
        onclick: () => outputPanel(ctx, id, s) }, `Open output of collaboration ${id} step ${s.step}`));
    $("tbody", table).append(el("tr", { "data-collab": id, "data-status": c.status }, el("td", {}, String(id)),
      el("td", {}, c.status), el("td", {}, steps), el("td", {}, outputs.length ? outputs : "none yet")));
  }
}

function outputPanel(ctx, id, step) {
  const box = clear($("#collab-output"));
  const subject = `collaboration ${id} step ${step.step}`;
  const fetchIt = () => provenFetch(ctx, `/console/collaborations/${id}/steps/${step.step}/result`, "read-output", subject);
  box.append(el("h3", {}, `Output of ${subject}`), sealedForm(ctx, {
    label: `the output of ${subject}`, openText: "Fetch and open the output", cls: "open-output-form",
    fetch: fetchIt,
    download: async () => {
      saveBytes(await fetchIt(), `collaboration-${id}-step-${step.step}.sealed.json`);
      notify(`Sealed output saved: open it with 'tds collab result ${id} --step ${step.step} --identity NAME'`, "ok");
    },
    open: async (sealed, keys) => {
      let env;
      try { env = JSON.parse(new TextDecoder().decode(sealed)); } catch (_) { env = null; }
      if (!env || !env.header || !String(env.header.purpose || "").startsWith(RESULT_FORMAT)) {
        throw new ChainRefusal("UnsupportedInBrowser", [], "this output (an intersection list or MPC shares) is "
          + `opened by 'tds collab result ${id} --step ${step.step}'; download it`);
      }
      // sealed by the step's coordinating node (or a party's node), as bound on chain
      const text = await openEnvelope(sealed, keys, { purposePrefix: RESULT_FORMAT + "|",
        senderCheck: (did) => boundTo(ctx, did, step.coordinator || (step.nodes || [])[0]) });
      return JSON.parse(text);
    },
    done: `Output of ${subject} opened in the page` }));
  box.focus();
}
