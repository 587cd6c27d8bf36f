"""A connected :class:`web3.Web3` for the configured chain.

``TDS_RPC_URL`` (with optional ``TDS_CHAIN_ID``) points at any EVM node, e.g. a consortium
network; without it the embedded anvil is used and started on demand.
"""
from __future__ import annotations

from typing import Any, Callable

from web3 import HTTPProvider, Web3
from web3.middleware import ExtraDataToPOAMiddleware, Web3Middleware

from chain.node import EmbeddedNode
from chain.config import Settings, load_settings
from chain.errors import ChainConnectionError


def log_matches(log: dict[str, Any], query: dict[str, Any]) -> bool:
    """Whether a raw ``eth_getLogs`` entry satisfies the query's ``address`` and ``topics``."""
    address = query.get("address")
    if address:
        wanted = [address] if isinstance(address, str) else list(address)
        if str(log.get("address", "")).lower() not in {a.lower() for a in wanted}:
            return False
    topics = [str(t).lower() for t in log.get("topics") or []]
    for i, want in enumerate(query.get("topics") or []):
        if want is None:
            continue
        options = {w.lower() for w in ([want] if isinstance(want, str) else want)}
        if i >= len(topics) or topics[i] not in options:
            return False
    return True


class LogFilterMiddleware(Web3Middleware):
    """Applies ``eth_getLogs``'s address and topic filters again on the answer: ethereumjs
    0.10.2 checks only the first topic (the event), so every ``argument_filters=`` query on an
    indexed argument (a job id, an account) returned the events of every job or account."""

    def wrap_make_request(self, make_request: Callable[..., Any]) -> Callable[..., Any]:
        def middleware(method: str, params: Any) -> Any:
            response = make_request(method, params)
            if method == "eth_getLogs" and params and isinstance(response.get("result"), list):
                response = {**response, "result": [lg for lg in response["result"] if log_matches(lg, params[0])]}
            return response

        return middleware


LOG_WINDOW = 2_000  # blocks per eth_getLogs call: ethereumjs refuses more than 2,500, public nodes less


def _block_number(tag: Any, head: Callable[[], int]) -> int:
    if tag is None or tag in ("latest", "safe", "finalized", "pending"):
        return head()
    if tag == "earliest":
        return 0
    return int(tag, 16) if isinstance(tag, str) else int(tag)


class LogWindowMiddleware(Web3Middleware):
    """Splits an ``eth_getLogs`` over more than ``window`` blocks into windows and joins the
    answers in order, so a one-shot ``get_logs(from_block=deployment)`` keeps working on nodes that
    cap the range (ethereumjs: 2,500 blocks) once a deployment is older than that."""

    window = LOG_WINDOW

    def wrap_make_request(self, make_request: Callable[..., Any]) -> Callable[..., Any]:
        def middleware(method: str, params: Any) -> Any:
            if method != "eth_getLogs" or not params or "blockHash" in params[0]:
                return make_request(method, params)
            query = params[0]
            head: list[int] = []

            def latest() -> int:
                if not head:
                    head.append(int(make_request("eth_blockNumber", [])["result"], 16))
                return head[0]

            lo, hi = _block_number(query.get("fromBlock"), latest), _block_number(query.get("toBlock"), latest)
            if hi - lo < self.window:
                return make_request(method, params)
            found: list[Any] = []
            response: Any = None
            for start in range(lo, hi + 1, self.window):
                response = make_request(method, [{**query, "fromBlock": hex(start),
                                                   "toBlock": hex(min(hi, start + self.window - 1))}])
                if "error" in response or not isinstance(response.get("result"), list):
                    return response
                found += response["result"]
            return {**response, "result": found}

        return middleware


def web3_for(url: str, timeout: float = 10.0, log_window: int = LOG_WINDOW) -> Web3:
    """A Web3 over HTTP for ``url`` that reads any chain's blocks: proof-of-authority chains
    (Clique, e.g. the ethereumjs chain) carry 97-byte ``extraData`` that web3.py refuses
    without :class:`ExtraDataToPOAMiddleware` ("The field extraData is 97 bytes, but should be 32");
    log queries are filtered again by :class:`LogFilterMiddleware` and split into ``log_window``
    block windows by :class:`LogWindowMiddleware`.
    ``eth_chainId`` and friends are cached: web3 would otherwise ask for the chain id on every call."""
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}, cache_allowed_requests=True))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    w3.middleware_onion.add(LogFilterMiddleware, "tds_log_filter")
    w3.middleware_onion.add(type("LogWindow", (LogWindowMiddleware,), {"window": max(1, log_window)}),
                            "tds_log_window")
    return w3


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
    w3 = web3_for(url, timeout)
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
