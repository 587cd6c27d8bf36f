// The browser wallet: EIP-6963 discovery (several wallets), window.ethereum as the fallback,
// the connected account and the chain check against the deployment.

const found = new Map(); // uuid -> {info, provider}

window.addEventListener("eip6963:announceProvider", (e) => {
  const d = e.detail;
  if (d && d.info && d.provider && d.info.uuid) found.set(d.info.uuid, { info: d.info, provider: d.provider });
});

/** Every wallet that answers EIP-6963 within a short wait, plus window.ethereum if nothing did. */
export async function discover(waitMs = 300) {
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  await new Promise((r) => setTimeout(r, waitMs));
  const list = [...found.values()];
  if (!list.length && window.ethereum) {
    list.push({ info: { uuid: "window.ethereum", name: "Browser wallet (window.ethereum)", rdns: "" },
      provider: window.ethereum });
  }
  return list;
}

export class WalletError extends Error {
  constructor(name, message) { super(message); this.errorName = name; }
}

/** One connected wallet: requests, account, chain. */
export class Wallet {
  constructor(provider, info) {
    this.provider = provider;
    this.info = info;
    this.account = null;
    this.chainId = null;
  }

  async request(method, params = []) {
    try {
      return await this.provider.request({ method, params });
    } catch (e) {
      if (e && e.code === 4001) throw new WalletError("UserRejected", "you declined the request in your wallet");
      throw e;
    }
  }

  async connect() {
    const accounts = await this.request("eth_requestAccounts");
    if (!accounts || !accounts.length) throw new WalletError("NoAccount", "the wallet offers no account");
    this.account = accounts[0];
    this.chainId = Number(await this.request("eth_chainId"));
    return this.account;
  }

  async refreshChain() {
    this.chainId = Number(await this.request("eth_chainId"));
    return this.chainId;
  }

  async switchTo(chainIdHex) {
    await this.request("wallet_switchEthereumChain", [{ chainId: chainIdHex }]);
    return this.refreshChain();
  }

  on(event, fn) {
    if (typeof this.provider.on === "function") this.provider.on(event, fn);
  }
}
