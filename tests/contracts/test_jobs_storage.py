"""A job's storage is one slot (the grant id is the job id's upper bits, the amount the grant's
immutable price, a workflow step's place kept apart): jobOf still answers the JobCore/JobExec
records the Python side reads, field for field, for a plain job and a workflow step, through each
state; an unknown job is refused."""
from brownie import chain

from conftest import DET_EQ, HOM_AGG, PRICE, H, grant_direct, now, release, reverts

REQUESTED, ACCEPTED, COMPLETED, RELEASED = 1, 2, 3, 7


def test_job_of_reassembles_the_records_of_a_plain_job(system):
    c = system.cast
    gid = grant_direct(system, maxUses=4)
    deadline = now() + 3600
    jid = system.jobs.requestJob(gid, HOM_AGG, H("params"), deadline, {"from": c.consumer, "value": PRICE}).return_value
    core, exe = system.jobs.jobOf(jid)
    assert tuple(core) == (gid, PRICE, deadline, REQUESTED, HOM_AGG)
    assert tuple(exe) == ("0x" + "00" * 20, 0, 0, 0)
    tx = system.jobs.acceptJob(jid, {"from": c.oracle})
    accepted_at = chain[tx.block_number].timestamp
    assert tuple(system.jobs.jobOf(jid)[1]) == (c.oracle, accepted_at, 0, 0)
    chain.sleep(5)
    tx = release(system, jid)
    core, exe = system.jobs.jobOf(jid)
    assert core["status"] == RELEASED and core["deadline"] == deadline and core["amount"] == PRICE
    assert exe["acceptedAt"] == chain[tx.block_number].timestamp > accepted_at  # now: when released


def test_job_of_reassembles_a_workflow_step_and_refuses_unknown_jobs(system):
    c = system.cast
    gid = grant_direct(system, maxUses=4)
    tx = system.jobs.requestWorkflow(gid, [DET_EQ, HOM_AGG], [H("s0"), H("s1")], 600,
                                     {"from": c.consumer, "value": 2 * PRICE})
    wid = tx.return_value
    first = tx.events["WorkflowStepOpened"]["jobId"]
    core, exe = system.jobs.jobOf(first)
    assert tuple(core) == (gid, PRICE, chain[tx.block_number].timestamp + 600, REQUESTED, DET_EQ)
    assert (exe["workflowId"], exe["step"]) == (wid, 0)
    with reverts("UnknownJob", first + 1):  # the second step is not open yet
        system.jobs.jobOf(first + 1)
    with reverts("UnknownJob", 12345):
        system.jobs.jobOf(12345)
