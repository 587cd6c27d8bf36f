"""The index's workflow, collaboration, payment and node tables against the contracts' own views
(three banks, a consumer with PSI+MPC grants, three compute nodes): a collaboration completed, one
failed, one cancelled, a Jobs workflow stopped, heartbeats and a disabled node. The tables equal
what the chain says now; a reorg rolls them back; a rebuild from empty gives the same digest."""
from __future__ import annotations

import pytest
from eth_utils import keccak
from sqlalchemy import select

from audit.index import EventIndex
from audit.index_entities import EntityReads
from audit.index_tables import (
    collab_uses,
    digest,
    grants,
    nodes,
    payments,
    workflow_steps,
    workflows,
)
from chain import collab as cc
from chain.accounts import dev_account
from chain.ops import MPC, PSI
from offchain.store.client import EmbeddedStore
from tds.collab_world import BANKS, PRICE, build_collab_world
from tests.support.chains import private_chain

STATUS = {cc.StepStatus.PENDING: "pending", cc.StepStatus.OPEN: "open", cc.StepStatus.COMPLETED: "completed",
          cc.StepStatus.FAILED: "failed", cc.StepStatus.CANCELLED: "cancelled"}
COLLAB = {cc.CollabStatus.RUNNING: "running", cc.CollabStatus.COMPLETED: "completed",
          cc.CollabStatus.TERMINATED: "terminated"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with private_chain(tmp_path_factory.mktemp("index-flows")) as (settings, space):
        yield build_collab_world(space, EmbeddedStore(settings.home / "store"), dev_account(0), rows=8, common=3)


def _request(w, steps: list[tuple[int, int, list[str], list[str]]]) -> int:
    """steps: (operation, depends-on mask, banks, nodes); the value is every grant's price."""
    reqs = [cc.StepRequest(op, dep, i == len(steps) - 1, keccak(text=f"params-{i}-{len(steps)}"),
                           tuple(w.grants[b] for b in banks), tuple(w.nodes[n].address for n in nodes_))
            for i, (op, dep, banks, nodes_) in enumerate(steps)]
    total = sum(PRICE * (1 + BANKS.index(b)) for _, _, banks, _ in steps for b in banks)
    return cc.request_collaboration(w.space, w.consumer.account, keccak(text=f"d{len(steps)}{w.space.now()}"), reqs,
                                    3600, total)


def _play(w) -> dict[str, int]:
    s, n1 = w.space, w.nodes["node-1"].account
    done = _request(w, [(PSI, 0, ["bank-a", "bank-b"], ["node-1"]),
                        (MPC, 1, ["bank-a", "bank-b", "bank-c"], ["node-1", "node-2", "node-3"])])
    cc.complete_step(s, n1, done, 0, keccak(text="psi result"))
    cc.complete_step(s, n1, done, 1, keccak(text="mpc result"), b"\x01\x55\x12\x20" + keccak(text="sealed"))
    failed = _request(w, [(MPC, 0, ["bank-a", "bank-c"], ["node-1", "node-2", "node-3"])])
    cc.fail_step(s, n1, failed, 0, 0x101)  # a node fault: uses given back
    cancelled = _request(w, [(PSI, 0, ["bank-b", "bank-c"], ["node-1"]), (MPC, 1, ["bank-b"], ["node-2"])])
    s.w3.provider.make_request("evm_increaseTime", [3700])  # the open step's deadline passes: cancel may stop it
    s.w3.provider.make_request("evm_mine", [])
    cc.cancel(s, w.consumer.account, cancelled)
    cc.heartbeat(s, w.nodes["node-2"].account)
    s.send(w.operator, s.c["NodeRegistry"].functions.disableNode(w.nodes["node-3"].address, 9))
    jobs = s.c["Jobs"]
    r = s.send(w.consumer.account, jobs.functions.requestWorkflow(
        w.grants["bank-a"], [MPC, MPC], [keccak(text="w0"), keccak(text="w1")], 3600), value=2 * PRICE)
    flow = jobs.events.WorkflowRequested().process_receipt(r)[0]["args"]["workflowId"]
    first = jobs.events.WorkflowStepOpened().process_receipt(r)[0]["args"]["jobId"]
    s.send(n1, jobs.functions.acceptJob(first))
    s.send(n1, jobs.functions.failJob(first, 7))
    return {"done": done, "failed": failed, "cancelled": cancelled, "flow": flow, "job": first}


@pytest.fixture(scope="module")
def played(world, tmp_path_factory):
    ids = _play(world)
    idx = EventIndex(world.space.w3, world.space.deployment,
                     f"sqlite:///{tmp_path_factory.mktemp('idx') / 'i.sqlite'}", max_range=4)
    idx.catch_up()
    return ids, idx


def test_collaborations_and_steps_equal_the_contract(world, played):
    ids, idx = played
    s = world.space
    with idx.engine.connect() as conn:
        for key in ("done", "failed", "cancelled"):
            cid = ids[key]
            row = conn.execute(select(workflows).where(workflows.c.kind == "collaboration",
                                                       workflows.c.workflow_id == cid)).one()
            assert row.status == COLLAB[cc.collaboration(s, cid)["status"]], key
            steps = conn.execute(select(workflow_steps).where(workflow_steps.c.workflow_id == cid,
                                                              workflow_steps.c.kind == "collaboration")
                                 .order_by(workflow_steps.c.step)).all()
            chain_steps = cc.steps_of(s, cid)
            assert [x.status for x in steps] == [STATUS[v.status] for v in chain_steps], key
            assert [x.result_hash for x in steps if x.status == "completed"] == [
                "0x" + v.result_hash.hex() for v in chain_steps if v.status == cc.StepStatus.COMPLETED]
        reason = select(workflows.c.reason_code).where(workflows.c.workflow_id == ids["failed"],
                                                       workflows.c.kind == "collaboration")
        assert conn.execute(reason).scalar() == 0x101
        assert len(conn.execute(select(collab_uses).where(collab_uses.c.collab_id == ids["done"])).all()) == 5
        for g in conn.execute(select(grants)):  # uses consumed by steps, and given back on failure / cancel
            assert g.uses == s.c["Authorizations"].functions.grantOf(g.grant_id).call()[1]
        shares = {p.share for p in conn.execute(select(payments).where(payments.c.contract == "Collaborations"))}
        assert {"provider", "compute-provider", "operator", "refund"} <= shares


def test_jobs_workflow_and_nodes_equal_the_contract(world, played):
    ids, idx = played
    with idx.engine.connect() as conn:
        flow = conn.execute(select(workflows).where(workflows.c.kind == "jobs")).one()
        assert (flow.workflow_id, flow.status, flow.step_count) == (ids["flow"], "stopped", 2)
        steps = conn.execute(select(workflow_steps).where(workflow_steps.c.kind == "jobs")
                             .order_by(workflow_steps.c.step)).all()
        assert [(x.status, x.job_id) for x in steps] == [("failed", ids["job"]), ("cancelled", None)]
        found = {r.address: r for r in conn.execute(select(nodes))}
    for rec in cc.list_nodes(world.space):
        row = found[rec.address]
        assert row.state == ("active" if rec.active else "disabled") and row.name == rec.name
        assert (row.last_heartbeat or 0) == (rec.last_heartbeat if row.last_heartbeat else 0)
    assert found[world.nodes["node-2"].address].last_heartbeat is not None
    assert found[world.nodes["node-3"].address].reason_code == 9


def test_collaboration_read_and_unknown(world, played):
    ids, idx = played
    reads = EntityReads(world.space.w3, world.space.deployment, idx.engine)
    _, c = reads.collaboration(ids["done"])
    assert c["status"] == "completed" and [s["status"] for s in c["steps"]] == ["completed", "completed"]
    assert c["steps"][1]["resultHash"] == "0x" + keccak(text="mpc result").hex()
    assert {h["action"] for h in c["history"]} >= {"request-collaboration", "collab-step-complete"}
    assert reads.collaboration(999)[1] is None and reads.grant(999)[1] is None
    _, g = reads.grant(world.grants["bank-a"])
    assert {u["collaborationId"] for u in g["collaborationUses"]} == {ids["done"], ids["failed"]}


def test_reorg_rolls_back_and_rebuild_gives_the_same_digest(world, played, tmp_path):
    _, idx = played
    s, w3 = world.space, world.space.w3
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    late = _request(world, [(PSI, 0, ["bank-a", "bank-b"], ["node-1"])])
    cc.heartbeat(s, world.nodes["node-1"].account)
    idx.catch_up()
    before_revert = digest(idx.engine)
    w3.provider.make_request("evm_revert", [snap])
    for _ in range(4):
        w3.provider.make_request("evm_mine", [])
    idx.catch_up()
    with idx.engine.connect() as conn:
        assert conn.execute(select(workflows).where(workflows.c.workflow_id == late,
                                                    workflows.c.kind == "collaboration")).first() is None
        assert conn.execute(select(nodes.c.last_heartbeat).where(
            nodes.c.address == world.nodes["node-1"].address)).scalar() is None
    fresh = EventIndex(w3, s.deployment, f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    fresh.catch_up()
    assert digest(idx.engine) == digest(fresh.engine) != before_revert
