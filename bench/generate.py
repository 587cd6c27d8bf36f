"""Bulk chain data for the gateway benchmark: many assets, a grant on each, many jobs.

    python -m bench.generate [--assets 10000] [--jobs 100000] [--per-block 500] [--signing node|local]

Transactions are built from pre-encoded calldata (the ABI types read once), sent in JSON-RPC
batches of ``--batch`` with automine off, and mined ``--per-block`` at a time with ``evm_mine``
(so several hundred land in one block, as on a busy chain). Signing: ``node`` lets anvil sign for
its unlocked dev accounts (``eth_sendTransaction``); ``local`` pre-signs raw transactions in
Python (``eth_sendRawTransaction``) — measured here at ~6.5 ms a signature with eth_keys' native
backend (no coincurve), i.e. ~13 min for 120,000 transactions, against seconds for anvil.

The node is a bare anvil (:func:`bulk_node`): no state dump every 5 s and no step tracing (the
embedded node's defaults, which would dominate at this size), a 1e9 block gas limit and zero fees.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import httpx
from eth_abi import encode
from eth_account import Account
from eth_utils import function_abi_to_4byte_selector, keccak

from chain.eip712 import GrantTerms

BLOCK_GAS_LIMIT = 1_000_000_000
JOB_OPERATION = 4  # HOM_AGG: allowed by the bench template (63) and the grants below
JOB_PRICE = 1_000  # wei per use


def bulk_node(node_modules: Path, port: int, log: Path) -> tuple[subprocess.Popen, str]:
    """A bare anvil on loopback for bulk data: (process, url). Stop it with ``proc.terminate()``."""
    from chain.accounts import DEV_MNEMONIC
    from chain.node import anvil_executable

    cmd = [anvil_executable(node_modules), "--host", "127.0.0.1", "--port", str(port), "--chain-id", "31337",
           "--accounts", "10", "--mnemonic", DEV_MNEMONIC, "--block-base-fee-per-gas", "0", "--gas-price", "0",
           "--gas-limit", str(BLOCK_GAS_LIMIT)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"anvil did not answer on {url}; see {log}")


class Calldata:
    """Calldata for one function of a contract: selector and ABI types read once from its ABI."""

    def __init__(self, contract: Any, name: str):
        from eth_utils.abi import get_abi_input_types

        entry = next(e for e in contract.abi if e.get("type") == "function" and e["name"] == name)
        self.to = contract.address
        self.selector = function_abi_to_4byte_selector(entry)
        self.types = get_abi_input_types(entry)

    def __call__(self, *args: Any) -> str:
        return "0x" + (self.selector + encode(self.types, list(args))).hex()


@dataclass
class Bulk:
    """Sends many transactions from one account fast: batched JSON-RPC, ``per_block`` per block."""

    url: str
    account: Any  # LocalAccount (its key signs with signing="local")
    nonce: int
    chain_id: int = 31337
    per_block: int = 500
    batch: int = 250
    signing: str = "node"
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=600))
    sent: int = 0
    blocks: int = 0

    def rpc(self, method: str, params: list[Any]) -> Any:
        r = self.client.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]

    def _payload(self, k: int, tx: dict[str, Any]) -> dict[str, Any]:
        full = {"from": self.account.address, "to": tx["to"], "data": tx["data"], "value": tx.get("value", 0),
                "gas": tx["gas"], "gasPrice": 0, "nonce": self.nonce, "chainId": self.chain_id}
        self.nonce += 1
        if self.signing == "local":
            raw = Account.sign_transaction({k2: v for k2, v in full.items() if k2 != "from"}, self.account.key)
            return {"jsonrpc": "2.0", "id": k, "method": "eth_sendRawTransaction",
                    "params": ["0x" + bytes(raw.raw_transaction).hex()]}
        hexed = {k2: (hex(v) if isinstance(v, int) else v) for k2, v in full.items() if k2 != "chainId"}
        return {"jsonrpc": "2.0", "id": k, "method": "eth_sendTransaction", "params": [hexed]}

    def send_all(self, txs: Iterable[dict[str, Any]]) -> str | None:
        """Send and mine every transaction; the hash of the last one (None if there were none)."""
        last = None
        pending = 0
        chunk: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal last, chunk
            if not chunk:
                return
            answers = self.client.post(self.url, json=chunk).json()
            bad = [a for a in answers if "error" in a]
            if bad:
                raise RuntimeError(f"the node refused a transaction: {bad[0]['error']}")
            last = answers[-1]["result"]
            chunk = []

        for tx in txs:
            chunk.append(self._payload(len(chunk), tx))
            pending += 1
            self.sent += 1
            if len(chunk) >= self.batch:
                flush()
            if pending >= self.per_block:
                flush()
                self.mine()
                pending = 0
        flush()
        if pending:
            self.mine()
        return last

    def mine(self) -> None:
        self.rpc("evm_mine", [])
        self.blocks += 1

    def check(self, tx_hash: str | None) -> None:
        """Raise unless ``tx_hash`` (the last of a phase) was mined and succeeded."""
        while tx_hash is not None:
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is None:  # left for a later block (gas limit): mine once more
                self.mine()
                continue
            if int(receipt["status"], 16) != 1:
                raise RuntimeError(f"bulk transaction {tx_hash} reverted")
            return


def _mint_tx(reg: Calldata, tag: str) -> dict[str, Any]:
    return {"to": reg.to, "gas": 600_000, "data": reg((b"\x12\x20" + keccak(text="content-" + tag),
                                                       b"\x12\x20" + keccak(text="meta-" + tag),
                                                       keccak(text="manifest-" + tag), 1, keccak(text="q-" + tag), 1))}


def generate(space: dict[str, Any], assets: int, jobs: int, *, per_block: int = 500, batch: int = 250,
             signing: str = "node", uses_per_grant: int | None = None) -> dict[str, Any]:
    """Mint ``assets`` assets (the provider of :func:`bench.gateway.fresh_space`), issue one grant
    on each to a bound consumer, and request ``jobs`` jobs spread evenly over the grants.
    Returns counts, first/last ids, blocks mined and the seconds each phase took."""
    from chain.accounts import dev_account
    from chain.deploy import bind
    from chain.system import role_id
    from chain.tx import Sender
    from did.binding import make_binding_proof, proof_bytes
    from did.keys import did_from_ed25519
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    w3, doc, provider = space["w3"], space["deployment"], space["provider"]
    consumer = dev_account(4)
    ident = bind(w3, doc, "IdentityRegistry")
    key = Ed25519PrivateKey.from_private_bytes(keccak(text="bench-gateway-consumer"))
    did = did_from_ed25519(key.public_key())
    Sender(w3, consumer).send(ident.functions.bind(did, keccak(text=did + "doc"), keccak(text=did + "kak"),
                                                   proof_bytes(make_binding_proof(key, consumer, w3.eth.chain_id))))
    Sender(w3, dev_account(0)).send(ident.functions.grantParticipantRole(
        consumer.address, role_id("CONSUMER"), keccak(text="vc:c"), 0))
    url = w3.provider.endpoint_uri
    w3.provider.make_request("evm_setAutomine", [False])
    timings: dict[str, float] = {}
    try:
        prov = Bulk(url, provider, w3.eth.get_transaction_count(provider.address), per_block=per_block, batch=batch,
                    signing=signing)
        reg = Calldata(bind(w3, doc, "AssetRegistry"), "mint")
        t0 = time.perf_counter()
        prov.check(prov.send_all(_mint_tx(reg, f"gen-{i}") for i in range(assets)))
        timings["mint_s"] = time.perf_counter() - t0
        registered = bind(w3, doc, "AssetRegistry").events.AssetRegistered
        last_asset = _last_id(w3, registered, "assetId")
        asset_ids = list(range(last_asset - assets + 1, last_asset + 1))
        auth = bind(w3, doc, "Authorizations")
        grant_fn = Calldata(auth, "grant")
        now = w3.eth.get_block("latest")["timestamp"]
        per_grant = uses_per_grant or max(1, -(-jobs // max(1, assets)))

        def grants() -> Iterator[dict[str, Any]]:
            for a in asset_ids:
                terms = GrantTerms(a, consumer.address, keccak(text=f"purpose-{a}"), JOB_OPERATION, 0, 0,
                                   now + 80 * 86400, per_grant, "0x" + "00" * 20, JOB_PRICE)
                yield {"to": grant_fn.to, "gas": 400_000, "data": grant_fn(terms.as_tuple())}

        t0 = time.perf_counter()
        prov.check(prov.send_all(grants()))
        timings["grant_s"] = time.perf_counter() - t0
        last_grant = _last_id(w3, auth.events.GrantIssued, "grantId")
        grant_ids = list(range(last_grant - len(asset_ids) + 1, last_grant + 1))
        job_fn = Calldata(bind(w3, doc, "Jobs"), "requestJob")
        cons = Bulk(url, consumer, w3.eth.get_transaction_count(consumer.address), per_block=per_block, batch=batch,
                    signing=signing)

        def requests() -> Iterator[dict[str, Any]]:
            for k in range(jobs):
                g = grant_ids[k % len(grant_ids)]
                yield {"to": job_fn.to, "gas": 400_000, "value": JOB_PRICE,
                       "data": job_fn(g, JOB_OPERATION, keccak(text=f"params-{k}"), now + 80 * 86400)}

        t0 = time.perf_counter()
        cons.check(cons.send_all(requests()) if grant_ids else None)
        timings["jobs_s"] = time.perf_counter() - t0
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
        space["send"].resync()
    return {"assets": len(asset_ids), "grants": len(grant_ids), "jobs": jobs if grant_ids else 0,
            "first_asset": asset_ids[0] if asset_ids else None, "blocks": prov.blocks + cons.blocks,
            "transactions": prov.sent + cons.sent, "signing": signing, "per_block": per_block,
            **{k: round(v, 1) for k, v in timings.items()}}


def _last_id(w3: Any, event: Any, arg: str) -> int:
    """The id in the newest ``event`` log (the last of a phase)."""
    head = w3.eth.block_number
    for lo in range(head, -1, -16):
        logs = event().get_logs(from_block=max(0, lo - 15), to_block=lo)
        if logs:
            return int(logs[-1]["args"][arg])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Generate on a bulk node and print the counts and timings (the node is stopped at the end)."""
    import tempfile
    from dataclasses import replace

    from bench.gateway import fresh_space
    from chain.config import load_settings
    from chain.node import free_port

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--per-block", type=int, default=500)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--signing", choices=("node", "local"), default="node")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tds-bench-generate-") as tmp:
        settings = load_settings()
        proc, url = bulk_node(settings.node_modules, free_port(), Path(tmp) / "anvil.log")
        try:
            settings = replace(settings, home=Path(tmp) / "home", rpc_url=url, chain_id=None,
                               deployment_file=Path(tmp) / "deployment.json")
            t0 = time.perf_counter()
            r = generate(fresh_space(settings), a.assets, a.jobs, per_block=a.per_block, batch=a.batch,
                         signing=a.signing)
            r["total_s"] = round(time.perf_counter() - t0, 1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(r, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
