"""tds chain up/down/status: free port, pid file, stale records, exactly-our-process."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

from chain.node import EmbeddedNode, _rpc_ready


def test_up_status_down(tmp_settings):
    node = EmbeddedNode(tmp_settings)
    assert node.status() is None
    info = node.up()
    try:
        assert info.port == tmp_settings.chain_port
        assert _rpc_ready(info.url)
        assert node.pid_file.read_text().strip() == str(info.pid)
        assert node.status() == info
        assert node.up() == info  # idempotent: the running node is reported, not a second one
    finally:
        stopped = node.down()
    assert stopped is not None and stopped.pid == info.pid
    assert node.status() is None
    assert not node.pid_file.exists()
    assert not _rpc_ready(info.url)
    assert node.down() is None


def test_down_without_saving_discards_the_chain_at_once(tmp_settings):
    """``down(save=False)``: a throwaway chain is killed without a state dump (no file written)."""
    node = EmbeddedNode(tmp_settings)
    info = node.up(fresh=True)
    assert not node.state_file.exists()
    stopped = node.down(save=False)
    assert stopped is not None and stopped.pid == info.pid
    assert node.status() is None and not node.pid_file.exists() and not _rpc_ready(info.url)
    assert not node.state_file.exists()


def test_port_in_use_picks_another(tmp_settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", tmp_settings.chain_port))
        s.listen(1)
        node = EmbeddedNode(tmp_settings)
        info = node.up()
        try:
            assert info.port != tmp_settings.chain_port
            assert _rpc_ready(info.url)
        finally:
            node.down()


def test_stale_pid_file_is_cleaned(tmp_settings):
    node = EmbeddedNode(tmp_settings)
    node.dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = {"pid": dead.pid, "port": 1, "url": "http://127.0.0.1:1", "started_at": 0.0,
              "proc_start": "1", "state_file": "", "log_file": ""}
    node.record.write_text(json.dumps(record))
    node.pid_file.write_text(f"{dead.pid}\n")
    assert node.status() is None
    assert not node.record.exists() and not node.pid_file.exists()


def test_reused_pid_is_not_ours(tmp_settings):
    """A live process whose start time differs from the record is a stranger: never killed."""
    node = EmbeddedNode(tmp_settings)
    node.dir.mkdir(parents=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        record = {"pid": stranger.pid, "port": 1, "url": "http://127.0.0.1:1", "started_at": 0.0,
                  "proc_start": "0", "state_file": "", "log_file": ""}
        node.record.write_text(json.dumps(record))
        assert node.down() is None
        assert stranger.poll() is None  # still running
    finally:
        stranger.kill()
        stranger.wait()


def test_dead_anvil_detected(tmp_settings):
    node = EmbeddedNode(tmp_settings)
    info = node.up()
    import os
    import signal

    os.kill(info.pid, signal.SIGKILL)
    os.waitpid(info.pid, 0)
    assert node.status() is None
    fresh = node.up()
    try:
        assert fresh.pid != info.pid
    finally:
        node.down()


def test_state_survives_restart(tmp_settings):
    from chain.accounts import dev_account
    from chain.connection import connect
    from chain.tx import Sender

    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    try:
        w3 = connect(tmp_settings)
        sender = Sender(w3, dev_account(1))
        from web3 import Web3

        target = Web3.to_checksum_address("0x" + "ab" * 20)
        tx = {"to": target, "value": 12345, "gas": 21000, "gasPrice": 0, "nonce": 0, "chainId": 31337}
        tx_hash = w3.eth.send_raw_transaction(sender.account.sign_transaction(tx).raw_transaction)
        assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1  # mined, not just pooled
        assert w3.eth.get_balance(target) == 12345
    finally:
        node.down()
    node.up()
    try:
        assert connect(tmp_settings).eth.get_balance(target) == 12345
    finally:
        node.down()
