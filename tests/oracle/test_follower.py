"""EventFollower against a real anvil: confirmations, resume from cursor, reorg rewind."""
from __future__ import annotations

import pytest
from web3 import Web3

from chain.accounts import dev_account
from chain.compiler import run_solc, standard_input
from chain.connection import connect
from chain.deploy import deploy_artifact
from chain.tx import Sender
from oracle.follower import EventFollower
from oracle.journal import Journal


@pytest.fixture
def token_env(fixture_project, tmp_settings):
    from chain.node import EmbeddedNode

    settings = fixture_project("Token.sol")
    out = run_solc(standard_input(settings), settings)
    c = out["contracts"]["contracts/Token.sol"]["FixtureToken"]
    art = {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}
    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    w3 = connect(tmp_settings)
    sender = Sender(w3, dev_account(0))
    token = deploy_artifact(sender, art, 10**24)
    yield w3, sender, token
    node.down(save=False)


def _transfer_topic(token) -> bytes:
    return Web3.keccak(text="Transfer(address,address,uint256)")


def test_confirmations_and_resume(token_env, tmp_path):
    w3, sender, token = token_env
    journal = Journal(tmp_path / "j.sqlite")
    f = EventFollower(w3, journal, "t", [token.address], [_transfer_topic(token)], confirmations=2)
    for i in range(3):
        sender.send(token.functions.transfer(dev_account(1).address, i + 1))
    seen = []
    while (win := f.next_window()) is not None:
        seen += [token.events.Transfer().process_log(l)["args"]["value"] for l in win.logs]
        f.commit(win)
    # the last two transfers are not yet 2 blocks deep
    assert 1 in seen and 3 not in seen
    w3.provider.make_request("evm_mine", [])
    w3.provider.make_request("evm_mine", [])
    f2 = EventFollower(w3, Journal(tmp_path / "j.sqlite"), "t", [token.address], [_transfer_topic(token)],
                       confirmations=2)  # a restart resumes from the cursor
    while (win := f2.next_window()) is not None:
        seen += [token.events.Transfer().process_log(l)["args"]["value"] for l in win.logs]
        f2.commit(win)
    assert sorted(v for v in seen if v < 10) == [1, 2, 3]


def test_reorg_below_cursor_rewinds(token_env, tmp_path):
    w3, sender, token = token_env
    journal = Journal(tmp_path / "j.sqlite")
    f = EventFollower(w3, journal, "t", [token.address], [_transfer_topic(token)])
    for i in range(3):
        sender.send(token.functions.transfer(dev_account(1).address, i + 1))
    while (win := f.next_window()) is not None:
        for l in win.logs:
            journal.record_seen(l["logIndex"] + 1000 * l["blockNumber"], l["blockNumber"], l["transactionHash"].hex(), {})
        f.commit(win)
    head = w3.eth.block_number
    w3.provider.make_request("anvil_reorg", [2, []])  # replace the last two blocks with empty ones
    assert w3.eth.block_number == head
    win = f.next_window()
    # no hash was recorded below the cursor, so it rewinds a bounded depth and re-reads
    assert win is not None and win.start == 0
    values = [token.events.Transfer().process_log(l)["args"]["value"] for l in win.logs]
    assert values == [10**24, 1]  # the mint and the first transfer survive; the reorged two are gone
    assert all(e.request_block < head - 1 for e in journal.unfinished())
    f.commit(win)
    sender.resync()
    sender.send(token.functions.transfer(dev_account(1).address, 77))
    win = f.next_window()
    assert win.start == head + 1 and len(win.logs) == 1
    f.commit(win)
    w3.provider.make_request("anvil_reorg", [1, []])
    win = f.next_window()  # the block below the cursor has a recorded hash: rewind exactly one block
    assert win.start == head + 1 and win.logs == []

