"""TEST FIXTURE, never shipped: the signing half of the console's test wallet.

:func:`mount_test_wallet` adds ``POST /__test_wallet/rpc`` to a gateway app built by a test; the
injected ``console_wallet.js`` sends every EIP-1193 request there. Accounts, signing
(``personal_sign``, ``eth_signTypedData_v4``, ``eth_sendTransaction``) and the chain id the wallet
reports are decided here with dev keys; every other method is forwarded to the node as is.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from fastapi import FastAPI, Request

SCRIPT = Path(__file__).with_name("console_wallet.js")


@dataclass
class TestWallet:
    """The wallet's state: the selected account (a LocalAccount) and the chain id it reports."""

    w3: Any
    account: Any = None
    reported_chain: int | None = None  # None: the node's own
    log: list[str] = field(default_factory=list)

    def chain_id(self) -> int:
        return self.reported_chain if self.reported_chain is not None else self.w3.eth.chain_id

    def handle(self, method: str, params: list[Any]) -> Any:
        self.log.append(method)
        a = self.account
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [a.address]
        if method == "eth_chainId":
            return hex(self.chain_id())
        if method == "wallet_switchEthereumChain":
            want = int(params[0]["chainId"], 16)
            if want != self.w3.eth.chain_id:
                raise WalletFailure(4902, f"unknown chain {want}")
            self.reported_chain = None
            return None
        if method == "personal_sign":
            msg = encode_defunct(hexstr=params[0])
            return "0x" + bytes(Account.sign_message(msg, a.key).signature).hex()
        if method == "eth_signTypedData_v4":
            data = json.loads(params[1]) if isinstance(params[1], str) else params[1]
            return "0x" + bytes(Account.sign_message(encode_typed_data(full_message=_ints(data)), a.key).signature).hex()
        if method == "eth_sendTransaction":
            if self.chain_id() != self.w3.eth.chain_id:
                raise WalletFailure(4901, "the wallet is on another chain")
            tx = dict(params[0])
            call = {"from": a.address, "to": tx["to"], "data": tx.get("data", "0x"), "value": int(tx.get("value", "0x0"), 16)}
            gas = self.w3.eth.estimate_gas(call)
            signed = a.sign_transaction({**call, "gas": gas + gas // 4, "nonce": self.w3.eth.get_transaction_count(a.address),
                                         "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
                                         "chainId": self.w3.eth.chain_id})
            return "0x" + bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction)).hex()
        reply = self.w3.provider.make_request(method, params)
        if "error" in reply:
            err = reply["error"]
            raise WalletFailure(err.get("code", -32000), err.get("message", "error"), err.get("data"))
        return reply["result"]


class WalletFailure(Exception):
    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def _ints(typed: dict[str, Any]) -> dict[str, Any]:
    """Decimal strings of uint fields as ints (what a browser wallet accepts, eth_account wants ints)."""
    out = json.loads(json.dumps(typed))
    for section, struct in (("domain", "EIP712Domain"), ("message", typed["primaryType"])):
        for f in typed["types"][struct]:
            v = out[section].get(f["name"])
            if f["type"].startswith(("uint", "int")) and isinstance(v, str):
                out[section][f["name"]] = int(v, 0)
    return out


def mount_test_wallet(app: FastAPI, wallet: TestWallet) -> None:
    """Add the test-only JSON-RPC route the injected wallet talks to."""

    @app.post("/__test_wallet/rpc", include_in_schema=False)
    async def rpc(request: Request) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        body = await request.json()
        try:
            return {"result": await run_in_threadpool(wallet.handle, body["method"], body.get("params") or [])}
        except WalletFailure as exc:
            return {"error": {"code": exc.code, "message": exc.message, "data": exc.data}}
        except Exception as exc:  # a node refusal raised by web3 (estimate_gas on a revert, ...)
            return {"error": {"code": -32000, "message": str(exc), "data": getattr(exc, "data", None)}}
