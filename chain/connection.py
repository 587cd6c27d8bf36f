"""A connected :class:`web3.Web3` for the configured chain.

``TDS_RPC_URL`` (with optional ``TDS_CHAIN_ID``) points at any EVM node, e.g. a consortium
network; without it the embedded anvil is used and started on demand.
"""
from __future__ import annotations

from web3 import HTTPProvider, Web3

from chain.node import EmbeddedNode
from chain.config import Settings, load_settings
from chain.errors import ChainConnectionError


def connect(settings: Settings | None = None, *, start: bool = True, timeout: float = 10.0) -> Web3:
    """Return a Web3 connected to the configured chain, checking it answers and its chain id.

    With no ``rpc_url`` the embedded node is used; ``start`` launches it if it is not running.
    """
    settings = settings or load_settings()
    if settings.rpc_url:
        url = settings.rpc_url
    else:
        node = EmbeddedNode(settings)
        info = node.status() or (node.up() if start else None)
        if info is None:
            raise ChainConnectionError("the embedded chain is not running: start it with 'tds chain up'")
        url = info.url
    # eth_chainId and friends are cached: web3 would otherwise ask for the chain id on every call
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}, cache_allowed_requests=True))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:  # requests/urllib errors vary by transport
        raise ChainConnectionError(
            f"cannot reach the chain at {url}: {exc.__class__.__name__}; check TDS_RPC_URL or run 'tds chain up'"
        ) from exc
    if settings.chain_id is not None and chain_id != settings.chain_id:
        raise ChainConnectionError(
            f"the node at {url} reports chain id {chain_id}, but TDS_CHAIN_ID is {settings.chain_id}"
        )
    return w3
