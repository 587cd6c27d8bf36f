// The chain through the participant's wallet: calls, simulations (eth_call before anything is
// signed), transactions with their pending / mined / failed states, logs, and contract errors
// decoded to their names and said in plain words.
import { AbiCoder, Interface, formatEther, keccak256 } from "./vendor.js";
import { activity, notify } from "./ui.js";

const STATUS = ["none", "pending", "approved", "rejected"];
export const GRANT_STATUS = ["none", "active", "revoked", "closed"];
export const JOB_STATUS = ["none", "requested", "accepted", "completed", "failed", "reclaimed", "cancelled", "released"];
export const FREEZE = ["none", "holder", "monitor", "regulator"];
export const APPLICATION_STATUS = STATUS;

// What a contract error means, for people (the name is always shown with it).
const PLAIN = {
  UsesExhausted: (a) => `this grant has no uses left: ${a[1]} of ${a[2]} used`,
  GrantExpired: (a) => `the grant expired at ${iso(a[1])}`,
  GrantNotYetValid: (a) => `the grant is valid only from ${iso(a[1])}`,
  GrantNotActive: (a) => `the grant is not active (it is ${GRANT_STATUS[Number(a[1])] || a[1]})`,
  GrantIsFrozen: (a) => `the grant is frozen by the ${FREEZE[Number(a[1])] || a[1]}`,
  NotGrantConsumer: (a) => `the account ${a[1]} is not this grant's consumer`,
  OperationNotAllowed: (a) => `the grant allows operations ${a[2]}, the job asks for ${a[1]}`,
  WrongPaymentAmount: (a) => `the job costs ${formatEther(a[0])} and ${formatEther(a[1])} was sent`,
  AssetNotUsable: () => "the data asset is frozen or offline",
  NotAssetHolder: (a) => `the account ${a[1]} does not hold asset ${a[0]}`,
  ApplicationNotPending: () => "the application was already decided",
  ConsumerNotRegistered: (a) => `${a[0]} holds no consumer role on chain`,
  ProviderNotRegistered: (a) => `${a[0]} holds no provider role on chain`,
  SignatureExpired: (a) => `the offer's signature expired at ${iso(a[0])}`,
  InvalidGrantSignature: () => "the offer's signature is not the asset holder's",
  OfferOutdated: () => "the certificate changed hands since the offer was signed",
  InvalidAccountNonce: () => "the offer was cancelled or already used (its nonce is not the holder's next one)",
  InvalidDeadline: () => "the job deadline is in the past or too far ahead",
  NothingToWithdraw: () => "there is nothing to withdraw",
  NoCompletedJob: () => "rate a grant only after one of its jobs completed",
  AlreadyRated: () => "this grant was already rated",
  InvalidScore: () => "a rating is a score from 1 to 5",
  OperationsOutOfScope: () => "the certificate does not allow these operations",
  InvalidValidity: () => "the validity window is not valid (expiry before start, or in the past)",
  InvalidMaxUses: () => "the number of uses is not valid for this kind of grant",
  NotFreezeAuthority: () => "only the holder, the monitor or a regulator may freeze this grant",
  AlreadyFrozen: () => "the grant is already frozen",
  InsufficientFunds: (a) => `the job costs ${formatEther(a[0])}, the account holds ${formatEther(a[1])}`,
  InsufficientCredits: (a) => `the job costs ${formatEther(a[0])} credits, the account holds ${formatEther(a[1])}`,
  TokenPaymentUnsupported: (a) => `the grant is paid in token ${a[0]}, which the console does not handle; use 'tds job request'`,
  WrongChain: (a) => `the wallet is on chain ${a[0]}, this data space is on chain ${a[1]}`,
};

function iso(ts) { return new Date(Number(ts) * 1000).toISOString().replace(".000Z", "Z"); }

/** A refusal with the contract (or console) error's name and its arguments. */
export class ChainRefusal extends Error {
  constructor(name, args = [], raw = "") {
    const words = PLAIN[name] ? PLAIN[name](args) : (raw || "the chain refuses it");
    super(`${name}: ${words}`);
    this.errorName = name;
    this.args = args;
  }
}

function revertData(e) {
  for (let x = e, i = 0; x && i < 5; i++) {
    if (typeof x.data === "string" && x.data.startsWith("0x")) return x.data;
    x = x.data || x.error || x.info;
  }
  return null;
}

export class Chain {
  constructor(wallet, config) {
    this.wallet = wallet;
    this.config = config;
    this.iface = {};
    this.address = {};
    this.afterMined = null;  // awaited once a transaction is mined (the page waits for the index)
    for (const [name, c] of Object.entries(config.contracts)) {
      this.iface[name] = new Interface(c.abi);
      this.address[name] = c.address;
    }
  }

  /** The named error in revert data, searched in every system contract's ABI. */
  decodeError(data) {
    if (!data || data === "0x") return new ChainRefusal("Reverted", [], "the transaction reverts without a reason");
    for (const iface of Object.values(this.iface)) {
      try {
        const parsed = iface.parseError(data);
        if (parsed) return new ChainRefusal(parsed.name, [...parsed.args]);
      } catch (_) { /* not this contract's error */ }
    }
    return new ChainRefusal("Reverted", [], `the transaction reverts (${data.slice(0, 10)})`);
  }

  checkChain() {
    if (this.wallet.chainId !== this.config.chainId) {
      throw new ChainRefusal("WrongChain", [this.wallet.chainId, this.config.chainId]);
    }
  }

  /** A view function's decoded result. */
  async view(contract, fn, args = []) {
    const iface = this.iface[contract];
    const data = iface.encodeFunctionData(fn, args);
    const out = await this.wallet.request("eth_call", [{ to: this.address[contract], data }, "latest"]);
    const res = iface.decodeFunctionResult(fn, out);
    return res.length === 1 ? res[0] : res;
  }

  /** eth_call the transaction as the account; a revert throws its named ChainRefusal. */
  async simulate(tx) {
    this.checkChain();
    try {
      await this.wallet.request("eth_call", [tx, "latest"]);
    } catch (e) {
      const data = revertData(e);
      if (data) throw this.decodeError(data);
      throw new ChainRefusal("Refused", [], (e && e.message) || String(e));
    }
  }

  async balance(account) { return BigInt(await this.wallet.request("eth_getBalance", [account, "latest"])); }

  async now() { return Number((await this.wallet.request("eth_getBlockByNumber", ["latest", false])).timestamp); }

  /** Build, simulate, show, send and follow one transaction; resolves to the receipt and its logs. */
  async transact({ contract, fn, args = [], value = 0n, title, confirm }) {
    const act = activity(title);
    try {
      const tx = { from: this.wallet.account, to: this.address[contract],
        data: this.iface[contract].encodeFunctionData(fn, args), value: "0x" + BigInt(value).toString(16) };
      act.set("simulating");
      await this.simulate(tx);
      if (confirm && !(await confirm())) { act.set("cancelled", "you did not confirm"); return null; }
      act.set("awaiting wallet");
      const hash = await this.wallet.request("eth_sendTransaction", [tx]);
      act.node.dataset.tx = hash;
      act.set("pending", hash);
      const receipt = await this.receipt(hash);
      if (receipt.status !== "0x1") {
        act.set("failed", `mined in block ${Number(receipt.blockNumber)} but reverted`);
        throw new ChainRefusal("Reverted", [], `transaction ${hash} reverted`);
      }
      receipt.events = this.parseLogs(receipt.logs);
      if (this.afterMined) await this.afterMined(Number(receipt.blockNumber));
      act.set("mined", `block ${Number(receipt.blockNumber)}, ${hash}`);
      return receipt;
    } catch (e) {
      if (act.node.dataset.state !== "failed") act.set("refused", e.message);
      throw e;
    }
  }

  async receipt(hash, timeoutMs = 60000) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const r = await this.wallet.request("eth_getTransactionReceipt", [hash]);
      if (r) return r;
      await new Promise((res) => setTimeout(res, 400));
    }
    throw new ChainRefusal("Timeout", [], `transaction ${hash} was not mined within ${timeoutMs / 1000} s`);
  }

  parseLogs(logs) {
    const out = [];
    for (const log of logs || []) {
      const name = Object.keys(this.address).find((n) => this.address[n].toLowerCase() === log.address.toLowerCase());
      if (!name) continue;
      try {
        const p = this.iface[name].parseLog(log);
        if (p) out.push({ contract: name, name: p.name, args: p.args, log });
      } catch (_) { /* an event of no interest */ }
    }
    return out;
  }

  /** `account`'s current identity: its latest IdentityBound whose fields match the one commitment
   *  the IdentityRegistry keeps per account (null if it never bound). Not a proof that the DID's key
   *  vouches for the account: that is the published binding proof, checked off chain. */
  async identity(account) {
    const [commitment] = await this.view("IdentityRegistry", "commitmentOf", [account]);
    if (BigInt(commitment) === 0n) return null;
    const evs = await this.events("IdentityRegistry", "IdentityBound", [account]);
    const coder = AbiCoder.defaultAbiCoder();
    const commit = (a) => keccak256(coder.encode(["bytes32", "bytes32", "bytes32", "bytes32"],
      [a.didHash, a.didDocDigest, a.keyAgreementKey, a.bindingProofHash])).slice(0, 56);
    const match = evs.reverse().find(({ args }) => commit(args) === commitment.toLowerCase());
    return match ? match.args : null;
  }

  /** Decoded events `event` of `contract` whose indexed arguments match `topics` (null: any). */
  async events(contract, event, topics = []) {
    const iface = this.iface[contract];
    const ev = iface.getEvent(event);
    const filter = iface.encodeFilterTopics(ev, topics);
    const logs = await this.wallet.request("eth_getLogs", [{ address: this.address[contract], topics: filter,
      fromBlock: "0x" + this.config.deploymentBlock.toString(16), toBlock: "latest" }]);
    return logs.map((log) => ({ args: iface.parseLog(log).args, log }));
  }
}

/** Run an action, showing a refusal (named error) in the message area instead of throwing. */
export async function guarded(fn) {
  try {
    return await fn();
  } catch (e) {
    const named = /^([A-Z][A-Za-z]+): /.exec((e && e.message) || "");
    notify(e.message || String(e), "error", e.errorName || (named ? named[1] : "Error"));
    return null;
  }
}
