"""Entities read from the event index by SQL (audit/index_entities.py) over the shared lifecycle:
each trail, job and audit-log page equals what the chain alone gives; unknown ids are None; the
payment, alert, role and anchor tables hold what the events say."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from audit.events import ChainReader
from audit.index import EventIndex
from audit.index_entities import EntityReads
from audit.index_tables import alerts, anchors, grants, log_batches, participant_roles, payments
from audit.trail import build_trail, chain_entries, job_summary
from tds.gateway.queries import filter_entries, query_events
from tests.support.lifecycle import Lifecycle, shared_lifecycle


@pytest.fixture
def lc(request, tmp_path_factory) -> Lifecycle:
    return shared_lifecycle(request, tmp_path_factory)


@pytest.fixture
def reads(lc, tmp_path) -> EntityReads:
    idx = EventIndex(lc.w3, lc.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    return EntityReads(lc.w3, lc.deployment, idx.engine)


def test_trail_and_job_by_sql_equal_the_chain(lc, reads):
    chain = ChainReader(lc.w3, lc.deployment)
    for asset in (lc.asset, lc.other_asset):
        block, trail = reads.asset_trail(asset)
        assert block == lc.w3.eth.block_number and trail == build_trail(chain, asset)
    for job in (lc.job_ok, lc.job_failed, lc.other_job):
        assert reads.job(job)[1] == job_summary(chain, job)
    assert reads.asset_trail(999)[1] is None and reads.job(lc.job_ok + 99)[1] is None


def test_audit_log_paged_in_sql_equals_the_chain(lc, reads):
    chain = ChainReader(lc.w3, lc.deployment)
    everything = chain_entries(chain)
    _, total, page = reads.audit_page(limit=10**6)
    assert total == len(everything) and page == everything
    _, total, page = reads.audit_page(offset=3, limit=4)
    assert total == len(everything) and page == everything[3:7]
    consumer = lc.addr["consumer"]
    for kw in ({"action": "request"}, {"visible_to": consumer}, {"actors": [consumer], "action": "destroy"},
               {"since": everything[5].time, "until": everything[9].time}):
        want = query_events(chain, actor=(kw.get("actors") or [None])[0], action=kw.get("action"),
                            since=kw.get("since"), until=kw.get("until"), visible_to=kw.get("visible_to"))
        assert reads.audit_page(limit=10**6, **kw)[2] == want, kw
    did = chain.did_of(lc.addr["provider"])
    found = reads.audit_page(actors=reads.accounts_of_did(did), limit=10**6)[2]
    assert filter_entries(found, actor=did) == query_events(chain, actor=did) != []


def test_state_tables_hold_what_the_events_say(lc, reads):
    chain = ChainReader(lc.w3, lc.deployment)
    with reads.engine.connect() as conn:
        paid = conn.execute(select(payments).order_by(payments.c.block, payments.c.log_index)).all()
        credited = [e for e in chain.events if e.name in ("Credited", "Withdrawn")]
        assert [(p.kind, p.payee, p.amount) for p in paid] == [
            ("credit" if e.name == "Credited" else "withdraw", e.args["payee"], str(e.args["amount"]))
            for e in credited]
        # the regulator's freeze of the grant is an alert, lifted; the holder's freeze of the asset is not
        found = conn.execute(select(alerts)).all()
        assert [(a.kind, a.subject, a.authority, a.reason_code) for a in found if a.kind != "oracle-failure"] == [
            ("grant-frozen", lc.grant, "regulator", 42)]
        assert found[0].lifted_block is not None
        assert [(a.subject, a.by) for a in found if a.kind == "oracle-failure"] == [
            (e.args["jobId"], e.args["oracle"]) for e in chain.select("Jobs", "OracleFailureRecorded")]
        roles = {(r.account, r.role) for r in conn.execute(select(participant_roles))}
        assert (lc.addr["provider"], "PROVIDER") in roles and (lc.addr["consumer"], "CONSUMER") in roles
        assert [b.producer for b in conn.execute(select(log_batches))] == [lc.addr["provider"]]
        assert len(conn.execute(select(anchors)).all()) == len(chain.select("Evidence", "HashAnchored"))
        for g in conn.execute(select(grants)):
            assert g.uses == lc.c["Authorizations"].functions.grantOf(g.grant_id).call()[1]
