"""The index's decoder (audit/index_decode.py) gives what web3's does (audit.events.LogDecoder):
for a sample log of every event every system contract declares, and for every stored event of
the shared lifecycle."""
from __future__ import annotations

import json
import random
from dataclasses import replace
from types import SimpleNamespace

from eth_abi import encode
from eth_abi.grammar import parse
from eth_utils import event_abi_to_log_topic, keccak
from eth_utils.abi import collapse_if_tuple
from hexbytes import HexBytes
from sqlalchemy import select
from web3 import Web3

from audit.events import ChainReader, LogDecoder, plain
from audit.index import EventIndex, stored_log
from audit.index_decode import FastLogDecoder
from audit.index_tables import events
from chain.system import SYSTEM_CONTRACTS
from tests.support.lifecycle import shared_lifecycle


def _sample(t: str, rnd: random.Random):
    if t.endswith("]"):
        size = t[t.rindex("[") + 1:-1]
        return [_sample(t[:t.rindex("[")], rnd) for _ in range(int(size) if size else 2)]
    if t.startswith("("):
        parts, depth, cur = [], 0, ""
        for ch in t[1:-1]:
            if ch == "," and depth == 0:
                parts, cur = parts + [cur], ""
                continue
            depth += (ch == "(") - (ch == ")")
            cur += ch
        return tuple(_sample(p, rnd) for p in parts + [cur])
    if t == "address":
        return "0x" + rnd.randbytes(20).hex()
    if t == "bool":
        return True
    if t == "string":
        return "did:key:zAbC"
    if t == "bytes":
        return b"\x01\x02xyz"
    if t.startswith("bytes"):
        return rnd.randbytes(int(t[5:]))
    return rnd.randrange(2 ** min(int(t[4:] or 256), 64))


def test_every_declared_event_decodes_as_web3_decodes_it():
    w3, rnd = Web3(), random.Random(7)
    contracts = {n: w3.eth.contract(address=Web3.to_checksum_address(f"0x{i + 1:040x}"),
                                    abi=json.load(open(f"artifacts/{n}.json"))["abi"])
                 for i, n in enumerate(SYSTEM_CONTRACTS)}
    slow, fast = LogDecoder(w3, contracts), FastLogDecoder(w3, contracts)
    seen = 0
    for c in contracts.values():
        for e in (e for e in c.abi if e.get("type") == "event"):
            topics, types, values = [event_abi_to_log_topic(e)], [], []
            for i in e["inputs"]:
                t = collapse_if_tuple(i)
                if i.get("indexed"):
                    topics.append(keccak(b"x") if parse(i["type"]).is_dynamic else encode([t], [_sample(t, rnd)]))
                else:
                    types.append(t)
                    values.append(_sample(t, rnd))
            log = {"address": c.address, "topics": [HexBytes(t) for t in topics],
                   "data": HexBytes(encode(types, values)),
                   "blockNumber": 5, "logIndex": 1, "transactionHash": HexBytes(b"\x11" * 32), "transactionIndex": 0,
                   "blockHash": HexBytes(b"\0" * 32)}
            a, b = slow.decode(log), fast.decode(log)
            assert a == b and list(a.args) == list(b.args), (e["name"], a.args, b.args)
            assert [type(v) for v in a.args.values()] == [type(v) for v in b.args.values()], e["name"]
            row = SimpleNamespace(address=c.address, topics=json.dumps(["0x" + bytes(t).hex() for t in topics]),
                                  args=json.dumps(plain(b.args), sort_keys=True, default=str), block=5, log_index=1,
                                  tx="0x" + "11" * 32)   # as the indexer stores it
            again = fast.from_stored(row)
            assert again == b and list(again.args) == list(b.args), (e["name"], again.args, b.args)
            assert [type(v) for v in again.args.values()] == [type(v) for v in b.args.values()], e["name"]
            seen += 1
    assert seen > 60


def test_stored_lifecycle_events_decode_as_the_chain_reader_decodes_them(request, tmp_path_factory, tmp_path):
    lc = shared_lifecycle(request, tmp_path_factory)
    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    with idx.engine.connect() as conn:
        rows = conn.execute(select(events).order_by(events.c.block, events.c.log_index)).all()
    assert [idx.decoder.decode(stored_log(r)) for r in rows] == ChainReader(lc.w3, lc.deployment).events


def test_events_rebuilt_from_stored_arguments_equal_the_decoded_ones(request, tmp_path_factory, tmp_path):
    """The readers' fast path (no ABI decoding) gives exactly the decoder's events, types and order."""
    lc = shared_lifecycle(request, tmp_path_factory)
    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    with idx.engine.connect() as conn:
        rows = conn.execute(select(events).order_by(events.c.block, events.c.log_index)).all()
    assert len(rows) > 50
    proofs = 0
    for r in rows:
        a, b = idx.decoder.decode_row(r), idx.decoder.from_stored(r)
        if r.name == "IdentityBound":  # plus the proof the indexer read once from the bind's input
            proof = b.args["bindingProof"]
            assert proof is not None and keccak(proof) == b.args["bindingProofHash"]
            b = replace(b, args={k: v for k, v in b.args.items() if k != "bindingProof"})
            proofs += 1
        assert a == b and list(a.args) == list(b.args), (r.name, a.args, b.args)
        assert [type(v) for v in a.args.values()] == [type(v) for v in b.args.values()], r.name
    assert proofs > 0
