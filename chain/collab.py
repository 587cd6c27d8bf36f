"""The Python side of Collaborations and NodeRegistry: register and watch nodes, start a
collaboration DAG, and report or read its steps. Pure wrappers over one transaction or call each;
the description file that produces the step requests lives in ``oracle.collab.description``."""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from chain.errors import TdsError
from chain.revert import describe_revert
from chain.space import Space
from web3.exceptions import ContractCustomError


class NodeKind(IntEnum):
    NONE = 0
    COMPUTE = 1
    PARTY = 2


class StepStatus(IntEnum):
    NONE = 0
    PENDING = 1
    OPEN = 2
    COMPLETED = 3
    FAILED = 4
    CANCELLED = 5


class CollabStatus(IntEnum):
    NONE = 0
    RUNNING = 1
    COMPLETED = 2
    TERMINATED = 3


@dataclass(frozen=True)
class StepRequest:
    """One step as ``requestCollaboration`` takes it (indexes in topological order)."""

    operation: int
    depends_on: int  # bitmask of earlier step indexes
    output: bool
    params_hash: bytes
    grant_ids: tuple[int, ...]
    nodes: tuple[str, ...]  # nodes[0] coordinates

    def as_tuple(self) -> tuple:
        return (self.operation, self.depends_on, self.output, self.params_hash, list(self.grant_ids),
                list(self.nodes))


@dataclass(frozen=True)
class NodeRecord:
    address: str
    kind: NodeKind
    state: int  # 1 active, 2 disabled
    registered_at: int
    last_heartbeat: int
    did_hash: bytes
    key_agreement_key: bytes
    name: str
    endpoint: str

    @property
    def active(self) -> bool:
        return self.state == 1


@dataclass(frozen=True)
class StepView:
    index: int
    status: StepStatus
    operation: int
    depends_on: int
    output: bool
    deadline: int
    amount: int
    params_hash: bytes
    result_hash: bytes
    grant_ids: tuple[int, ...]
    nodes: tuple[str, ...]


# nodes ------------------------------------------------------------------------------------
def add_node(space: Space, operator: LocalAccount, node: str, kind: NodeKind, name: str, endpoint: str) -> Any:
    """The operator registers ``node`` (an account already bound to a DID: its current identity,
    read from its ``IdentityBound``, is passed and checked against the registry's commitment)."""
    ident = space.identity(node)
    fields = ident.fields if ident is not None else (b"\0" * 32,) * 4  # NodeIdentityMissing on chain
    return space.send(operator, space.c["NodeRegistry"].functions.addNode(node, int(kind), name, endpoint, fields))


def heartbeat(space: Space, node: LocalAccount) -> Any:
    return space.send(node, space.c["NodeRegistry"].functions.heartbeat())


def node_of(space: Space, address: str) -> NodeRecord:
    r = space.c["NodeRegistry"].functions.nodeOf(address).call()
    return NodeRecord(address, NodeKind(r[0]), r[1], r[2], r[3], bytes(r[4]), bytes(r[5]), r[6], r[7])


def list_nodes(space: Space) -> list[NodeRecord]:
    return [node_of(space, a) for a in space.c["NodeRegistry"].functions.nodes().call()]


def heartbeat_interval(space: Space) -> int:
    return space.c["NodeRegistry"].functions.heartbeatInterval().call()


# collaborations ---------------------------------------------------------------------------
def request_collaboration(space: Space, initiator: LocalAccount, description_hash: bytes,
                          steps: list[StepRequest], step_timeout: int, value: int) -> int:
    """Start a collaboration (one transaction: every grant consumed, ``value`` escrowed)."""
    c = space.c["Collaborations"]
    r = space.send(initiator, c.functions.requestCollaboration(
        description_hash, [s.as_tuple() for s in steps], step_timeout), value=value)
    return c.events.CollaborationRequested().process_receipt(r, errors=DISCARD)[0]["args"]["id"]


def complete_step(space: Space, coordinator: LocalAccount, collab_id: int, step: int, result_hash: bytes,
                  result_cid: bytes = b"") -> Any:
    return space.send(coordinator, space.c["Collaborations"].functions.completeStep(
        collab_id, step, result_hash, result_cid))


def fail_step(space: Space, coordinator: LocalAccount, collab_id: int, step: int, reason: int) -> Any:
    return space.send(coordinator, space.c["Collaborations"].functions.failStep(collab_id, step, reason))


def cancel(space: Space, initiator: LocalAccount, collab_id: int) -> Any:
    return space.send(initiator, space.c["Collaborations"].functions.cancel(collab_id))


class StepRefused(TdsError):
    """The chain refuses a contribution to a step (the named custom error says why)."""


def check_step(space: Space, collab_id: int, step: int, grant_id: int) -> None:
    """Raise :class:`StepRefused` (with the decoded custom error) unless the grant may contribute
    to this open step now."""
    try:
        space.c["Collaborations"].functions.checkStep(collab_id, step, grant_id).call()
    except ContractCustomError as exc:
        raise StepRefused(describe_revert(exc.data)) from None


def collaboration(space: Space, collab_id: int) -> dict[str, Any]:
    r = space.c["Collaborations"].functions.collaborationOf(collab_id).call()
    return {"initiator": r[0], "status": CollabStatus(r[1]), "step_count": r[2], "completed_mask": r[3],
            "step_timeout": r[4], "payment_token": r[5], "description_hash": bytes(r[6])}


def step_of(space: Space, collab_id: int, index: int) -> StepView:
    s, grants, nodes = space.c["Collaborations"].functions.stepOf(collab_id, index).call()
    return StepView(index, StepStatus(s[0]), s[1], s[2], s[3], s[4], s[5], bytes(s[6]), bytes(s[7]),
                    tuple(grants), tuple(nodes))


def steps_of(space: Space, collab_id: int) -> list[StepView]:
    n = collaboration(space, collab_id)["step_count"]
    return [step_of(space, collab_id, i) for i in range(n)]


def step_results(space: Space, collab_id: int) -> dict[int, dict[str, Any]]:
    """StepCompleted events of ``collab_id`` by step: coordinator, result hash, result CID bytes."""
    logs = space.c["Collaborations"].events.StepCompleted().get_logs(
        from_block=space.deployment["block"], argument_filters={"id": collab_id})
    return {e["args"]["step"]: dict(e["args"]) for e in logs}
