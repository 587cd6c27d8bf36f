"""Batched oracle calls: acceptJobs claims every still-open job of a list (skipping the ones another
oracle holds, never reverting for them); completeJobs posts several released answers in one
transaction, each checked and paid as by completeJob, all or nothing."""
from conftest import (PRICE, SPLIT, ZERO, H, grant_direct, release, request, result_hash, reverts,
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


RELEASED, REQUESTED = 7, 1


def test_record_releases_records_each_as_recordRelease_would(system):
    c = system.cast
    jobs = open_jobs(system, 3)
    system.jobs.acceptJobs(jobs, {"from": c.oracle})
    tx = system.jobs.recordReleases(jobs, [result_hash(j) for j in jobs], {"from": c.provider})
    events = tx.events["AnswerReleased"]
    assert [e["jobId"] for e in events] == jobs
    assert all(e["provider"] == c.provider and e["oracle"] == c.oracle for e in events)
    assert [str(e["resultHash"]) for e in events] == [result_hash(j) for j in jobs]
    assert all(system.jobs.jobOf(j)[0]["status"] == RELEASED for j in jobs)
    assert [str(system.jobs.releasedHash(j)) for j in jobs] == [result_hash(j) for j in jobs]
    done = system.jobs.completeJobs(batch(system, jobs), {"from": c.oracle})  # the oracle posts them all
    assert [e["jobId"] for e in done.events["JobCompleted"]] == jobs


def test_record_releases_is_all_or_nothing(system):
    c = system.cast
    jobs = open_jobs(system, 3)
    system.jobs.acceptJobs(jobs[:2], {"from": c.oracle})  # the third is still only Requested
    hashes = [result_hash(j) for j in jobs]
    with reverts("JobNotOpen", jobs[2], REQUESTED):
        system.jobs.recordReleases(jobs, hashes, {"from": c.provider})
    assert all(str(system.jobs.releasedHash(j)) == "0x" + "00" * 32 for j in jobs)
    system.jobs.acceptJob(jobs[2], {"from": c.oracle})
    with reverts("NotReleasingProvider", jobs[0], c.provider2):  # not the holder of the jobs' asset
        system.jobs.recordReleases(jobs, hashes, {"from": c.provider2})
    with reverts("EmptyResult", jobs[1]):
        system.jobs.recordReleases(jobs, [hashes[0], "0x" + "00" * 32, hashes[2]], {"from": c.provider})
    system.jobs.recordRelease(jobs[1], hashes[1], {"from": c.provider})
    with reverts("AnswerAlreadyReleased", jobs[1]):
        system.jobs.recordReleases(jobs, hashes, {"from": c.provider})
    assert system.jobs.jobOf(jobs[0])[0]["status"] == ACCEPTED


def test_record_releases_refuses_bad_batches(system):
    c = system.cast
    jobs = open_jobs(system, 2)
    system.jobs.acceptJobs(jobs, {"from": c.oracle})
    with reverts("InvalidBatch", 0):
        system.jobs.recordReleases([], [], {"from": c.provider})
    with reverts("InvalidBatch", 65):
        system.jobs.recordReleases([jobs[0]] * 65, [result_hash(jobs[0])] * 65, {"from": c.provider})
    with reverts("InvalidBatch", 2):
        system.jobs.recordReleases(jobs, [result_hash(jobs[0])], {"from": c.provider})


# ---------------------------------------------------------------- release slots (one per live released answer)

def test_release_slots_are_reused_once_a_job_completes(system):
    c = system.cast
    jobs = open_jobs(system, 3)
    system.jobs.acceptJobs(jobs, {"from": c.oracle})
    system.jobs.recordReleases(jobs[:2], [result_hash(j) for j in jobs[:2]], {"from": c.provider})
    system.jobs.completeJobs(batch(system, jobs[:1]), {"from": c.oracle})  # frees the first job's slot
    assert str(system.jobs.releasedHash(jobs[0])) == "0x" + "00" * 32  # completed: JobCompleted has it
    release(system, jobs[2])  # takes the freed slot
    assert [str(system.jobs.releasedHash(j)) for j in jobs[1:]] == [result_hash(j) for j in jobs[1:]]
    swapped = {jobs[2]: result_hash(jobs[1])}
    with reverts("ResultMismatch", jobs[2], result_hash(jobs[2]), result_hash(jobs[1])):
        system.jobs.completeJobs(batch(system, jobs[2:], hashes=swapped), {"from": c.oracle})
    system.jobs.completeJobs(batch(system, [jobs[2], jobs[1]]), {"from": c.oracle})
    assert all(system.jobs.jobOf(j)[0]["status"] == COMPLETED for j in jobs)


def test_an_oracle_holds_at_most_255_unposted_releases(system):
    c = system.cast
    jobs = open_jobs(system, 256)
    for i in range(0, 256, 64):
        system.jobs.acceptJobs(jobs[i:i + 64], {"from": c.oracle})
    for i in range(0, 255, 64):
        part = jobs[i:min(i + 64, 255)]
        system.jobs.recordReleases(part, [result_hash(j) for j in part], {"from": c.provider})
    last = jobs[255]
    with reverts("ReleaseSlotsFull", c.oracle):
        system.jobs.checkRelease(last, c.oracle)
    with reverts("ReleaseSlotsFull", c.oracle):
        release(system, last)
    system.jobs.completeJobs(batch(system, jobs[100:101]), {"from": c.oracle})  # one posted: one slot free
    release(system, last)
    assert str(system.jobs.releasedHash(last)) == result_hash(last)
    system.jobs.completeJobs(batch(system, [jobs[99], last, jobs[254]]), {"from": c.oracle})
    assert system.jobs.jobOf(last)[0]["status"] == COMPLETED
