// What the page reads about the data space: from the gateway's event index (/catalog, /grants/{id},
// /jobs/{id}, /assets/{id}/trail, /collaborations/{id}; every answer says which block it is
// complete up to, X-TDS-Indexed-Block) when the gateway has one; only without an index from the
// wallet's RPC (eth_getLogs from the deployment block). The wallet stays for signing, simulations,
// balances and current-state views (eth_call).
import { ChainRefusal } from "./chain.js";

export class Reads {
  constructor(ctx) {
    this.ctx = ctx;
    this.indexed = false;   // decided by the catalog's answer
    this.block = null;      // the block the index is complete up to
  }

  /** GET a gateway JSON route; a refusal is thrown as its named error. */
  async json(path) {
    const res = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new ChainRefusal(body.error || `Http${res.status}`, [], body.detail || `${path}: ${res.status}`);
    const block = res.headers.get("X-TDS-Indexed-Block");
    if (block) this.block = Math.max(this.block || 0, Number(block));
    return body;
  }

  /** Every registered asset (the gateway's /catalog, from its index when it has one). */
  async catalog() {
    const res = await fetch("/catalog");
    if (!res.ok) throw new ChainRefusal("CatalogUnavailable", [], `the gateway's catalog is unavailable (${res.status})`);
    this.indexed = res.headers.has("X-TDS-Indexed-Block");
    const block = res.headers.get("X-TDS-Indexed-Block");
    if (block) this.block = Number(block);
    document.body.dataset.reads = this.indexed ? "index" : "wallet";
    this.ctx.assets = await res.json();
    return this.ctx.assets;
  }

  /** Wait until the index holds block `block` (a transaction just mined), at most `ms`. */
  async settle(block, ms = 20000) {
    if (!this.indexed) return;
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const res = await fetch("/catalog?limit=1");
      const at = Number(res.headers.get("X-TDS-Indexed-Block") || -1);
      if (at >= Number(block)) { this.block = at; return; }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new ChainRefusal("IndexBehind", [], `the gateway's event index has not reached block ${block} yet; reload in a moment`);
  }

  async _grants(ids) { return Promise.all(ids.map((id) => this.json(`/grants/${id}`))); }

  /** Grants whose consumer is `account`: [{grantId, assetId}] (from the index: read once per
   *  indexed block, however many lists ask). */
  async grantsOf(account) {
    const me = account.toLowerCase();
    if (this.indexed) {
      const assets = await this.catalog();
      const key = `${me}@${this.block}`;
      if (this._mine && this._mine.key === key) return this._mine.found;
      const found = this._grants(assets.flatMap((a) => a.grants)).then((all) => all
        .filter((g) => g.consumer.toLowerCase() === me)
        .map((g) => ({ grantId: BigInt(g.grantId), assetId: BigInt(g.assetId), summary: g })));
      this._mine = { key, found };
      found.catch(() => { this._mine = null; });
      return found;
    }
    return (await this.ctx.chain.events("Authorizations", "GrantIssued", [null, null, account]))
      .map(({ args }) => ({ grantId: args.grantId, assetId: args.assetId }));
  }

  /** Grants issued on asset `assetId`: [{grantId}]. */
  async grantsOn(assetId) {
    if (this.indexed) {
      const asset = (this.ctx.assets || []).find((a) => Number(a.assetId) === Number(assetId));
      return (asset ? asset.grants : []).map((id) => ({ grantId: BigInt(id) }));
    }
    return (await this.ctx.chain.events("Authorizations", "GrantIssued", [null, assetId]))
      .map(({ args }) => ({ grantId: args.grantId }));
  }

  /** Applications for asset `assetId`: [{applicationId, consumer, operations, maxUses, expiry}]. */
  async applicationsFor(assetId) {
    if (this.indexed) {
      const trail = (await this.json(`/assets/${assetId}/trail`)).trail;
      return trail.filter((e) => e.event === "ApplicationSubmitted").map((e) => ({
        applicationId: BigInt(e.object.application), consumer: e.actor, operations: Number(e.detail.operations),
        maxUses: Number(e.detail.maxUses), expiry: Number(e.detail.expiry) }));
    }
    return (await this.ctx.chain.events("Authorizations", "ApplicationSubmitted", [null, assetId])).map(({ args }) => ({
      applicationId: args.applicationId, consumer: args.consumer, operations: Number(args.operations),
      maxUses: Number(args.maxUses), expiry: Number(args.expiry) }));
  }

  /** The account's jobs, newest first: [{jobId, grantId, amount, paymentToken, deadline, status}]. */
  async jobsOf(account) {
    if (this.indexed) {
      const ids = (await this.grantsOf(account)).flatMap((g) => g.summary.jobs.map((j) => j.jobId));
      const jobs = await Promise.all(ids.map((id) => this.json(`/jobs/${id}`)));
      return jobs.map((j) => ({ jobId: BigInt(j.jobId), grantId: BigInt(j.grantId), amount: BigInt(j.amount),
        paymentToken: j.paymentToken, deadline: Number(j.deadline), status: j.status }))
        .sort((a, b) => (a.jobId < b.jobId ? 1 : -1));
    }
    const evs = (await this.ctx.chain.events("Jobs", "JobRequested", [null, null, account])).reverse();
    return evs.map(({ args }) => ({ jobId: args.jobId, grantId: args.grantId, amount: args.amount,
      paymentToken: args.paymentToken, deadline: Number(args.deadline), status: null }));
  }

  /** A job's status word, from the index (its /jobs/{id}) or the chain (jobOf). */
  async jobStatus(jobId, names) {
    if (this.indexed) {
      try { return (await this.json(`/jobs/${jobId}`)).status; } catch (e) {
        if (e.errorName === "unknown-job") return "requested";  // not indexed yet
        throw e;
      }
    }
    const [core] = await this.ctx.chain.view("Jobs", "jobOf", [jobId]);
    return names[Number(core.status)];
  }

  /** Collaborations `account` started, each with its steps: the index's CollaborationSummary shape. */
  async collaborationsOf(account) {
    if (this.indexed) {
      const ids = new Set((await this.grantsOf(account)).flatMap((g) => g.summary.collaborationUses
        .map((u) => Number(u.collaborationId))));
      const found = await Promise.all([...ids].sort((a, b) => b - a).map((id) => this.json(`/collaborations/${id}`)));
      return found.filter((c) => c.initiator.toLowerCase() === account.toLowerCase());
    }
    const chain = this.ctx.chain;
    const STATUS = ["none", "running", "completed", "terminated"], STEP = ["none", "pending", "open", "completed", "failed", "cancelled"];
    const requested = (await chain.events("Collaborations", "CollaborationRequested", [null, account])).reverse();
    const out = [];
    for (const { args } of requested) {
      const id = args.id;
      const c = await chain.view("Collaborations", "collaborationOf", [id]);
      const done = await chain.events("Collaborations", "StepCompleted", [id]);
      const steps = [];
      for (let i = 0; i < Number(args.stepCount); i++) {
        const [s] = await chain.view("Collaborations", "stepOf", [id, i]);
        const ev = done.find((d) => Number(d.args.step) === i);
        steps.push({ step: i, status: STEP[Number(s.status)] || String(s.status), output: s.output,
          coordinator: ev ? ev.args.coordinator : null, resultHash: ev ? ev.args.resultHash : null,
          resultCid: ev && ev.args.resultCid !== "0x" ? ev.args.resultCid : null });
      }
      out.push({ collaborationId: Number(id), initiator: args.initiator, status: STATUS[Number(c.status)] || String(c.status),
        stepCount: Number(args.stepCount), steps });
    }
    return out;
  }
}
