// TEST FIXTURE, never shipped: an EIP-1193 wallet injected into the console page by selenium before
// any page script runs. It announces itself by EIP-6963 and as window.ethereum; every request goes
// to the test-only route /__test_wallet/rpc, where tests/tds/console_wallet.py signs with a dev key
// (the key never reaches the page) or forwards to the node.
(() => {
  const listeners = {};
  const provider = {
    isTdsTestWallet: true,
    async request({ method, params }) {
      const res = await fetch("/__test_wallet/rpc", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ method, params: params || [] }) });
      const body = await res.json();
      if (body.error) {
        const e = new Error(body.error.message);
        e.code = body.error.code;
        e.data = body.error.data;
        throw e;
      }
      if (method === "wallet_switchEthereumChain") provider.emit("chainChanged", params[0].chainId);
      return body.result;
    },
    on(event, fn) { (listeners[event] = listeners[event] || []).push(fn); },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); },
    emit(event, value) { for (const fn of listeners[event] || []) fn(value); },
  };
  const info = { uuid: "5f2b7c1e-0000-4000-8000-7d5e57000001", name: "TDS test wallet", rdns: "org.tds.test-wallet",
    icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E" };
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider",
    { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
  window.ethereum = provider;
  window.__testWallet = provider;
})();
