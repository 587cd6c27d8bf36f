"""One content-store interface, two backends chosen by configuration (Ape-style managers):
the embedded :class:`BlockStore`, or any Kubo RPC API (``TDS_IPFS_API``) through
``ipfshttpclient``. Callers never branch on which one they got."""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any, Iterator, Protocol
from urllib.parse import urlsplit

from offchain.store.blockstore import BlockStore


class ContentStore(Protocol):
    """What the data plane needs from content addressing."""

    def add_bytes(self, data: bytes, cid_version: int = 0, pin: bool = True) -> str: ...
    def cat(self, cid: str) -> bytes: ...
    def pin(self, cid: str) -> None: ...
    def unpin(self, cid: str) -> None: ...


class EmbeddedStore:
    """The in-process block store (CIDs identical to Kubo's defaults)."""

    def __init__(self, root: Path | str) -> None:
        self.blocks = BlockStore(root)

    def add_bytes(self, data: bytes, cid_version: int = 0, pin: bool = True) -> str:
        return self.blocks.add_bytes(data, cid_version, pin).cid

    def cat(self, cid: str) -> bytes:
        return self.blocks.cat(cid)

    def pin(self, cid: str) -> None:
        self.blocks.pin_add(cid)

    def unpin(self, cid: str) -> None:
        self.blocks.pin_rm(cid)


def to_multiaddr(api: str) -> str:
    """Accept ``/ip4/.../tcp/5001/http`` or ``http://host:port`` and return a multiaddr."""
    if api.startswith("/"):
        return api
    url = urlsplit(api if "://" in api else f"http://{api}")
    host = url.hostname or "127.0.0.1"
    proto = "ip6" if ":" in host else ("ip4" if host.replace(".", "").isdigit() else "dns")
    return f"/{proto}/{host}/tcp/{url.port or 5001}/{url.scheme or 'http'}"


def kubo_client(api: str) -> Any:
    """``ipfshttpclient.Client`` constructed directly (``connect()`` refuses Kubo >= 0.8)."""
    import ipfshttpclient  # imported lazily: only the Kubo backend needs it
    return ipfshttpclient.Client(to_multiaddr(api))


class KuboStore:
    """Any Kubo RPC API (a real daemon or our :class:`KuboRpcServer`)."""

    def __init__(self, api: str) -> None:
        self.client = kubo_client(api)

    def add_bytes(self, data: bytes, cid_version: int = 0, pin: bool = True) -> str:
        res = self.client.add(io.BytesIO(data), pin=pin, cid_version=cid_version,
                              raw_leaves=cid_version == 1)
        return res["Hash"]

    def cat(self, cid: str) -> bytes:
        return self.client.cat(cid)

    def pin(self, cid: str) -> None:
        self.client.pin.add(cid)

    def unpin(self, cid: str) -> None:
        self.client.pin.rm(cid)


def embedded_root(home: Path | str) -> Path:
    """Where the embedded store keeps its blocks and pins: ``<home>/store``."""
    return Path(home) / "store"


def open_store(home: Path | str, api: str | None = None) -> ContentStore:
    """``api`` (or ``TDS_IPFS_API``) selects a Kubo API; otherwise the embedded store under
    ``<home>/store``."""
    api = api or os.environ.get("TDS_IPFS_API") or None
    if api:
        return KuboStore(api)
    return EmbeddedStore(embedded_root(home))


@contextlib.contextmanager
def serving(root: Path | str, port: int = 0) -> Iterator[Any]:
    """Serve an embedded store on loopback for the block; yields a ready Kubo client."""
    from offchain.store.server import KuboRpcServer
    with KuboRpcServer(BlockStore(root), port=port) as server:
        yield kubo_client(server.multiaddr)
