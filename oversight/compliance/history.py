"""Where a compliance scan reads the chain's history and current state from: the node
(:class:`ChainHistory`: ``eth_getLogs`` from the deployment block and contract views at the head)
or the shared event index (:class:`oversight.compliance.facts_index.IndexHistory`: the stored events
and state tables at one indexed block). Both answer the same questions with the same values, so
:func:`oversight.compliance.facts.gather_from` builds equal facts from either.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from web3.exceptions import ContractLogicError

from chain.system import role_id

ASSET_STATES = ("none", "active", "frozen", "offline", "pending", "rejected")
GRANT_STATES = ("none", "active", "revoked", "closed")
JOB_STATES = ("none", "requested", "accepted", "completed", "failed", "reclaimed", "cancelled", "released")
NODE_KINDS = ("none", "compute node", "party node")
ZERO32 = b"\0" * 32


@dataclass(frozen=True)
class Logged:
    """One event as the scan reads it: its decoded arguments and ``<tx>:<log index>``."""

    args: Mapping[str, Any]
    evidence: str


@dataclass(frozen=True)
class NodeState:
    kind: str          # one of NODE_KINDS
    active: bool
    name: str
    endpoint: str


class History(Protocol):
    """What the fact gatherers ask; every answer is as of :meth:`head`."""

    def head(self) -> tuple[int, int]:
        """(block, timestamp) the facts are read at."""

    def logs(self, contract: str, event: str, **match: Any) -> list[Logged]:
        """The events ``contract.event`` since the deployment, in chain order, whose arguments
        equal ``match`` (indexed arguments only)."""

    def asset(self, asset_id: int) -> tuple[str, str | None]:
        """(state, holder) of a certificate now (holder None when the state is ``none``)."""

    def grant_status(self, grant_id: int) -> str:
        """One of GRANT_STATES."""

    def job_status(self, job_id: int) -> str:
        """One of JOB_STATES."""

    def node(self, address: str) -> NodeState | None:
        """A NodeRegistry node now, or None if it is not (or no longer) registered."""

    def consumer_credential(self, address: str) -> str | None:
        """``0x`` hash of the credential behind ``address``'s CONSUMER role, or None."""


def evidence_of(e: Any) -> str:
    """``<tx>:<log index>`` of a web3 log entry."""
    return f"{e['transactionHash'].to_0x_hex()}:{e['logIndex']}"


class ChainHistory:
    """The node's answers: logs from ``from_block`` and contract views at the latest block."""

    def __init__(self, w3: Any, contracts: dict[str, Any], from_block: int):
        self.c, self.from_block = contracts, from_block
        latest = w3.eth.get_block("latest")
        self._head = (int(latest["number"]), int(latest["timestamp"]))

    def head(self) -> tuple[int, int]:
        return self._head

    def logs(self, contract: str, event: str, **match: Any) -> list[Logged]:
        found = self.c[contract].events[event]().get_logs(from_block=self.from_block, argument_filters=match or None)
        return [Logged(e["args"], evidence_of(e)) for e in found]

    def asset(self, asset_id: int) -> tuple[str, str | None]:
        reg = self.c["AssetRegistry"]
        state = ASSET_STATES[int(reg.functions.stateOf(asset_id).call())]
        return state, (reg.functions.ownerOf(asset_id).call() if state != "none" else None)

    def grant_status(self, grant_id: int) -> str:
        return GRANT_STATES[int(self.c["Authorizations"].functions.grantOf(grant_id).call()[4])]

    def job_status(self, job_id: int) -> str:
        return JOB_STATES[int(self.c["Jobs"].functions.jobOf(job_id).call()[0][3])]

    def node(self, address: str) -> NodeState | None:
        try:
            n = self.c["NodeRegistry"].functions.nodeOf(address).call()
        except ContractLogicError:     # UnknownNode: removed since it was added
            return None
        if int(n[0]) == 0:
            return None
        return NodeState(NODE_KINDS[int(n[0])], int(n[1]) == 1, str(n[6]), str(n[7]))

    def consumer_credential(self, address: str) -> str | None:
        h, _until = self.c["IdentityRegistry"].functions.roleCredential(address, role_id("CONSUMER")).call()
        return "0x" + bytes(h).hex() if bytes(h) != ZERO32 else None
