"""ipfshttpclient.Client, constructed directly, works unchanged against the embedded store."""
from __future__ import annotations

import io
import os
import warnings

import pytest

from offchain.errors import StoreError
from offchain.store.blockstore import BlockStore
from offchain.store.server import KuboRpcServer
from offchain.store.unixfs import file_cid

ipfshttpclient = pytest.importorskip("ipfshttpclient")


@pytest.fixture
def client(tmp_path):
    warnings.filterwarnings("ignore", category=FutureWarning)
    with KuboRpcServer(BlockStore(tmp_path / "ipfs")) as server:
        yield ipfshttpclient.Client(server.multiaddr)


def test_version_and_id(client):
    assert client.version()["Version"]
    assert client.id()["ID"].startswith("tds-")


def test_add_cat_get(client, tmp_path):
    data = os.urandom(262144 * 2 + 99)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    res = client.add(str(path))
    assert res["Hash"] == file_cid(data) and res["Name"] == "data.bin"
    assert client.cat(res["Hash"]) == data
    assert client.cat(res["Hash"], offset=5, length=10) == data[5:15]
    out = tmp_path / "out"
    out.mkdir()
    client.get(res["Hash"], target=str(out))
    assert (out / res["Hash"]).read_bytes() == data


def test_add_bytes_cid_versions(client):
    assert client.add_bytes(b"hello world\n") == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    res = client.add(io.BytesIO(b""), cid_version=1, raw_leaves=True)
    assert res["Hash"] == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_pins_block_stat_and_gc(client):
    cid = client.add_bytes(b"x" * 300000)
    assert cid in client.pin.ls(type="recursive")["Keys"]
    assert client.block.stat(cid)["Size"] > 0
    client.pin.rm(cid)
    assert len(client.repo.gc()) == 3  # root + two leaves
    with pytest.raises(ipfshttpclient.exceptions.ErrorResponse):
        client.cat(cid)
    cid2 = client.add_bytes(b"y", opts={"pin": "false"})
    assert client.pin.add(cid2)["Pins"] == [cid2]


def test_errors_are_kubo_shaped(client):
    with pytest.raises(ipfshttpclient.exceptions.ErrorResponse, match="invalid CID"):
        client.cat("not-a-cid")


def test_refuses_non_loopback(tmp_path):
    with pytest.raises(StoreError, match="non-loopback"):
        KuboRpcServer(BlockStore(tmp_path), host="0.0.0.0")
