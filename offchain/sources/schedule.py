"""When a source syncs: every N seconds, or by a 5-field cron expression.

A small cron parser of our own rather than a dependency: the 5-field grammar (``*``, lists,
ranges, steps, month and weekday names, Vixie's day-of-month OR day-of-week rule) fits in a page
and is tested here; ``croniter`` changed maintainers and ``cronsim`` adds nothing we need."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from offchain.sources.errors import ScheduleError

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
_NAMES = {3: {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
          4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}}
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def _value(expr: str, text: str, index: int) -> int:
    name, lo, hi = _FIELDS[index]
    t = text.lower()
    if t in _NAMES.get(index, {}):
        return _NAMES[index][t]
    if not t.isdigit():
        raise ScheduleError(expr, f"{name}: {text!r} is not a number")
    v = int(t)
    hi = 7 if index == 4 else hi  # Sunday is 0 or 7
    if not lo <= v <= hi:
        raise ScheduleError(expr, f"{name}: {v} is outside {lo}-{hi}")
    return v


def _field(expr: str, text: str, index: int) -> frozenset[int]:
    name, lo, hi = _FIELDS[index]
    out: set[int] = set()
    for part in text.split(","):
        base, sep, step_text = part.partition("/")
        step = 1
        if sep:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(expr, f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, stop = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start, stop = _value(expr, a, index), _value(expr, b, index)
            if start > stop:
                raise ScheduleError(expr, f"{name}: range {base!r} runs backwards")
        else:
            start = _value(expr, base, index)
            stop = hi if sep else start
        out.update(range(start, stop + 1, step))
    if 7 in out:
        out.discard(7)
        out.add(0)
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; :meth:`next_after` gives the next matching minute."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> "Cron":
        text = _MACROS.get(expression.strip().lower(), expression)
        parts = text.split()
        if len(parts) != 5:
            raise ScheduleError(expression, f"{len(parts)} fields")
        sets = [_field(expression, p, i) for i, p in enumerate(parts)]
        return cls(expression, *sets, parts[2] == "*", parts[4] == "*")

    def _day_matches(self, d: _dt.date) -> bool:
        dom, dow = d.day in self.days, (d.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow   # one of them is "*", which matches everything
        return dom or dow        # both restricted: either may match (Vixie cron)

    def next_after(self, t: _dt.datetime) -> _dt.datetime:
        """The first matching minute strictly after ``t`` (same tzinfo as ``t``)."""
        c = t.replace(second=0, microsecond=0) + _dt.timedelta(minutes=1)
        limit = c + _dt.timedelta(days=366 * 5)
        while c < limit:
            if c.month not in self.months:
                c = (c.replace(day=1, hour=0, minute=0) + _dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(c.date()):
                c = c.replace(hour=0, minute=0) + _dt.timedelta(days=1)
                continue
            if c.hour not in self.hours:
                c = c.replace(minute=0) + _dt.timedelta(hours=1)
                continue
            if c.minute not in self.minutes:
                c += _dt.timedelta(minutes=1)
                continue
            return c
        raise ScheduleError(self.expression, "never matches (e.g. 31 February)")


@dataclass(frozen=True)
class Schedule:
    """``every`` seconds, or a cron expression (local time), or once (neither)."""

    every: float | None = None
    cron: Cron | None = None

    @classmethod
    def of(cls, every: float | None, cron: str | None) -> "Schedule":
        return cls(every, Cron.parse(cron) if cron else None)

    @property
    def once(self) -> bool:
        return self.every is None and self.cron is None

    def delay_after(self, now: _dt.datetime) -> float:
        """Seconds from ``now`` until the next run."""
        if self.cron is not None:
            return max(0.0, (self.cron.next_after(now) - now).total_seconds())
        return float(self.every or 0.0)
