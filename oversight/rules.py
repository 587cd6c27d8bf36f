"""The rule library: YAML rules, per-asset/grant/provider/consumer overrides, pure evaluation.

Rules read :class:`Observation` s — what the sources (``oversight.sources``) make of chain events
and log records — and return :class:`oversight.alerts.Alert` s. Nothing here does I/O: the
:class:`Evaluator` keeps its sliding windows in a JSON-able state the monitor commits together
with its cursor, so a restart continues exactly where the last committed window ended.

| kind             | observations                     | trips when (per key)                                    |
|------------------|----------------------------------|---------------------------------------------------------|
| ``burst``        | job (and ``call`` if listed)     | more than ``max_events`` in ``window_s`` per grant/consumer |
| ``out_of_hours`` | job, call, access                | outside ``hours`` on ``weekdays`` in ``timezone``          |
| ``beyond_scope`` | job_failed, refusal              | more than ``max_refusals`` consumer-fault refusals in ``window_s`` |
| ``oracle_failures`` | oracle_failure                | more than ``max_failures`` charged failures in ``window_s`` |
| ``quality_drop`` | rating                           | mean of the ``last`` ratings falls below ``min_mean``      |
| ``network_region`` | access (with a client IP)      | the IP is in none of the ``allowed`` CIDR blocks           |
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from chain.errors import TdsError
from oversight.alerts import SEVERITIES, Alert

KINDS = ("burst", "out_of_hours", "beyond_scope", "oracle_failures", "quality_drop", "network_region")
ACTIONS = ("notify", "freeze")
MATCH_KEYS = ("asset", "grant", "provider", "consumer")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_RULES = "default_rules.yaml"


class RuleError(TdsError):
    """A rule file or rule that cannot be used (names the file, the rule and the field)."""

    def __init__(self, source: str, rule: str | None, message: str):
        self.source, self.rule = source, rule
        where = f"{source}: rule {rule!r}" if rule else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Observation:
    """One thing the monitor saw, in the shape rules read (addresses are checksummed)."""

    kind: str                      # job | call | job_failed | refusal | oracle_failure | rating | access
    ref: str                       # "0x<tx>:<log index>" or "log:<record id>"
    time: float                    # block time, or the record's time
    block: int | None = None
    grant: int | None = None
    asset: int | None = None
    consumer: str | None = None
    provider: str | None = None
    oracle: str | None = None
    code: int | str | None = None  # failure reason code or refusal error code
    client_ip: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class Override:
    """Parameters (or ``enabled``) that replace a rule's defaults where ``match`` fits."""

    match: Mapping[str, Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool | None = None

    def fits(self, obs: Observation) -> bool:
        for key, want in self.match.items():
            have = getattr(obs, key)
            if have is None:
                return False
            if isinstance(have, str) and isinstance(want, str):
                if have.lower() != want.lower():
                    return False
            elif have != want:
                return False
        return True


@dataclass(frozen=True)
class Rule:
    """One rule: what it watches (``kind``), how bad it is, what to do, and its parameters."""

    id: str
    kind: str
    severity: str
    actions: tuple[str, ...]
    reason_code: int
    params: Mapping[str, Any]
    overrides: tuple[Override, ...] = ()
    enabled: bool = True

    def settings_for(self, obs: Observation) -> tuple[bool, dict[str, Any]]:
        """(enabled, parameters) for ``obs``: the first fitting override wins."""
        for o in self.overrides:
            if o.fits(obs):
                return (self.enabled if o.enabled is None else o.enabled), {**self.params, **o.params}
        return self.enabled, dict(self.params)


def _parse_rule(raw: Any, source: str) -> Rule:
    if not isinstance(raw, dict) or "id" not in raw:
        raise RuleError(source, None, f"every rule needs an 'id' (got {raw!r})")
    rid = str(raw["id"])
    kind, severity = raw.get("kind"), raw.get("severity", "warning")
    if kind not in KINDS:
        raise RuleError(source, rid, f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if severity not in SEVERITIES:
        raise RuleError(source, rid, f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    actions = tuple(raw.get("actions") or ())
    bad = [a for a in actions if a not in ACTIONS]
    if bad:
        raise RuleError(source, rid, f"action {bad[0]!r} is not one of {', '.join(ACTIONS)}")
    code = raw.get("reason_code", 0)
    if not isinstance(code, int) or not 0 <= code <= 0xFFFF:
        raise RuleError(source, rid, f"reason_code {code!r} must be an integer 0..65535")
    params = raw.get("params") or {}
    overrides = []
    for o in raw.get("overrides") or ():
        match = (o or {}).get("match") or {}
        if not match or any(k not in MATCH_KEYS for k in match):
            raise RuleError(source, rid, f"override match {match!r} must name some of {', '.join(MATCH_KEYS)}")
        overrides.append(Override(dict(match), dict(o.get("params") or {}), o.get("enabled")))
    rule = Rule(rid, kind, severity, actions, code, dict(params), tuple(overrides), bool(raw.get("enabled", True)))
    for p in [rule.params, *(o.params for o in rule.overrides)]:
        _check_params(rule, {**rule.params, **p}, source)
    return rule


def _check_params(rule: Rule, p: Mapping[str, Any], source: str) -> None:
    """Fail early on parameters evaluation could not use."""
    try:
        if rule.kind == "out_of_hours":
            ZoneInfo(str(p.get("timezone", "UTC")))
            _hours(p.get("hours", ["00:00-24:00"]))
            if any(d not in WEEKDAYS for d in p.get("weekdays", WEEKDAYS)):
                raise ValueError(f"weekdays must be some of {', '.join(WEEKDAYS)}")
        elif rule.kind == "network_region":
            [ipaddress.ip_network(c, strict=False) for c in p.get("allowed", [])]
        elif rule.kind in ("burst", "beyond_scope") and p.get("per", "grant") not in ("grant", "consumer"):
            raise ValueError(f"per must be 'grant' or 'consumer', not {p.get('per')!r}")
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise RuleError(source, rule.id, f"bad parameters: {exc}") from None


@dataclass(frozen=True)
class RuleSet:
    """A loaded rule library."""

    rules: tuple[Rule, ...]
    source: str = "<rules>"

    def by_id(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise RuleError(self.source, rule_id, "no such rule")


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Rules from YAML text (``version: 1``, ``rules: [...]``); ids must be unique."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RuleError(source, None, f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("rules"), list):
        raise RuleError(source, None, "expected a mapping with 'version: 1' and a list 'rules'")
    rules = tuple(_parse_rule(r, source) for r in doc["rules"])
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise RuleError(source, r.id, "the id is used twice")
        seen.add(r.id)
    return RuleSet(rules, source)


def load_rules(path: Path | None = None) -> RuleSet:
    """The rules in ``path``, or the shipped defaults (``oversight/default_rules.yaml``)."""
    if path is None:
        text = resources.files("oversight").joinpath(DEFAULT_RULES).read_text()
        return parse_rules(text, DEFAULT_RULES)
    try:
        return parse_rules(Path(path).read_text(), str(path))
    except OSError as exc:
        raise RuleError(str(path), None, f"cannot read the rule file: {exc}") from None


def _hours(spec: Iterable[str]) -> list[tuple[int, int]]:
    """["08:00-20:00", …] → minute ranges [(480, 1200), …]; an end before the start wraps midnight."""
    out = []
    for item in spec:
        lo, _, hi = str(item).partition("-")
        try:
            a = [int(x) for x in lo.split(":")]
            b = [int(x) for x in hi.split(":")]
            start, end = a[0] * 60 + a[1], b[0] * 60 + b[1]
        except (ValueError, IndexError):
            raise ValueError(f"hours {item!r} must look like '08:00-20:00'") from None
        if not (0 <= start <= 1440 and 0 <= end <= 1440):
            raise ValueError(f"hours {item!r} are outside 00:00-24:00")
        out += [(start, end)] if start <= end else [(start, 1440), (0, end)]
    return out


def in_hours(ts: float, timezone: str, hours: Iterable[str], weekdays: Iterable[str] = WEEKDAYS) -> bool:
    """True if the moment ``ts`` falls in the allowed ``hours`` and ``weekdays`` of ``timezone``."""
    local = datetime.fromtimestamp(ts, ZoneInfo(timezone))
    if WEEKDAYS[local.weekday()] not in set(weekdays):
        return False
    minute = local.hour * 60 + local.minute
    return any(lo <= minute < hi for lo, hi in _hours(hours))


def in_networks(ip: str | None, allowed: Iterable[str]) -> bool:
    """True if ``ip`` is in one of the CIDR blocks ``allowed`` (an unparsable IP is in none)."""
    try:
        addr = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(c, strict=False) for c in allowed)


class Evaluator:
    """Evaluates observations against a rule set, keeping sliding windows between calls."""

    def __init__(self, rules: RuleSet, state: Mapping[str, Any] | None = None):
        self.rules = rules
        state = state or {}
        self.windows: dict[str, list[list[Any]]] = {k: [list(e) for e in v] for k, v in
                                                    (state.get("windows") or {}).items()}
        self.cooldown: dict[str, float] = dict(state.get("cooldown") or {})
        self.ratings: dict[str, list[float]] = {k: list(v) for k, v in (state.get("ratings") or {}).items()}
        self.below: set[str] = set(state.get("below") or ())
        self.spans: dict[str, float] = dict(state.get("spans") or {})   # window key → its length (s)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: feeding the same observations to ``Evaluator(rules, snapshot)`` gives
        the same alerts as continuing with this one."""
        return {"windows": self.windows, "cooldown": self.cooldown, "ratings": self.ratings,
                "below": sorted(self.below), "spans": self.spans}

    def forget_before(self, now: float) -> None:
        """Drop what can no longer count at time ``now``: window entries older than their window,
        cooldowns that ended (keeps the state — committed at every step — small)."""
        windows = {}
        for k, v in self.windows.items():
            cut = now - self.spans.get(k, 0.0)
            if v and v[-1][0] > cut:
                windows[k] = v if v[0][0] > cut else [e for e in v if e[0] > cut]
        self.windows = windows
        self.spans = {k: self.spans[k] for k in windows if k in self.spans}
        self.cooldown = {k: v for k, v in self.cooldown.items() if v > now}

    def feed(self, observations: Iterable[Observation]) -> list[Alert]:
        """Alerts raised by ``observations`` (evaluated in time order)."""
        alerts: list[Alert] = []
        latest = None
        for obs in sorted(observations, key=lambda o: (o.time, o.block or 0, o.ref)):
            latest = obs.time
            for rule in self.rules.rules:
                enabled, params = rule.settings_for(obs)
                if enabled:
                    alert = getattr(self, "_" + rule.kind)(rule, params, obs)
                    if alert is not None:
                        alerts.append(alert)
        if latest is not None:
            self.forget_before(latest)
        return alerts

    # helpers -----------------------------------------------------------------------------
    def _alert(self, rule: Rule, obs: Observation, subject: str, evidence: list[str], grants: Iterable[Any],
               detail: str) -> Alert:
        return Alert(Alert.make_id(rule.id, subject, obs.ref), rule.id, rule.kind, rule.severity, subject,
                     tuple(sorted({int(g) for g in grants if g is not None})), tuple(evidence), obs.time, obs.block,
                     rule.reason_code, rule.actions, detail)

    def _count(self, key: str, obs: Observation, window_s: float) -> list[list[Any]]:
        """Push ``obs`` into the window ``key`` and drop what is older than ``window_s``."""
        win = self.windows.get(key) or []
        if win and win[0][0] <= obs.time - window_s:
            win = [e for e in win if e[0] > obs.time - window_s]
        win.append([obs.time, obs.ref, obs.grant])
        self.windows[key] = win
        self.spans[key] = window_s
        return win

    def _cooled(self, key: str, now: float, cooldown_s: float) -> bool:
        """True (and starts a new cooldown) unless ``key`` alerted less than its cooldown ago."""
        if self.cooldown.get(key, float("-inf")) > now:
            return False
        self.cooldown[key] = now + cooldown_s
        return True

    def _subject(self, params: Mapping[str, Any], obs: Observation) -> str | None:
        per = params.get("per", "grant")
        value = obs.grant if per == "grant" else obs.consumer
        return None if value is None else f"{per}:{value}"

    # rules -------------------------------------------------------------------------------
    def _burst(self, rule: Rule, p: Mapping[str, Any], obs: Observation) -> Alert | None:
        subject = self._subject(p, obs)
        if obs.kind not in p.get("events", ["job"]) or subject is None:
            return None
        key, window = f"{rule.id}|{subject}", float(p.get("window_s", 60))
        win = self._count(key, obs, window)
        limit = int(p.get("max_events", 20))
        if len(win) <= limit or not self._cooled(key, obs.time, window):
            return None
        return self._alert(rule, obs, subject, [e[1] for e in win], [e[2] for e in win],
                           f"{len(win)} {'/'.join(p.get('events', ['job']))} events within {window:g} s "
                           f"(more than {limit}) for {subject}")

    def _out_of_hours(self, rule: Rule, p: Mapping[str, Any], obs: Observation) -> Alert | None:
        if obs.kind not in ("job", "call", "access"):
            return None
        tz = str(p.get("timezone", "UTC"))
        hours, days = p.get("hours", ["00:00-24:00"]), p.get("weekdays", WEEKDAYS)
        if in_hours(obs.time, tz, hours, days):
            return None
        subject = f"grant:{obs.grant}" if obs.grant is not None else f"consumer:{obs.consumer}"
        if not self._cooled(f"{rule.id}|{subject}", obs.time, float(p.get("cooldown_s", 3600))):
            return None
        local = datetime.fromtimestamp(obs.time, ZoneInfo(tz)).strftime("%a %H:%M")
        return self._alert(rule, obs, subject, [obs.ref], [obs.grant],
                           f"{obs.kind} at {local} {tz}, outside {', '.join(map(str, hours))} on "
                           f"{','.join(days)}")

    def _beyond_scope(self, rule: Rule, p: Mapping[str, Any], obs: Observation) -> Alert | None:
        if obs.kind == "job_failed":
            hit = obs.code in set(p.get("reason_codes", []))
        elif obs.kind == "refusal":
            hit = obs.code in set(p.get("error_codes", []))
        else:
            return None
        subject = self._subject({"per": p.get("per", "consumer")}, obs)
        if not hit or subject is None:
            return None
        key, window = f"{rule.id}|{subject}", float(p.get("window_s", 3600))
        win = self._count(key, obs, window)
        limit = int(p.get("max_refusals", 2))
        if len(win) <= limit or not self._cooled(key, obs.time, window):
            return None
        return self._alert(rule, obs, subject, [e[1] for e in win], [e[2] for e in win],
                           f"{len(win)} refused attempts within {window:g} s (more than {limit}) by {subject}; "
                           f"last: {obs.code}")

    def _oracle_failures(self, rule: Rule, p: Mapping[str, Any], obs: Observation) -> Alert | None:
        if obs.kind != "oracle_failure" or obs.oracle is None:
            return None
        subject = f"oracle:{obs.oracle}"
        key, window = f"{rule.id}|{subject}", float(p.get("window_s", 3600))
        win = self._count(key, obs, window)
        limit = int(p.get("max_failures", 3))
        if len(win) <= limit or not self._cooled(key, obs.time, window):
            return None
        return self._alert(rule, obs, subject, [e[1] for e in win], [], f"oracle {obs.oracle} was charged "
                           f"{len(win)} failures within {window:g} s (more than {limit})")

    def _quality_drop(self, rule: Rule, p: Mapping[str, Any], obs: Observation) -> Alert | None:
        if obs.kind != "rating" or obs.score is None or obs.asset is None:
            return None
        subject = f"asset:{obs.asset}"
        key = f"{rule.id}|{subject}"
        scores = (self.ratings.get(key, []) + [float(obs.score)])[-int(p.get("last", 5)):]
        self.ratings[key] = scores
        mean = sum(scores) / len(scores)
        if len(scores) < int(p.get("min_ratings", 3)) or mean >= float(p.get("min_mean", 2.5)):
            self.below.discard(key)           # back above the threshold: the next drop alerts again
            return None
        if key in self.below:
            return None
        self.below.add(key)
        return self._alert(rule, obs, subject, [obs.ref], [], f"mean of the last {len(scores)} ratings of asset "
                           f"{obs.asset} is {mean:.2f}, below {p.get('min_mean', 2.5)}")

    def _network_region(self, rule: Rule, p: Mapping[str, Any], obs: Observation) -> Alert | None:
        if obs.kind != "access" or obs.client_ip is None:
            return None
        allowed = p.get("allowed", [])
        if in_networks(obs.client_ip, allowed):
            return None
        subject = f"grant:{obs.grant}" if obs.grant is not None else f"consumer:{obs.consumer}"
        if not self._cooled(f"{rule.id}|{subject}|{obs.client_ip}", obs.time, float(p.get("cooldown_s", 600))):
            return None
        return self._alert(rule, obs, subject, [obs.ref], [obs.grant],
                           f"access from {obs.client_ip}, outside {', '.join(allowed)}")


def evaluate(observations: Iterable[Observation], rules: RuleSet | None = None) -> list[Alert]:
    """Pure: the alerts ``rules`` (default: the shipped library) raise over ``observations``."""
    return Evaluator(rules or load_rules()).feed(observations)
