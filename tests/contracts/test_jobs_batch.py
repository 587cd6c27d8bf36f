"""Batched oracle calls: acceptJobs claims every still-open job of a list (skipping the ones another
oracle holds, never reverting for them); completeJobs posts several released answers in one
transaction, each checked and paid as by completeJob, all or nothing."""
from conftest import (HOM_AGG, PRICE, SPLIT, ZERO, H, grant_direct, release, request, result_hash, reverts,
                      sign_result)

ACCEPTED, COMPLETED = 2, 3
CID = b"\x12\x20" + b"\x44" * 32


def open_jobs(system, n):
    gid = grant_direct(system, maxUses=n + 2)
    return [request(system, gid).return_value for _ in range(n)]


def test_accept_jobs_claims_the_open_ones_and_skips_taken(system):
    c = system.cast
    jobs = open_jobs(system, 4)
    system.jobs.acceptJob(jobs[1], {"from": c.oracle2})  # another oracle was first for one of them
    tx = system.jobs.acceptJobs(jobs, {"from": c.oracle})
    assert tx.return_value == 0b1101
    assert [e["jobId"] for e in tx.events["JobAccepted"]] == [jobs[0], jobs[2], jobs[3]]
    assert system.jobs.jobOf(jobs[1])[1]["oracle"] == c.oracle2
    assert all(system.jobs.jobOf(j)[0]["status"] == ACCEPTED for j in jobs)
    again = system.jobs.acceptJobs(jobs, {"from": c.oracle2})  # nothing left: no revert, nothing taken
    assert again.return_value == 0 and "JobAccepted" not in again.events


def test_accept_jobs_refuses_non_oracles_and_bad_batches(system):
    c = system.cast
    jobs = open_jobs(system, 1)
    with reverts("NotComputeProvider", c.consumer):
        system.jobs.acceptJobs(jobs, {"from": c.consumer})
    with reverts("InvalidBatch", 0):
        system.jobs.acceptJobs([], {"from": c.oracle})
    with reverts("InvalidBatch", 65):
        system.jobs.acceptJobs(jobs * 65, {"from": c.oracle})


def batch(system, jobs, oracle_index=5, hashes=None):
    hashes = hashes or {j: result_hash(j) for j in jobs}
    return [(j, CID, hashes[j], sign_result(system, oracle_index, j, hashes[j], CID)) for j in jobs]


def test_complete_jobs_pays_each_as_completeJob_would(system):
    c = system.cast
    jobs = open_jobs(system, 3)
    system.jobs.acceptJobs(jobs, {"from": c.oracle})
    for j in jobs:
        release(system, j)
    tx = system.jobs.completeJobs(batch(system, jobs), {"from": c.oracle})
    assert [e["jobId"] for e in tx.events["JobCompleted"]] == jobs
    assert all(system.jobs.jobOf(j)[0]["status"] == COMPLETED for j in jobs)
    assert system.jobs.balanceOf(c.oracle, ZERO) == 3 * PRICE * SPLIT[2] // 10_000
    assert system.jobs.balanceOf(c.provider, ZERO) == 3 * PRICE * SPLIT[0] // 10_000


def test_complete_jobs_is_all_or_nothing(system):
    c = system.cast
    jobs = open_jobs(system, 3)
    system.jobs.acceptJobs(jobs, {"from": c.oracle})
    for j in jobs:
        release(system, j)
    wrong = {j: result_hash(j) for j in jobs}
    wrong[jobs[2]] = H("forged")
    with reverts("ResultMismatch", jobs[2], result_hash(jobs[2]), H("forged")):
        system.jobs.completeJobs(batch(system, jobs, hashes=wrong), {"from": c.oracle})
    assert all(system.jobs.jobOf(j)[0]["status"] != COMPLETED for j in jobs)
    with reverts("NotJobOracle", jobs[0], c.oracle2):
        system.jobs.completeJobs(batch(system, jobs, oracle_index=9), {"from": c.oracle2})
    other = open_jobs(system, 1)
    system.jobs.acceptJob(other[0], {"from": c.oracle})
    with reverts("ResultNotReleased", other[0]):  # accepted but never released by the key service
        system.jobs.completeJobs(batch(system, jobs[:1] + other), {"from": c.oracle})
