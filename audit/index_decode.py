"""A faster decoder of stored logs for the index's readers: the same :class:`ChainEvent` as
:class:`audit.events.LogDecoder` (web3's ``get_event_data``), from the same published ABIs, but
with the ABI types worked out once per event and checksummed addresses cached — web3 spends
~3 ms a log re-deriving both, which caps an index-served trail at a few dozen a second.

The auditor's own path keeps web3's decoder (:mod:`audit.events`); a test decodes every event
of a deployment both ways and requires equal results.
"""
from __future__ import annotations

import json
from typing import Any

from eth_abi.grammar import parse
from eth_utils import event_abi_to_log_topic, to_checksum_address
from eth_utils.abi import collapse_if_tuple
from web3 import Web3

from audit.events import ChainEvent


def stored_proof(stored: dict[str, Any]) -> bytes | None:
    """The binding proof the indexer stored beside an ``IdentityBound`` (read once from its
    transaction input: :func:`audit.events.with_published_proof`), so index readers call no chain."""
    value = stored.get("bindingProof")
    return bytes.fromhex(value[2:]) if isinstance(value, str) else None


def _unplain(value: Any, abi_input: dict[str, Any]) -> Any:
    """Undo :func:`audit.events.plain` for one argument of ABI type ``abi_input``: the stored
    ``0x`` hex of a bytes value back to bytes, arrays and structs element by element."""
    t = abi_input["type"]
    if t.endswith("]"):
        inner = {**abi_input, "type": t[: t.rindex("[")]}
        return [_unplain(v, inner) for v in value]
    if t == "tuple":
        return {c["name"]: _unplain(value[c["name"]], c) for c in abi_input["components"]}
    if t.startswith("bytes"):
        return bytes.fromhex(value[2:])
    return value


def _shape(value: Any, abi_input: dict[str, Any], checksum: Any) -> Any:
    """``value`` as web3 returns it: addresses checksummed, structs as dicts by component name."""
    t = abi_input["type"]
    if t.endswith("]"):
        inner = {**abi_input, "type": t[: t.rindex("[")]}
        return [_shape(v, inner, checksum) for v in value]
    if t == "tuple":
        return {c["name"]: _shape(v, c, checksum) for v, c in zip(value, abi_input["components"])}
    if t == "address":
        return checksum(value)
    return value


class FastLogDecoder:
    """Decodes raw logs of ``contracts`` (name → web3 Contract) by ``(address, topic0)``."""

    def __init__(self, w3: Web3, contracts: dict[str, Any]):
        self.codec = w3.codec
        self.addresses = [c.address for c in contracts.values()]
        self._checksums: dict[str, str] = {}
        self._specs: dict[tuple[str, bytes], tuple[str, str, list, list, list[str]]] = {}
        for name, c in contracts.items():
            for entry in c.abi:
                if entry.get("type") != "event" or entry.get("anonymous"):
                    continue
                topics, data = [], []
                for i in entry["inputs"]:
                    if i.get("indexed"):
                        hashed = parse(i["type"]).is_dynamic  # an indexed string / bytes / array: its hash
                        topics.append((i, "bytes32" if hashed else collapse_if_tuple(i), hashed))
                    else:
                        data.append(i)
                self._specs[(c.address.lower(), event_abi_to_log_topic(entry))] = (
                    name, entry["name"], topics, data, [collapse_if_tuple(i) for i in data])

    def checksum(self, address: str) -> str:
        """The checksummed form of ``address`` (cached: deployments name few accounts)."""
        found = self._checksums.get(address)
        if found is None:
            found = self._checksums[address] = to_checksum_address(address)
        return found

    def decode_row(self, row: Any) -> ChainEvent | None:
        """The decoded event of an ``events`` row of the index (its stored raw topics and data)."""
        return self.decode({"address": row.address, "topics": [bytes.fromhex(t[2:]) for t in json.loads(row.topics)],
                            "data": bytes.fromhex(row.data[2:]), "blockNumber": row.block,
                            "logIndex": row.log_index, "transactionHash": row.tx})

    def from_stored(self, row: Any) -> ChainEvent | None:
        """The event of an ``events`` row rebuilt from its stored arguments (the JSON the indexer
        wrote from this decoder's own output) — no ABI decoding; equal to :meth:`decode_row`."""
        topics = json.loads(row.topics)
        if not topics:
            return None
        spec = self._specs.get((row.address.lower(), bytes.fromhex(topics[0][2:])))
        if spec is None:
            return None
        contract, event, topic_inputs, data_inputs, _ = spec
        stored = json.loads(row.args)
        args: dict[str, Any] = {}
        for abi_input, _typ, hashed in topic_inputs:
            value = stored[abi_input["name"]]
            args[abi_input["name"]] = bytes.fromhex(value[2:]) if hashed else _unplain(value, abi_input)
        for abi_input in data_inputs:
            args[abi_input["name"]] = _unplain(stored[abi_input["name"]], abi_input)
        if event == "IdentityBound" and "bindingProof" in stored:  # the indexer's copy from the tx input
            args["bindingProof"] = stored_proof(stored)
        return ChainEvent(contract=contract, name=event, args=args, block=int(row.block), tx=row.tx,
                          log_index=int(row.log_index), address=self.checksum(row.address))

    def decode(self, log: Any) -> ChainEvent | None:
        """The decoded event of ``log``, or None if no deployed ABI declares it."""
        if not log["topics"]:
            return None
        spec = self._specs.get((log["address"].lower(), bytes(log["topics"][0])))
        if spec is None:
            return None
        contract, event, topics, data_inputs, data_types = spec
        args: dict[str, Any] = {}
        for (abi_input, typ, hashed), topic in zip(topics, log["topics"][1:]):
            word = bytes(topic)
            if typ.startswith("uint"):  # the common static types without eth_abi's per-call set-up
                args[abi_input["name"]] = int.from_bytes(word, "big")
            elif typ == "address":
                args[abi_input["name"]] = self.checksum("0x" + word[12:].hex())
            elif typ == "bytes32":
                args[abi_input["name"]] = word
            else:
                value = self.codec.decode([typ], word)[0]
                args[abi_input["name"]] = value if hashed else _shape(value, abi_input, self.checksum)
        for abi_input, value in zip(data_inputs, self.codec.decode(data_types, bytes(log["data"]))):
            args[abi_input["name"]] = _shape(value, abi_input, self.checksum)
        ordered = {i["name"]: args[i["name"]] for (i, _, _) in topics}  # web3's order: topics, then data
        ordered.update({i["name"]: args[i["name"]] for i in data_inputs})
        tx = log["transactionHash"]
        tx_hex = tx if isinstance(tx, str) else tx.to_0x_hex() if hasattr(tx, "to_0x_hex") else Web3.to_hex(tx)
        return ChainEvent(contract=contract, name=event, args=ordered, block=int(log["blockNumber"]), tx=tx_hex,
                          log_index=int(log["logIndex"]), address=self.checksum(log["address"]))
