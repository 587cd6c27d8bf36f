"""connect(): the embedded chain by default, any RPC URL by configuration."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chain.connection import connect
from chain.node import EmbeddedNode
from chain.errors import ChainConnectionError


def test_embedded_started_on_demand(tmp_settings):
    try:
        w3 = connect(tmp_settings)
        assert w3.eth.chain_id == 31337
        assert EmbeddedNode(tmp_settings).status() is not None
    finally:
        EmbeddedNode(tmp_settings).down()


def test_no_start_refuses_clearly(tmp_settings):
    with pytest.raises(ChainConnectionError, match="tds chain up"):
        connect(tmp_settings, start=False)


def test_explicit_rpc_url(tmp_settings, embedded_node):
    settings = replace(tmp_settings, rpc_url=embedded_node.url, chain_id=31337)
    w3 = connect(settings)
    assert w3.eth.chain_id == 31337
    assert EmbeddedNode(tmp_settings).status() is None  # the embedded node of this home was not started


def test_explicit_rpc_wrong_chain_id(tmp_settings, embedded_node):
    settings = replace(tmp_settings, rpc_url=embedded_node.url, chain_id=1)
    with pytest.raises(ChainConnectionError, match="chain id 31337.*TDS_CHAIN_ID is 1"):
        connect(settings)


def test_unreachable_rpc_url(tmp_settings):
    from chain.node import free_port

    settings = replace(tmp_settings, rpc_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChainConnectionError, match="cannot reach the chain"):
        connect(settings, timeout=2)


def test_env_configuration(monkeypatch, tmp_path):
    from chain.config import load_settings

    monkeypatch.setenv("TDS_RPC_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TDS_CHAIN_ID", "0x539")
    monkeypatch.setenv("TDS_HOME", str(tmp_path))
    s = load_settings()
    assert (s.rpc_url, s.chain_id, s.home) == ("http://127.0.0.1:9", 1337, tmp_path.resolve())
    monkeypatch.setenv("TDS_CHAIN_ID", "abc")
    with pytest.raises(ValueError, match="TDS_CHAIN_ID"):
        load_settings()


def test_log_queries_over_long_ranges_are_split_into_windows(request, tmp_path_factory):
    """A one-shot ``get_logs`` from the deployment block is split into ``log_window``-block calls
    (nodes such as ethereumjs refuse ranges over 2,500 blocks) and gives the same logs in order."""
    from chain.connection import web3_for
    from tests.support.lifecycle import shared_lifecycle

    lc = shared_lifecycle(request, tmp_path_factory)
    url, head = lc.w3.provider.endpoint_uri, lc.w3.eth.block_number
    query = {"fromBlock": hex(lc.deployment.get("block", 0)), "toBlock": "latest",
             "address": [c["address"] for c in lc.deployment["contracts"].values()]}
    whole = web3_for(url, log_window=10**9)
    split = web3_for(url, log_window=7)
    sent: list[dict] = []
    node = split.provider.make_request

    def counting(method, params):
        if method == "eth_getLogs":
            sent.append(params[0])
        return node(method, params)

    split.provider.make_request = counting
    expected = whole.eth.get_logs(query)
    assert len(expected) > 20
    assert split.eth.get_logs(query) == expected
    span = head - lc.deployment.get("block", 0) + 1
    assert len(sent) == -(-span // 7) and all(int(q["toBlock"], 16) - int(q["fromBlock"], 16) < 7 for q in sent)
    sent.clear()
    assert split.eth.get_logs({**query, "fromBlock": hex(head - 3)}) == [lg for lg in expected
                                                                        if lg["blockNumber"] >= head - 3]
    assert len(sent) == 1  # a short range goes through untouched
