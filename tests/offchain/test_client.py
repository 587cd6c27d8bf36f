from __future__ import annotations

import warnings

from offchain.store.blockstore import BlockStore
from offchain.store.client import EmbeddedStore, KuboStore, open_store, to_multiaddr
from offchain.store.server import KuboRpcServer
from offchain.store.unixfs import file_cid


def test_open_store_picks_backend(tmp_path, monkeypatch):
    monkeypatch.delenv("TDS_IPFS_API", raising=False)
    assert isinstance(open_store(tmp_path), EmbeddedStore)
    warnings.filterwarnings("ignore", category=FutureWarning)
    with KuboRpcServer(BlockStore(tmp_path / "served")) as server:
        monkeypatch.setenv("TDS_IPFS_API", f"http://127.0.0.1:{server.port}")
        store = open_store(tmp_path)
        assert isinstance(store, KuboStore)
        data = b"same CID both ways" * 20000
        cid = store.add_bytes(data)
        assert cid == file_cid(data) == EmbeddedStore(tmp_path / "e").add_bytes(data)
        assert store.cat(cid) == data
        assert store.add_bytes(b"", 1) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_to_multiaddr():
    assert to_multiaddr("http://127.0.0.1:5001") == "/ip4/127.0.0.1/tcp/5001/http"
    assert to_multiaddr("/ip4/1.2.3.4/tcp/1/http") == "/ip4/1.2.3.4/tcp/1/http"
    assert to_multiaddr("localhost:5002") == "/dns/localhost/tcp/5002/http"
