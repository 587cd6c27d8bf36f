"""Transactions and blocks as the node reports them, decoded with the deployment's published ABIs:
the call, its events, a failed transaction's custom error by name, internal transfers and the call
tree where the node offers them (``ots_getInternalOperations``, ``debug_traceTransaction`` with the
call tracer), and a note naming each node API that did not answer."""
from __future__ import annotations

from typing import Any

from web3.exceptions import BlockNotFound, TransactionNotFound

from audit.events import ChainEvent, plain
from chain.revert import describe_revert
from tds.gateway.explorer.abis import PublishedAbis


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if hasattr(value, "to_0x_hex"):
        return value.to_0x_hex()
    return str(value)


def rpc(w3: Any, method: str, params: list[Any]) -> tuple[Any, str | None]:
    """(result, None) or (None, why not) for a raw JSON-RPC call the node may not offer."""
    try:
        answer = w3.provider.make_request(method, params)
    except Exception as exc:  # noqa: BLE001 - any transport error is reported, not raised
        return None, f"{method}: {exc}"
    if "error" in answer:
        err = answer["error"]
        return None, f"{method}: {err.get('message', err) if isinstance(err, dict) else err}"
    return answer.get("result"), None


def decode_call(base: Any, to: str | None, data: bytes, abis: PublishedAbis | None = None) -> dict[str, Any] | None:
    """``{"contract", "function", "args"}`` for a call to one of the deployment's contracts, else by
    selector with a published ABI (``"by": "selector"``), else None."""
    if not to or len(data) < 4:
        return None
    name = base.names_by_address.get(to.lower())
    if name is None:
        return abis.decode_call(data) if abis is not None else None
    try:
        fn, args = base.contracts[name].decode_function_input(data)
    except Exception:  # noqa: BLE001 - a selector the ABI does not declare
        return {"contract": name, "function": "0x" + bytes(data[:4]).hex(), "args": {}}
    return {"contract": name, "function": fn.fn_name, "signature": fn.abi_element_identifier
            if hasattr(fn, "abi_element_identifier") else fn.fn_name, "args": plain(args)}


def revert_data(w3: Any, tx: Any, receipt: Any, trace: dict[str, Any] | None) -> str | None:
    """The revert data of a failed transaction: from the call trace, else by replaying it with
    ``eth_call`` on the state before its block."""
    if trace and trace.get("output") and trace.get("output") != "0x":
        return trace["output"]
    call = {"from": tx["from"], "to": tx["to"], "data": _hex(tx["input"]), "value": int(tx.get("value", 0)),
            "gas": int(tx["gas"])}
    try:
        w3.eth.call(call, int(receipt["blockNumber"]) - 1)
    except Exception as exc:  # noqa: BLE001 - the revert is what we want
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            return data
        if exc.args and isinstance(exc.args[-1], str) and exc.args[-1].startswith("0x"):
            return exc.args[-1]
    return None


def _flatten(node: dict[str, Any], base: Any, depth: int = 0,
             abis: PublishedAbis | None = None) -> list[dict[str, Any]]:
    data = bytes.fromhex((node.get("input") or "0x")[2:])
    call = decode_call(base, node.get("to"), data, abis)
    out = [{"depth": depth, "type": node.get("type"), "from": node.get("from"), "to": node.get("to"),
            "value": int(node.get("value") or "0x0", 16), "function": call["function"] if call else
            ("0x" + data[:4].hex() if len(data) >= 4 else ""), "contract": call["contract"] if call else None,
            "error": node.get("error")}]
    for child in node.get("calls") or []:
        out += _flatten(child, base, depth + 1, abis)
    return out


def transaction(base: Any, tx_hash: str, abis: PublishedAbis | None = None) -> dict[str, Any] | None:
    """A transaction with its receipt, decoded call and events (the system's contracts by address,
    others by a published ABI), revert, internal operations and call tree; ``notes`` lists what the
    node could not answer. None if the node does not know it."""
    w3 = base.w3
    try:
        tx = w3.eth.get_transaction(tx_hash)
        receipt = w3.eth.get_transaction_receipt(tx_hash)
    except (TransactionNotFound, ValueError):
        return None
    block = w3.eth.get_block(receipt["blockNumber"])
    notes: list[str] = []
    trace, why = rpc(w3, "debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
    if why:
        notes.append(f"call tree unavailable ({why})")
    internal, why = rpc(w3, "ots_getInternalOperations", [tx_hash])
    if why:
        notes.append(f"internal transfers unavailable ({why})")
    events: list[dict[str, Any]] = []
    for log in receipt["logs"]:
        ev: ChainEvent | None = base.decoder.decode(log)
        other = abis.decode_log(list(log["topics"]), bytes(log["data"])) if ev is None and abis else None
        events.append({"log_index": int(log["logIndex"]), "address": log["address"],
                       "contract": ev.contract if ev else (other[0] if other else
                                                           base.names_by_address.get(log["address"].lower())),
                       "event": ev.name if ev else (other[1] if other else None),
                       "args": plain(ev.args) if ev else (other[2] if other else None),
                       "by": "address" if ev else ("topic" if other else None),
                       "topics": [_hex(t) for t in log["topics"]], "data": _hex(log["data"])})
    ok = int(receipt["status"]) == 1
    error = None
    if not ok:
        data = revert_data(w3, tx, receipt, trace)
        error = {"data": data, "decoded": describe_revert(data) if data else None}
        if error["decoded"] and error["decoded"].startswith("0x"):
            error["decoded"] = None
    return {"hash": _hex(tx["hash"]), "status": "success" if ok else "failed", "block": int(receipt["blockNumber"]),
            "time": int(block["timestamp"]), "from": tx["from"], "to": tx.get("to"),
            "contract": receipt.get("contractAddress"), "value": int(tx.get("value", 0)), "nonce": int(tx["nonce"]),
            "gas": int(tx["gas"]), "gas_used": int(receipt["gasUsed"]),
            "gas_price": int(receipt.get("effectiveGasPrice") or tx.get("gasPrice") or 0),
            "index": int(receipt["transactionIndex"]),
            "call": decode_call(base, tx.get("to"), bytes(tx["input"]), abis), "input": _hex(tx["input"]),
            "events": events, "error": error, "internal": internal or [],
            "calls": _flatten(trace, base, 0, abis) if isinstance(trace, dict) else [], "notes": notes}


def block(base: Any, ident: int | str, abis: PublishedAbis | None = None) -> dict[str, Any] | None:
    """A block by number or hash with its transactions (each with its decoded function), or None."""
    w3 = base.w3
    try:
        b = w3.eth.get_block(ident, full_transactions=True)
    except (BlockNotFound, ValueError):
        return None
    txs = []
    for tx in b["transactions"]:
        call = decode_call(base, tx.get("to"), bytes(tx["input"]), abis)
        txs.append({"hash": _hex(tx["hash"]), "from": tx["from"], "to": tx.get("to"), "value": int(tx.get("value", 0)),
                    "contract": call["contract"] if call else None, "function": call["function"] if call else None})
    return {"number": int(b["number"]), "hash": _hex(b["hash"]), "parent": _hex(b["parentHash"]),
            "time": int(b["timestamp"]), "miner": b.get("miner"), "gas_used": int(b["gasUsed"]),
            "gas_limit": int(b["gasLimit"]), "base_fee": int(b.get("baseFeePerGas") or 0),
            "transactions": txs, "head": int(w3.eth.block_number)}
