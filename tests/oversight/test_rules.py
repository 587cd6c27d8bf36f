"""The rule library without a chain: each rule trips on its pattern and stays quiet on normal use,
overrides apply per asset/grant/provider, state survives a snapshot, bad files are refused."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from oversight.rules import Evaluator, Observation, RuleError, evaluate, in_hours, in_networks, load_rules, parse_rules

ALICE = "0x" + "11" * 20
BOB = "0x" + "22" * 20
PROV = "0x" + "33" * 20
ORACLE = "0x" + "44" * 20
# Wednesday 2025-06-04 10:00 in Shanghai
NOON_SH = datetime(2025, 6, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def job(i: int, t: float, grant: int = 1, consumer: str = ALICE, asset: int = 1) -> Observation:
    return Observation("job", f"0xjob{i}:0", t, 100 + i, grant, asset, consumer, PROV)


def rules(text: str):
    return parse_rules("version: 1\nrules:\n" + text)


def test_burst_trips_once_per_window_and_stays_quiet_below_the_limit():
    rs = rules("""
  - {id: b, kind: burst, severity: severe, actions: [notify, freeze], reason_code: 0xA001,
     params: {per: grant, max_events: 5, window_s: 60}}
""")
    assert evaluate([job(i, 1000 + i * 13) for i in range(20)], rs) == []          # 5 per minute: normal
    alerts = evaluate([job(i, 1000 + i) for i in range(12)], rs)
    assert len(alerts) == 1                                                         # cooled down for 60 s
    a = alerts[0]
    assert a.subject == "grant:1" and a.grants == (1,) and len(a.evidence) == 6 and a.block == 105
    assert a.evidence[-1] == "0xjob5:0" and a.reason_code == 0xA001 and a.transactions[0] == "0xjob0"
    assert evaluate([job(i, 1000 + i) for i in range(12)], rs)[0].id == a.id        # deterministic id
    later = evaluate([job(i, 1000 + i) for i in range(6)] + [job(10 + i, 2000 + i) for i in range(6)], rs)
    assert len(later) == 2


def test_burst_per_consumer_counts_across_grants():
    rs = rules("""
  - {id: c, kind: burst, severity: warning, actions: [notify], params: {per: consumer, max_events: 3, window_s: 60}}
""")
    obs = [job(i, 1000 + i, grant=1 + i % 3) for i in range(4)] + [job(9, 1001, grant=7, consumer=BOB)]
    (a,) = evaluate(obs, rs)
    assert a.subject == f"consumer:{ALICE}" and a.grants == (1, 2, 3)


def test_overrides_per_asset_and_grant():
    rs = rules("""
  - id: b
    kind: burst
    severity: severe
    actions: [freeze]
    params: {per: grant, max_events: 2, window_s: 60}
    overrides:
      - {match: {asset: 9}, params: {max_events: 100}}
      - {match: {grant: 4}, enabled: false}
""")
    assert evaluate([job(i, 1000 + i, asset=9) for i in range(10)], rs) == []
    assert evaluate([job(i, 1000 + i, grant=4) for i in range(10)], rs) == []
    assert len(evaluate([job(i, 1000 + i, grant=5) for i in range(10)], rs)) == 1


def test_out_of_hours_per_provider_time_zone():
    rs = rules(f"""
  - id: h
    kind: out_of_hours
    severity: warning
    actions: [notify]
    params: {{timezone: UTC, hours: ["00:00-24:00"]}}
    overrides:
      - {{match: {{provider: "{PROV}"}}, params: {{timezone: Asia/Shanghai, hours: ["08:00-20:00"],
                                                  weekdays: [mon, tue, wed, thu, fri]}}}}
""")
    assert in_hours(NOON_SH, "Asia/Shanghai", ["08:00-20:00"], ["wed"])
    assert not in_hours(NOON_SH + 12 * 3600, "Asia/Shanghai", ["08:00-20:00"])
    assert in_hours(NOON_SH + 13 * 3600, "Asia/Shanghai", ["22:00-02:00"])          # wraps midnight
    day = [job(i, NOON_SH + i * 600) for i in range(10)]
    assert evaluate(day, rs) == []
    night = [job(20 + i, NOON_SH + 12 * 3600 + i * 60) for i in range(5)]
    (a,) = evaluate(day + night, rs)                                                # once per cooldown
    assert a.subject == "grant:1" and "22:00" in a.detail and "Asia/Shanghai" in a.detail
    saturday = NOON_SH + 3 * 86400
    assert len(evaluate([job(1, saturday)], rs)) == 1


def test_beyond_scope_counts_consumer_fault_refusals_only():
    rs = load_rules()
    def failed(i, code, t):
        return Observation("job_failed", f"0xf{i}:1", t, 200 + i, 1, 1, ALICE, PROV, ORACLE, code)
    # grant frozen (17), revoked (16), the oracle's fault (0x101): never the consumer's doing
    assert evaluate([failed(i, c, 1000 + i) for i, c in enumerate([17, 16, 0x101, 17, 16, 0x101])], rs) == []
    assert evaluate([failed(1, 21, 1000), failed(2, 5, 1010)], rs) == []            # two: still quiet
    refusal = Observation("refusal", "log:abc", 1020, None, 1, 1, ALICE, PROV, code="OperationOutOfScope")
    (a,) = evaluate([failed(1, 21, 1000), failed(2, 5, 1010), refusal], rs)
    assert a.rule == "beyond-scope" and a.subject == f"consumer:{ALICE}" and a.grants == (1,)
    assert a.log_records == ["abc"] and "freeze" in a.actions


def test_oracle_failures_and_quality_drop():
    rs = load_rules()
    fails = [Observation("oracle_failure", f"0xo{i}:0", 1000 + i, 300 + i, 1, oracle=ORACLE, code=0x101)
             for i in range(5)]
    (a,) = evaluate(fails, rs)
    assert a.subject == f"oracle:{ORACLE}" and a.grants == () and "freeze" not in a.actions

    def rate(i, s):
        return Observation("rating", f"0xr{i}:0", 2000 + i, 400 + i, 1, 3, ALICE, PROV, score=s)
    assert evaluate([rate(i, s) for i, s in enumerate([5, 4, 4, 5, 3])], rs) == []
    drops = evaluate([rate(i, s) for i, s in enumerate([4, 2, 1, 1, 1, 1, 5, 5, 5, 1, 1, 1, 1])], rs)
    assert [d.subject for d in drops] == ["asset:3", "asset:3"]                    # re-armed after recovery


def test_network_region():
    rs = rules("""
  - {id: n, kind: network_region, severity: severe, actions: [notify, freeze],
     params: {allowed: ["10.0.0.0/8", "127.0.0.0/8", "fd00::/8"]}}
""")
    assert in_networks("10.2.3.4", ["10.0.0.0/8"]) and not in_networks("not-an-ip", ["0.0.0.0/0"])
    def access(i, ip):
        return Observation("access", f"log:a{i}", 1000 + i, grant=2, consumer=ALICE, client_ip=ip)
    assert evaluate([access(1, "10.1.1.1"), access(2, "127.0.0.1"), access(3, "fd00::1")], rs) == []
    (a,) = evaluate([access(1, "10.1.1.1"), access(2, "203.0.113.9"), access(3, "203.0.113.9")], rs)
    assert a.grants == (2,) and "203.0.113.9" in a.detail


def test_snapshot_resumes_identically():
    rs = load_rules()
    obs = [job(i, 1000 + i) for i in range(40)]
    whole = evaluate(obs, rs)
    first = Evaluator(rs)
    part = first.feed(obs[:13])
    second = Evaluator(rs, first.snapshot())
    assert part + second.feed(obs[13:]) == whole and len(whole) == 1


@pytest.mark.parametrize("text, needle", [
    ("version: 2\nrules: []", "version: 1"),
    ("version: 1\nrules:\n  - {id: x, kind: teleport}", "kind 'teleport'"),
    ("version: 1\nrules:\n  - {id: x, kind: burst, severity: dire}", "severity 'dire'"),
    ("version: 1\nrules:\n  - {id: x, kind: burst, actions: [explode]}", "action 'explode'"),
    ("version: 1\nrules:\n  - {id: x, kind: burst, reason_code: 70000}", "reason_code 70000"),
    ("version: 1\nrules:\n  - {id: x, kind: out_of_hours, params: {timezone: Mars/Olympus}}", "bad parameters"),
    ("version: 1\nrules:\n  - {id: x, kind: out_of_hours, params: {hours: [nine-five]}}", "08:00-20:00"),
    ("version: 1\nrules:\n  - {id: x, kind: network_region, params: {allowed: [10.0.0.0/99]}}", "bad parameters"),
    ("version: 1\nrules:\n  - {id: x, kind: burst, overrides: [{match: {color: red}}]}", "override match"),
    ("version: 1\nrules:\n  - {id: x, kind: burst}\n  - {id: x, kind: burst}", "used twice"),
    ("rules: [", "not valid YAML"),
])
def test_bad_rule_files_are_refused_with_the_offending_value(text, needle):
    with pytest.raises(RuleError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        parse_rules(text, "test.yaml")
