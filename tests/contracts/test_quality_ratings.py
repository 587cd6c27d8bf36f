"""QualityRatings: a consumer who used an asset (a completed job under the grant) rates it once
per grant, 1–5; aggregates on chain."""
import pytest

from conftest import complete, grant_direct, reverts, request


def used_grant(system, **over):
    gid = grant_direct(system, **over)
    jid = request(system, gid).return_value
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    complete(system, jid)
    return gid


def test_rate_once_and_aggregate(system):
    g1, g2 = used_grant(system), used_grant(system)
    tx = system.ratings.rate(g1, 5, {"from": system.cast.consumer})
    assert tx.events["AssetRated"]["score"] == 5 and tx.events["AssetRated"]["assetId"] == system.asset_id
    system.ratings.rate(g2, 2, {"from": system.cast.consumer})
    count, total, mean100 = system.ratings.ratingOf(system.asset_id)
    assert (count, total, mean100) == (2, 7, 350) and system.ratings.isRated(g1)
    with reverts("AlreadyRated", g1):
        system.ratings.rate(g1, 4, {"from": system.cast.consumer})


@pytest.mark.parametrize("score", [0, 6])
def test_score_out_of_range(system, score):
    gid = used_grant(system)
    with reverts("InvalidScore", score):
        system.ratings.rate(gid, score, {"from": system.cast.consumer})


def test_only_the_grant_consumer_after_a_completed_job(system):
    gid = grant_direct(system)
    with reverts("NoCompletedJob", gid):
        system.ratings.rate(gid, 3, {"from": system.cast.consumer})
    jid = request(system, gid).return_value
    with reverts("NoCompletedJob", gid):  # paid for but not delivered: not a use yet
        system.ratings.rate(gid, 3, {"from": system.cast.consumer})
    system.jobs.acceptJob(jid, {"from": system.cast.oracle})
    complete(system, jid)
    with reverts("NotGrantConsumer", gid, system.cast.consumer2):
        system.ratings.rate(gid, 3, {"from": system.cast.consumer2})
    with reverts("UnknownGrant", 999):
        system.ratings.rate(999, 3, {"from": system.cast.consumer})
