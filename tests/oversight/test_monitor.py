"""The monitor on a real chain: a burst → alert by e-mail and webhook → grant frozen → the next
request refused with ``GrantIsFrozen`` → the regulator reviews and restores → requests work;
out-of-hours, beyond-scope and network-region rules each trip once and stay quiet on normal use;
killed at every step, a restarted monitor neither misses the alert nor freezes twice."""
from __future__ import annotations

import json
import signal
import time
from datetime import datetime, timezone
import pytest

from audit.oplog import Batch
from chain.tx import Reverted
from oracle.journal import Journal
from oracle.pipeline import JobPipeline
from oracle.runner import OracleRunner
from oversight.alerts import AlertLog
from oversight.sources import AccessRecord

BURST = """version: 1
rules:
  - {id: burst, kind: burst, severity: severe, actions: [notify, freeze], reason_code: 0xA001,
     params: {per: grant, max_events: 5, window_s: 60}}
"""


def test_burst_alerts_freezes_and_the_regulator_restores(env):
    w, auth = env.world, env.world.space.c["Authorizations"]
    start = env.w3.eth.block_number + 1
    grant = env.fresh_grant("burst")
    mon = env.make_monitor(BURST, start_block=start)
    for _ in range(5):
        env.request(grant)
    env.mine()
    assert mon.step().alerts == [] and env.frozen_by(grant) == 0          # five a minute is allowed
    last = env.request(grant)                                              # the sixth within the minute
    env.mine()                                                             # one confirmation
    (alert,) = mon.step().alerts
    assert alert.subject == f"grant:{grant}" and alert.grants == (grant,) and len(alert.evidence) == 6
    assert last["transactionHash"].to_0x_hex() in alert.transactions

    assert env.frozen_by(grant) == 2                                       # FreezeAuthority.Monitor
    (frozen,) = env.freezes_on_chain(grant)
    assert frozen["args"]["reasonCode"] == 0xA001
    assert alert.id in env.mailbox.alert_ids() and alert.id in env.receiver.alert_ids()
    mail = env.mailbox.messages[env.mailbox.alert_ids().index(alert.id)]
    assert f"burst on grant:{grant}" in mail["Subject"] and alert.transactions[0] in mail.get_payload()
    hook = env.receiver.bodies[env.receiver.alert_ids().index(alert.id)]
    assert hook["type"] == "tds-alert/1" and hook["grants"] == [grant] and hook["reason_code"] == 0xA001

    with pytest.raises(Reverted) as refused:
        env.request(grant)
    assert refused.value.error == "GrantIsFrozen"
    with pytest.raises(Reverted) as held:                                 # the monitor never lifts a freeze
        mon.sender.send(auth.functions.unfreeze(grant))
    assert held.value.error == "FreezeHeldBy"

    log = AlertLog(env.folder / "alerts", "", "")
    assert [a.id for a in log.alerts()] == [alert.id]
    assert [(f["grant"], f["outcome"]) for f in log.freezes()] == [(grant, "sent")]
    batches = sorted((env.folder / "alerts").glob("batch-*.jsonl"))
    root = Batch.from_jsonl("", batches[-1].read_bytes()).root
    anchored = w.space.c["Evidence"].events.BatchAnchored().get_logs(
        from_block=start, argument_filters={"producer": env.monitor.address})
    assert root in [bytes(e["args"]["root"]) for e in anchored]

    listed = json.loads(env.cli("regulator", "alerts", "--json").stdout)
    assert [a["id"] for a in listed] == [alert.id] and listed[0]["freezes"][0]["outcome"] == "sent"
    env.cli("regulator", "review", alert.id, "--note", "scripted burst confirmed", "--dev-account", "1")
    out = env.cli("regulator", "restore", grant, "--dev-account", "1").stdout
    assert f"grant {grant} restored (was frozen by the monitor" in out
    assert json.loads(env.cli("regulator", "alerts", "--json").stdout)[0]["reviews"][0]["note"] == \
        "scripted burst confirmed"
    assert env.frozen_by(grant) == 0
    env.request(grant)                                                     # works again
    env.mine()
    assert mon.step().alerts == []                                         # same minute: cooled down
    assert len(env.freezes_on_chain(grant)) == 1
    mon.close()


def _hours_excluding_now() -> str:
    h = datetime.now(timezone.utc).hour
    return f"{(h + 2) % 24:02d}:00-{(h + 3) % 24:02d}:00"


def test_out_of_hours_beyond_scope_and_region_trip_once_and_stay_quiet(env, tmp_path):
    w, jobs = env.world, env.world.space.c["Jobs"]
    start = env.w3.eth.block_number + 1
    night, scope, ok, remote = (env.fresh_grant(t) for t in ("night", "scope", "ok", "remote"))
    rules = f"""version: 1
rules:
  - id: hours
    kind: out_of_hours
    severity: warning
    actions: [notify]
    reason_code: 0xA002
    params: {{timezone: UTC, hours: ["00:00-24:00"]}}
    overrides: [{{match: {{grant: {night}}}, params: {{timezone: Asia/Shanghai, hours: ["{_hours_excluding_now()}"]}}}}]
  - id: scope
    kind: beyond_scope
    severity: severe
    actions: [notify, freeze]
    reason_code: 0xA003
    params: {{per: grant, max_refusals: 2, window_s: 3600, reason_codes: [1, 2, 3, 4, 5, 21],
              error_codes: [OperationOutOfScope]}}
  - id: region
    kind: network_region
    severity: severe
    actions: [notify, freeze]
    reason_code: 0xA006
    params: {{allowed: ["10.0.0.0/8", "127.0.0.0/8"]}}
"""
    access = tmp_path / "gateway-access.jsonl"
    oplog = env.extra["provider_log"]          # the world's key service logs its releases here
    mon = env.make_monitor(rules, folder=tmp_path / "mon", start_block=start, oplogs=(oplog,),
                           access_logs=(access,))

    # normal use: one real job on `ok` (key service releases, oracle completes), in hours, from 10/8
    query = {"dataset": w.sales_id, "aggregates": [["sum", "amount"], ["count"]]}
    join = {"dataset": w.sales_id, "aggregates": [["sum", "amount"]], "group_by": "right.segment",
            "join": [w.customers_id, "customer", "customer"]}         # names another asset: refused
    w.space.request_job(w.consumer, ok, 4, query, w.store, value=10**15)
    for _ in range(2):
        w.space.request_job(w.consumer, scope, 1 | 4, join, w.store, value=10**15)
    runner = OracleRunner(env.w3, jobs, w.oracle.account, Journal(tmp_path / "oracle.sqlite"),
                          JobPipeline(w.store, w.key_service, w.oracle.address), start_block=start)
    runner.run_once()
    assert (runner.stats.posted, runner.stats.failed) == (1, 2)
    for g in (night, night, ok):
        env.request(g)
    now = time.time()
    lines = [AccessRecord("a1", now, "gateway", "10.1.2.3", "POST", "/jobs", 201, w.consumer.address, ok),
             AccessRecord("a2", now, "gateway", "10.1.2.3", "POST", "/jobs", 403, w.consumer.address, scope,
                          error="OperationOutOfScope"),
             AccessRecord("a3", now, "keyservice", "203.0.113.7", "POST", "/prepare", 200, w.consumer.address,
                          remote),
             AccessRecord("a4", now, "keyservice", "203.0.113.7", "POST", "/release", 200, w.consumer.address,
                          remote)]
    access.write_text("".join(json.dumps(r.to_json()) + "\n" for r in lines))
    env.mine()
    alerts = []
    for _ in range(3):
        alerts += mon.step().alerts
    by_rule = {a.rule: a for a in alerts}
    assert sorted(a.rule for a in alerts) == ["hours", "region", "scope"]          # each exactly once
    assert by_rule["hours"].subject == f"grant:{night}"
    assert by_rule["scope"].subject == f"grant:{scope}" and by_rule["scope"].log_records == ["a2"]
    assert len(by_rule["scope"].transactions) == 2                                 # the two JobFailed(21)
    assert by_rule["region"].subject == f"grant:{remote}" and "203.0.113.7" in by_rule["region"].detail
    assert env.frozen_by(scope) == 2 and env.frozen_by(remote) == 2
    assert env.frozen_by(ok) == 0 and env.frozen_by(night) == 0                    # notify only / quiet
    assert mon.positions[str(oplog)]["offset"] > 0                                 # the release log was read
    for a in alerts:
        assert a.id in env.mailbox.alert_ids() and a.id in env.receiver.alert_ids()
    env.request(ok)
    env.mine()
    assert mon.step().alerts == []
    mon.close()


class Crash(BaseException):
    """Stands for the process dying at a named point."""


@pytest.mark.parametrize("point", ["committed", "logged", "frozen", "notified", "anchored"])
def test_killed_at_any_point_no_missed_alert_and_no_second_freeze(env, tmp_path, point):
    start = env.w3.eth.block_number + 1
    grant = env.fresh_grant(f"crash-{point}")
    folder = tmp_path / "mon"
    armed = [True]

    def crash(at: str) -> None:
        if at == point and armed[0]:
            armed[0] = False
            raise Crash(at)

    mon = env.make_monitor(BURST, folder=folder, start_block=start, crash=crash)
    for _ in range(6):
        env.request(grant)
    env.mine()
    with pytest.raises(Crash):
        mon.step()
    mon.close()
    again = env.make_monitor(BURST, folder=folder, start_block=start)
    again.run(once=True)
    (alert,) = AlertLog(folder / "alerts", "", "").alerts()                        # not missed, not doubled
    assert alert.subject == f"grant:{grant}"
    assert len(env.freezes_on_chain(grant)) == 1 and env.frozen_by(grant) == 2
    assert [f[1] for f in again.journal.freezes()] == [grant]
    assert again.journal.counts()["unfinished"] == 0
    assert alert.id in env.mailbox.alert_ids() and alert.id in env.receiver.alert_ids()
    if point == "frozen":   # killed after the freeze was mined: the restart found it on chain
        assert again.journal.freezes()[0][2] == "already-frozen"
    again.close()


def test_a_restored_grant_is_not_frozen_again_by_a_restart(env, tmp_path):
    """Killed after the freeze was mined; the regulator restores before the monitor restarts."""
    start = env.w3.eth.block_number + 1
    grant = env.fresh_grant("restored-before-restart")
    folder = tmp_path / "mon"

    def crash(at: str) -> None:
        if at == "frozen":
            raise Crash(at)

    mon = env.make_monitor(BURST, folder=folder, start_block=start, crash=crash)
    for _ in range(6):
        env.request(grant)
    env.mine()
    with pytest.raises(Crash):
        mon.step()
    mon.close()
    env.cli("regulator", "restore", grant, "--dev-account", "1")
    again = env.make_monitor(BURST, folder=folder, start_block=start)
    again.run(once=True)
    assert env.frozen_by(grant) == 0 and len(env.freezes_on_chain(grant)) == 1
    again.close()


def test_monitor_needs_the_monitor_role(env, tmp_path):
    from chain.accounts import dev_account
    from oversight.monitor import Monitor, NotMonitor
    from oversight.rules import load_rules

    with pytest.raises(NotMonitor, match=dev_account(5).address):
        Monitor(env.w3, env.world.space.deployment, dev_account(5), "did:example:x", load_rules(), tmp_path)


# --- the same monitor reading the shared event index ---------------------------------------------
def test_burst_through_the_event_index_alerts_and_freezes_once(env, tmp_path):
    """The burst read from the index trips the alert the node's events trip, and one freeze; an
    index rolled back below the monitor's cursor is waited for, never re-read into a second freeze."""
    from audit.index import EventIndex
    from oversight.index_source import IndexFollower, IndexUnavailable, open_index
    from oversight.rules import Evaluator, parse_rules
    from oversight.sources import ChainFollower, Context, observations_from_events

    deployment = env.world.space.deployment
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    with pytest.raises(IndexUnavailable, match=r"no index database.*tds index run.*--from-chain"):
        open_index(env.w3, deployment, url)
    start = env.w3.eth.block_number + 1
    # an index that follows from this test's first block (the module's earlier history is not needed)
    indexer = EventIndex(env.w3, {**deployment, "block": start}, url, confirmations=0)
    with pytest.raises(IndexUnavailable, match="indexed nothing"):
        open_index(env.w3, deployment, url)

    grant = env.fresh_grant("index")
    indexer.catch_up()
    index = open_index(env.w3, deployment, url)
    mon = env.make_monitor(BURST, folder=tmp_path / "mon", start_block=start, index=index)
    for _ in range(6):
        env.request(grant)
    env.mine()
    assert mon.step().alerts == [] and env.frozen_by(grant) == 0           # the index has not seen them yet
    indexer.catch_up()
    (alert,) = mon.step().alerts
    assert alert.subject == f"grant:{grant}" and alert.grants == (grant,) and len(alert.evidence) == 6
    assert env.frozen_by(grant) == 2 and len(env.freezes_on_chain(grant)) == 1
    assert alert.id in env.mailbox.alert_ids() and alert.id in env.receiver.alert_ids()

    # the node's events of the same blocks give the same alert (ids are deterministic)
    end = mon.cursor[0]
    chain = ChainFollower(env.w3, mon.c, confirmations=1).next_window(None, start)
    assert chain is not None and chain.end >= end
    events = [e for e in chain.events if e.block <= end]
    from_chain = Evaluator(parse_rules(BURST)).feed(observations_from_events(events, chain.times, Context()))
    assert [a.id for a in from_chain] == [alert.id]

    # a different hash for the cursor block is a reorg below the cursor, flagged as the node's follower does
    indexer.catch_up()
    follower = IndexFollower(index, env.w3, confirmations=1)
    moved = follower.next_window((end, "0x" + "00" * 32), start)
    assert moved is not None and moved.reorged and moved.start == end + 1
    assert not follower.next_window(mon.cursor, start).reorged

    # rolled back below the cursor (a reorg deeper than its depth): the monitor waits, reads nothing twice
    with indexer.engine.begin() as conn:
        indexer.rollback(conn, start - 1)
    for _ in range(3):
        env.mine()
    empty = env.w3.eth.block_number - 2             # no event and no window end: the index keeps no hash of it
    assert mon.step().window is None and mon.cursor[0] == end
    indexer.catch_up()
    env.mine()
    result = mon.step()
    assert result.alerts == [] and result.window is not None and result.window[0] == end + 1
    assert len(env.freezes_on_chain(grant)) == 1 and [f[1] for f in mon.journal.freezes()] == [grant]
    # a cursor block the (rebuilt) index has no hash for is checked against the node's hash instead
    real = "0x" + bytes(env.w3.eth.get_block(empty)["hash"]).hex()
    assert not follower.next_window((empty, real), start).reorged
    assert follower.next_window((empty, "0x" + "11" * 32), start).reorged
    mon.close()


def test_monitor_cli_reads_the_configured_index_or_refuses(env, tmp_path):
    """``tds monitor run`` with TDS_INDEX_URL reads that index; a missing one is refused with the way
    out (``tds index run`` or ``--from-chain``), and ``--from-chain`` reads the node."""
    from click.testing import CliRunner

    from sqlalchemy import insert

    from audit.index import EventIndex
    from audit.index_tables import meta, open_engine
    from oversight.index_source import IndexUnavailable
    from tds.cli import cli

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    home = tmp_path / "home"
    env.monitor.save(home / "identities", "pw", scrypt_n=2**10)
    rules = tmp_path / "rules.yaml"
    rules.write_text(BURST)
    head = env.w3.eth.block_number
    args = ["monitor", "run", "monitor", "--once", "--rules", str(rules), "--from-block", str(head), "--poll", "0.05"]
    base = {**env.vars, "TDS_HOME": str(home), "TDS_KEYSTORE_PASSWORD": "pw"}

    missing = {**base, "TDS_INDEX_URL": f"sqlite:///{tmp_path / 'absent.sqlite'}"}
    r = CliRunner().invoke(cli, args, env=missing)
    assert isinstance(r.exception, IndexUnavailable), r.output
    assert "tds index run" in str(r.exception) and "--from-chain" in str(r.exception)
    r = CliRunner().invoke(cli, [*args, "--from-chain"], env=missing)
    assert r.exit_code == 0 and "chain events from the node" in r.output, (r.output, r.exception)
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"                # an index of another deployment
    with open_engine(other).begin() as conn:
        conn.execute(insert(meta).values(key="deployment", value="v2:1:0x0000000000000000000000000000000000000001"))
    r = CliRunner().invoke(cli, args, env={**base, "TDS_INDEX_URL": other})
    assert isinstance(r.exception, IndexUnavailable) and "another deployment" in str(r.exception), r.output

    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    EventIndex(env.w3, {**env.world.space.deployment, "block": head}, url, confirmations=0).catch_up()
    r = CliRunner().invoke(cli, args, env={**base, "TDS_INDEX_URL": url})
    assert r.exit_code == 0 and "chain events from the event index" in r.output, (r.output, r.exception)
    for sig, handler in handlers.items():        # `monitor run` installed its own in this process
        signal.signal(sig, handler)
