"""Reading the chain the way an auditor does: every log of the deployed contracts, decoded
with the ABIs published in the deployment file, plus block times and account → DID bindings.

A binding shows an account under a DID only when the binding proof its ``bind`` published (the
``bindingProof`` argument in the transaction input, whose hash ``IdentityBound`` logs:
:func:`with_published_proof`) verifies against that DID's key (the DID controller signed that
this account, on this chain, is its account). Anyone can ``bind`` any DID, and the EVM cannot
check that signature, so a squatter's binding is shown as ``unverified:<did>`` (:data:`UNVERIFIED`),
never as the DID; it blocks no one: the owner's own binding is shown under the DID.

Nothing here trusts an off-chain index: logs come from ``eth_getLogs`` over the deployment's
addresses (from its ``block`` on, in chunks an external node accepts), each decoded by
``(address, topic0)`` with the contract's own ABI, so the same result is reproducible with an
independent client such as ``cast logs``.
"""
from __future__ import annotations

from functools import lru_cache

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable

from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3._utils.events import get_event_data
from web3.contract import Contract

from chain.deploy import bind

LOG_CHUNK = 2_000  # blocks per eth_getLogs call (public nodes cap ranges; ethereumjs at 2,500)
UNVERIFIED = "unverified:"  # prefix of a DID an account bound without a binding proof that verifies


@dataclass(frozen=True)
class Binding:
    """What an account was bound to: the DID, and whether its published proof verifies."""

    did: str
    verified: bool

    @property
    def shown(self) -> str:
        """How the trail names the account: the DID, or ``unverified:<did>``."""
        return self.did if self.verified else UNVERIFIED + self.did


def with_published_proof(w3: Web3, ev: "ChainEvent") -> "ChainEvent":
    """``ev`` with ``args["bindingProof"]`` when it is an ``IdentityBound``: the proof its ``bind``
    published, read from the transaction input (None there if the input holds no proof with the
    logged hash, e.g. a call through another contract). Other events are returned as they are."""
    if ev.name != "IdentityBound" or "bindingProof" in ev.args:
        return ev
    from chain.identities import published_proof

    proof = published_proof(w3, ev.tx, bytes(ev.args["bindingProofHash"]))
    return replace(ev, args={**ev.args, "bindingProof": proof})


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log."""

    contract: str
    name: str
    args: dict[str, Any]  # decoded as web3 returns them (bytes, ints, checksum addresses, tuples)
    block: int
    tx: str  # 0x-prefixed transaction hash
    log_index: int
    address: str

    @property
    def uid(self) -> str:
        """Unique id of the event: transaction hash and log index."""
        return f"{self.tx}:{self.log_index}"

    @property
    def position(self) -> tuple[int, int]:
        return self.block, self.log_index


def plain(value: Any) -> Any:
    """JSON-friendly copy: bytes → 0x hex, tuples → lists, nested mappings kept."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@lru_cache(maxsize=65536)
def _checksummed(account: str) -> str:
    """``to_checksum_address`` memoised: a trail names the same few accounts in every entry."""
    return to_checksum_address(account)


def _named(value: Any, abi_input: dict[str, Any]) -> Any:
    """Give struct (tuple) arguments their component names."""
    if abi_input.get("type") == "tuple" and isinstance(value, (list, tuple)):
        return {c["name"]: _named(v, c) for v, c in zip(value, abi_input["components"])}
    return value


class LogDecoder:
    """Decodes raw logs of a deployment's contracts by ``(address, topic0)`` with each contract's ABI."""

    def __init__(self, w3: Web3, contracts: dict[str, Contract]):
        self.codec = w3.codec
        self.addresses = [c.address for c in contracts.values()]
        self._decoders: dict[tuple[str, bytes], tuple[str, dict[str, Any]]] = {}
        for name, c in contracts.items():
            for entry in c.abi:
                if entry.get("type") == "event" and not entry.get("anonymous"):
                    self._decoders[(c.address.lower(), event_abi_to_log_topic(entry))] = (name, entry)

    def decode(self, log: Any) -> ChainEvent | None:
        """The decoded event of ``log`` (a web3 log receipt), or None if no deployed ABI declares it."""
        if not log["topics"]:
            return None
        key = (log["address"].lower(), bytes(log["topics"][0]))
        found = self._decoders.get(key)
        if found is None:
            return None
        name, abi = found
        data = get_event_data(self.codec, abi, log)
        by_name = {i["name"]: i for i in abi["inputs"]}
        args = {k: _named(v, by_name[k]) for k, v in data["args"].items()}
        tx = log["transactionHash"]
        tx_hex = tx.to_0x_hex() if hasattr(tx, "to_0x_hex") else Web3.to_hex(tx)
        return ChainEvent(contract=name, name=abi["name"], args=args, block=int(log["blockNumber"]),
                          tx=tx_hex, log_index=int(log["logIndex"]), address=to_checksum_address(log["address"]))


class ChainReader:
    """All decoded events of one deployment, read once and kept in chain order."""

    def __init__(self, w3: Web3, deployment: dict[str, Any]):
        self.w3 = w3
        self.deployment = deployment
        self.chain_id = int(deployment.get("chainId") or w3.eth.chain_id)
        self.contracts: dict[str, Contract] = {name: bind(w3, deployment, name) for name in deployment["contracts"]}
        self.names_by_address = {c.address.lower(): name for name, c in self.contracts.items()}
        self.decoder = LogDecoder(w3, self.contracts)
        self._events: list[ChainEvent] | None = None
        self._times: dict[int, int] = {}
        self._head: int | None = None
        self._bindings: dict[str, list[tuple[tuple[int, int], Binding | None]]] | None = None
        self._proof_checks: dict[str, bool] = {}  # event uid -> published proof verifies (kept across refreshes)

    @classmethod
    def open(cls, settings: Any, *, start: bool = False) -> "ChainReader":
        """A reader over the chain and the deployment file that ``settings`` (:class:`chain.config.Settings`) name."""
        from chain.connection import connect
        from chain.deploy import read_deployment

        w3 = connect(settings, start=start)
        chain_id = w3.eth.chain_id
        return cls(w3, read_deployment(settings.deployment_path(chain_id), chain_id))

    # ------------------------------------------------------------------ events

    @property
    def events(self) -> list[ChainEvent]:
        if self._events is None:
            self.refresh()
        assert self._events is not None
        return self._events

    def refresh(self, *, full: bool = True) -> None:
        """(Re)read every log from the deployment block to the head (``full=False``: only the new blocks)."""
        start = int(self.deployment.get("block") or 0)
        out: list[ChainEvent] = []
        if not full and self._events is not None and self._head is not None:
            start, out = self._head + 1, list(self._events)
        head = self.w3.eth.block_number
        addresses = [c.address for c in self.contracts.values()]
        for lo in range(start, head + 1, LOG_CHUNK):
            hi = min(head, lo + LOG_CHUNK - 1)
            for log in self.w3.eth.get_logs({"fromBlock": lo, "toBlock": hi, "address": addresses}):
                ev = self._decode(log)
                if ev is not None:
                    out.append(ev)
        out.sort(key=lambda e: e.position)
        self._events = out
        self._head = head
        self._bindings = None

    def refresh_if_stale(self) -> None:
        """Re-read the logs if the chain has new blocks since the last read."""
        if self._events is None or self.w3.eth.block_number != self._head:
            self.refresh(full=False)

    def _decode(self, log: Any) -> ChainEvent | None:
        return self.decoder.decode(log)

    def select(self, contract: str | None = None, names: Iterable[str] | str | None = None,
               **match: Any) -> list[ChainEvent]:
        """Events of ``contract`` named ``names`` whose args equal ``match`` (a set value = any of)."""
        wanted = {names} if isinstance(names, str) else (set(names) if names is not None else None)
        out = []
        for ev in self.events:
            if contract is not None and ev.contract != contract:
                continue
            if wanted is not None and ev.name not in wanted:
                continue
            ok = True
            for k, v in match.items():
                have = ev.args.get(k)
                if isinstance(v, (set, frozenset)):
                    if have not in v:
                        ok = False
                        break
                elif have != v:
                    ok = False
                    break
            if ok:
                out.append(ev)
        return out

    # ------------------------------------------------------------------ context

    def block_time(self, block: int) -> int:
        if block not in self._times:
            self._times[block] = int(self.w3.eth.get_block(block)["timestamp"])
        return self._times[block]

    def _proof_verifies(self, ev: ChainEvent) -> bool:
        """True if the binding proof ``ev`` (an ``IdentityBound``) published is signed by its DID's
        key and by its account, for this chain (checked once per event)."""
        if ev.uid not in self._proof_checks:
            from did.binding import check_published_binding
            from did.errors import DidNotBound

            raw = with_published_proof(self.w3, ev).args.get("bindingProof")
            try:
                if raw is None:
                    raise DidNotBound("no binding proof in the bind transaction's input")
                check_published_binding(bytes(raw), did=ev.args["did"], address=ev.args["account"],
                                        chain_id=self.chain_id)
                ok = True
            except DidNotBound:
                ok = False
            self._proof_checks[ev.uid] = ok
        return self._proof_checks[ev.uid]

    def binding_of(self, account: str | None, at: tuple[int, int] | None = None) -> Binding | None:
        """The DID ``account`` was bound to at chain position ``at`` (latest when None), and
        whether its published binding proof verifies; None if unbound then."""
        if not account:
            return None
        account = _checksummed(account)
        if self._bindings is None:
            index: dict[str, list[tuple[tuple[int, int], Binding | None]]] = {}
            for ev in self.select("IdentityRegistry", "IdentityBound"):
                index.setdefault(ev.args["account"], []).append(
                    (ev.position, Binding(ev.args["did"], self._proof_verifies(ev))))
            self._bindings = index
        found = None
        for pos, bound in self._bindings.get(account, []):
            if at is not None and pos > at:
                break
            found = bound
        return found

    def did_of(self, account: str | None, at: tuple[int, int] | None = None) -> str | None:
        """How the trail names ``account`` at chain position ``at`` (latest binding when None): the
        DID it was bound to if the binding proof verifies, else ``unverified:<did>``; a
        contract's name or the deployment roles for unbound accounts; None otherwise."""
        if not account:
            return None
        binding = self.binding_of(account, at)
        if binding is not None:
            return binding.shown
        if account.lower() in self.names_by_address:
            return f"contract:{self.names_by_address[account.lower()]}"
        roles = [r for r, a in (self.deployment.get("roles") or {}).items() if str(a).lower() == account.lower()]
        return "role:" + "+".join(sorted(roles)) if roles else None

    def asset_ids(self) -> list[int]:
        return [ev.args["assetId"] for ev in self.select("AssetRegistry", "AssetRegistered")]


def iso_time(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")
