"""Collaborations: one request consumes a grant on every asset of every step (several providers),
in one transaction; steps open along the DAG; completion anchors each step's result hash and pays
each grant at its own price; a failure or a late cancel terminates with refunds; NodeRegistry."""
import brownie
import pytest
from brownie import Collaborations, NodeRegistry, chain

from conftest import DET_EQ, HOM_AGG, MPC, PRICE, ROLES, SPLIT, ZERO, H, identity_of, mint_params, now, reverts, terms

PSI = 64
COMPUTE, PARTY = 1, 2
PENDING, OPEN, DONE, FAILED, CANCELLED = 1, 2, 3, 4, 5
RUNNING, COMPLETED, TERMINATED = 1, 2, 3
CID = b"\x12\x20" + b"\x55" * 32


@pytest.fixture(scope="module")
def space(system):
    """NodeRegistry + Collaborations on the module's system; two providers' assets; two compute nodes."""
    c, op = system.cast, system.cast.operator
    nodes = NodeRegistry.deploy(op, system.identity, 600, {"from": op})
    collab = Collaborations.deploy(system.identity, system.auth, system.assets, nodes, op, {"from": op})
    system.auth.grantRole(ROLES["JOBS"], collab, {"from": op})
    tid = system.templates.publish("joint", b"\x12\x20" + b"\x66" * 32, H("joint terms"), 1 | 2, 127, SPLIT,
                                   {"from": op}).return_value
    a1 = system.assets.mint(mint_params(tid), {"from": c.provider}).return_value
    a2 = system.assets.mint(mint_params(tid, cid=b"\x12\x20" + b"\x77" * 32), {"from": c.provider2}).return_value
    nodes.addNode(c.oracle, COMPUTE, "node-a", "https://node-a.example", identity_of(c.oracle), {"from": op})
    nodes.addNode(c.oracle2, COMPUTE, "node-b", "https://node-b.example", identity_of(c.oracle2), {"from": op})
    return dict(system=system, nodes=nodes, collab=collab, assets=(a1, a2))


def grants(space, uses=3, ops=PSI | MPC, price=PRICE):
    s, (a1, a2) = space["system"], space["assets"]
    g1 = s.auth.grant(terms(s, assetId=a1, operations=ops, maxUses=uses, pricePerUse=price),
                      {"from": s.cast.provider}).return_value
    g2 = s.auth.grant(terms(s, assetId=a2, operations=ops, maxUses=uses, pricePerUse=2 * price),
                      {"from": s.cast.provider2}).return_value
    return g1, g2


def dag(space, g1, g2):
    """PSI over both assets → joint statistics over the intersection (output)."""
    c = space["system"].cast
    return [(PSI, 0, False, H("psi params"), [g1, g2], [c.oracle]),
            (MPC, 1, True, H("stats params"), [g1, g2], [c.oracle, c.oracle2])]


def start(space, steps, value=None, sender=None):
    c = space["system"].cast
    value = 6 * PRICE if value is None else value
    return space["collab"].requestCollaboration(H("description"), steps, 3600,
                                                {"from": sender or c.consumer, "value": value})


# ---------------------------------------------------------------- holding

def test_request_consumes_every_grant_escrows_and_opens_roots(space):
    s, collab = space["system"], space["collab"]
    g1, g2 = grants(space)
    tx = start(space, dag(space, g1, g2))
    cid = tx.return_value
    assert s.auth.grantOf(g1)["uses"] == 2 and s.auth.grantOf(g2)["uses"] == 2
    assert collab.balance() == 6 * PRICE
    consumed = tx.events["StepGrantConsumed"]
    assert [(e["step"], e["grantId"], e["price"]) for e in consumed] == [
        (0, g1, PRICE), (0, g2, 2 * PRICE), (1, g1, PRICE), (1, g2, 2 * PRICE)]
    opened = tx.events["StepOpened"]
    assert len(opened) == 1 and opened[0]["step"] == 0 and opened[0]["nodes"] == [s.cast.oracle]
    assert collab.stepOf(cid, 0)[0]["status"] == OPEN and collab.stepOf(cid, 1)[0]["status"] == PENDING
    assert collab.collaborationOf(cid)["paymentToken"] == ZERO


def test_steps_complete_along_the_dag_and_pay_each_grant(space):
    s, collab = space["system"], space["collab"]
    c = s.cast
    g1, g2 = grants(space)
    cid = start(space, dag(space, g1, g2)).return_value
    collab.checkStep(cid, 0, g1)
    tx = collab.completeStep(cid, 0, H("intersection"), b"", {"from": c.oracle})
    assert tx.events["StepCompleted"]["resultHash"] == H("intersection")
    assert tx.events["StepOpened"]["step"] == 1
    # step 0 paid: each grant at its price and split; compute share to the coordinator
    assert collab.balanceOf(c.provider, ZERO) == PRICE * (SPLIT[0]) // 10_000
    assert collab.balanceOf(c.provider2, ZERO) == 2 * PRICE * SPLIT[0] // 10_000
    assert collab.balanceOf(c.oracle, ZERO) == 3 * PRICE * SPLIT[2] // 10_000
    with reverts("NotStepCoordinator", cid, 1, c.oracle2):
        collab.completeStep(cid, 1, H("stats"), CID, {"from": c.oracle2})
    tx = collab.completeStep(cid, 1, H("stats"), CID, {"from": c.oracle})
    assert "CollaborationCompleted" in tx.events
    assert collab.collaborationOf(cid)["status"] == COMPLETED
    assert collab.balanceOf(c.provider, ZERO) == 2 * PRICE * SPLIT[0] // 10_000
    assert collab.balance() == sum(collab.balanceOf(a, ZERO) for a in (c.provider, c.provider2, c.oracle,
                                                                        c.algorithm, c.operator))
    before = c.provider2.balance()
    collab.withdraw(ZERO, {"from": c.provider2})
    assert c.provider2.balance() - before == 4 * PRICE * SPLIT[0] // 10_000


# ---------------------------------------------------------------- refusing

def test_a_refusing_grant_reverts_the_whole_request_naming_it(space):
    s, collab = space["system"], space["collab"]
    g1, g2 = grants(space)
    s.auth.freeze(g2, 7, {"from": s.cast.provider2})
    with pytest.raises(brownie.exceptions.VirtualMachineError) as err:
        start(space, dag(space, g1, g2))
    assert err.value.revert_msg.startswith(f"GrantRefused: 0, {g2},")
    assert s.auth.grantOf(g1)["uses"] == 0  # nothing consumed
    other = s.auth.grant(terms(s, assetId=space["assets"][0], operations=PSI | MPC, consumer=s.cast.consumer2),
                         {"from": s.cast.provider}).return_value
    with pytest.raises(brownie.exceptions.VirtualMachineError) as err:
        start(space, [(PSI, 0, True, H("p"), [g1, other], [s.cast.oracle])], value=2 * PRICE)
    assert err.value.revert_msg.startswith(f"GrantRefused: 0, {other},")
    only_agg = s.auth.grant(terms(s, assetId=space["assets"][0], operations=DET_EQ | HOM_AGG),
                            {"from": s.cast.provider}).return_value
    with pytest.raises(brownie.exceptions.VirtualMachineError) as err:
        start(space, [(PSI, 0, True, H("p"), [only_agg], [s.cast.oracle])], value=PRICE)
    assert err.value.revert_msg.startswith(f"GrantRefused: 0, {only_agg},")


def test_dag_shape_nodes_and_payment_are_checked(space):
    s = space["system"]
    c = s.cast
    g1, g2 = grants(space)
    with reverts("StepDependsOnLater", 0, 2):  # a step may only read earlier steps: no cycle is expressible
        start(space, [(PSI, 2, False, H("a"), [g1], [c.oracle]), (MPC, 1, True, H("b"), [g2], [c.oracle])])
    with reverts("StepDependsOnLater", 1, 2):  # itself
        start(space, [(PSI, 0, False, H("a"), [g1], [c.oracle]), (MPC, 2, True, H("b"), [g2], [c.oracle])])
    with reverts("ComputeNodeNotActive", 0, c.consumer2):
        start(space, [(PSI, 0, True, H("a"), [g1], [c.consumer2])], value=PRICE)
    with reverts("DuplicateGrant", 0, g1):
        start(space, [(PSI, 0, True, H("a"), [g1, g1], [c.oracle])], value=2 * PRICE)
    with reverts("TooManyGrants", 0, 0):
        start(space, [(PSI, 0, True, H("a"), [], [c.oracle])], value=0)
    with reverts("InvalidCollaboration", 0):
        start(space, [], value=0)
    with reverts("WrongPaymentAmount", 6 * PRICE, PRICE):
        start(space, dag(space, g1, g2), value=PRICE)
    space["nodes"].disableNode(c.oracle2, 3, {"from": c.operator})
    with reverts("ComputeNodeNotActive", 1, c.oracle2):
        start(space, dag(space, g1, g2))


def test_intermediate_results_are_not_published_and_frozen_grants_block_completion(space):
    s, collab = space["system"], space["collab"]
    c = s.cast
    g1, g2 = grants(space)
    cid = start(space, dag(space, g1, g2)).return_value
    with reverts("IntermediateResultPublished", cid, 0):
        collab.completeStep(cid, 0, H("x"), CID, {"from": c.oracle})
    with reverts("EmptyStepResult", cid, 0):
        collab.completeStep(cid, 0, "0x" + "00" * 32, b"", {"from": c.oracle})
    with reverts("StepNotOpen", cid, 1, PENDING):
        collab.completeStep(cid, 1, H("x"), CID, {"from": c.oracle})
    s.auth.freeze(g1, 9, {"from": c.provider})
    with reverts("GrantIsFrozen"):
        collab.completeStep(cid, 0, H("x"), b"", {"from": c.oracle})
    with reverts("GrantIsFrozen"):
        collab.checkStep(cid, 0, g1)
    with reverts("GrantNotInStep", cid, 0, 999):
        collab.checkStep(cid, 0, 999)


def test_a_failed_step_terminates_refunds_and_gives_uses_back(space):
    s, collab = space["system"], space["collab"]
    c = s.cast
    g1, g2 = grants(space)
    cid = start(space, dag(space, g1, g2)).return_value
    collab.completeStep(cid, 0, H("intersection"), b"", {"from": c.oracle})
    with reverts("NotStepCoordinator", cid, 1, c.consumer):
        collab.failStep(cid, 1, 0x101, {"from": c.consumer})
    tx = collab.failStep(cid, 1, 0x101, {"from": c.oracle})  # a node fault: uses come back
    ev = tx.events["CollaborationTerminated"]
    assert (ev["id"], ev["step"], ev["reasonCode"], ev["refund"]) == (cid, 1, 0x101, 3 * PRICE)
    assert collab.balanceOf(c.consumer, ZERO) == 3 * PRICE
    assert s.auth.restoredUses(g1) == 1 and s.auth.restoredUses(g2) == 1
    assert collab.collaborationOf(cid)["status"] == TERMINATED
    with reverts("CollaborationNotRunning", cid, TERMINATED):
        collab.completeStep(cid, 1, H("x"), CID, {"from": c.oracle})


def test_consumer_fault_keeps_the_failed_steps_uses_but_refunds_the_rest(space):
    s, collab = space["system"], space["collab"]
    c = s.cast
    g1, g2 = grants(space)
    cid = start(space, dag(space, g1, g2)).return_value
    tx = collab.failStep(cid, 0, 3, {"from": c.oracle})  # e.g. below the minimum group size
    assert tx.events["CollaborationTerminated"]["refund"] == 6 * PRICE
    assert s.auth.restoredUses(g1) == 1  # step 1 never ran; step 0 ran and refused
    assert collab.stepOf(cid, 1)[0]["status"] == CANCELLED and collab.stepOf(cid, 0)[0]["status"] == FAILED


def test_cancel_only_after_the_open_steps_deadline(space):
    s, collab = space["system"], space["collab"]
    c = s.cast
    g1, g2 = grants(space)
    cid = start(space, dag(space, g1, g2)).return_value
    deadline = collab.stepOf(cid, 0)[0]["deadline"]
    with reverts("StepStillRunning", cid, 0, deadline):
        collab.cancel(cid, {"from": c.consumer})
    chain.sleep(3601)
    chain.mine()
    with reverts("NotInitiator", cid, c.consumer2):
        collab.cancel(cid, {"from": c.consumer2})
    with reverts("StepDeadlinePassed", cid, 0, deadline):
        collab.completeStep(cid, 0, H("late"), b"", {"from": c.oracle})
    tx = collab.cancel(cid, {"from": c.consumer})
    assert tx.events["CollaborationTerminated"]["refund"] == 6 * PRICE
    assert s.auth.restoredUses(g1) == 2


# ---------------------------------------------------------------- node registry

def test_node_registry_add_heartbeat_flag_disable_remove(space):
    nodes, s = space["nodes"], space["system"]
    c = s.cast
    n = nodes.nodeOf(c.oracle)
    assert n["name"] == "node-a" and n["kind"] == COMPUTE and n["didHash"] == identity_of(c.oracle)[0]
    assert n["keyAgreementKey"] == identity_of(c.oracle)[2]
    assert nodes.isLive(c.oracle)
    chain.sleep(601)
    chain.mine()
    assert not nodes.isLive(c.oracle)  # missed heartbeats: flagged
    tx = nodes.heartbeat({"from": c.oracle})
    assert "NodeHeartbeat" in tx.events and nodes.isLive(c.oracle)
    nodes.setEndpoint("https://moved.example", {"from": c.oracle})
    assert nodes.nodeOf(c.oracle)["endpoint"] == "https://moved.example"
    nodes.disableNode(c.oracle, 4, {"from": c.operator})
    with reverts("NodeNotActive", c.oracle, 2):
        nodes.heartbeat({"from": c.oracle})
    nodes.enableNode(c.oracle, {"from": c.operator})
    nodes.removeNode(c.oracle, {"from": c.operator})
    with reverts("UnknownNode", c.oracle):
        nodes.nodeOf(c.oracle)
    assert list(nodes.nodes()) == [c.oracle2]


def test_node_registry_refuses(space):
    nodes, c = space["nodes"], space["system"].cast
    with reverts("NodeIdentityMissing", c.monitor):  # no DID bound
        nodes.addNode(c.monitor, COMPUTE, "m", "", identity_of(c.oracle), {"from": c.operator})
    forged = identity_of(c.provider)[:2] + (H("another key"),) + identity_of(c.provider)[3:]
    with reverts("IdentityMismatch", c.provider):  # a key the provider never bound
        nodes.addNode(c.provider, PARTY, "p", "", forged, {"from": c.operator})
    with reverts("IdentityMismatch", c.provider):  # another account's identity
        nodes.addNode(c.provider, PARTY, "p", "", identity_of(c.oracle), {"from": c.operator})
    with reverts("AccessControlUnauthorizedAccount"):
        nodes.addNode(c.provider, PARTY, "p", "", identity_of(c.provider), {"from": c.provider})
    with reverts("NodeExists", c.oracle):
        nodes.addNode(c.oracle, COMPUTE, "again", "", identity_of(c.oracle), {"from": c.operator})
    with reverts("InvalidNodeKind", 0):
        nodes.addNode(c.provider, 0, "p", "", identity_of(c.provider), {"from": c.operator})
    with reverts("UnknownNode", c.provider):
        nodes.heartbeat({"from": c.provider})
    with reverts("InvalidHeartbeatInterval", 0):
        nodes.setHeartbeatInterval(0, {"from": c.operator})
