"""``--schedule CRON``: run a scan at each time a five-field cron expression names (UTC), with
``croniter`` (pallets-eco) computing the next time. A scan that fails is logged and the schedule
goes on; a run that overruns the next slot starts the following one at once, never twice."""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from croniter import croniter

from chain.errors import TdsError

log = logging.getLogger("tds.compliance")


class BadSchedule(TdsError):
    """A cron expression croniter does not accept (names it)."""


def parse_schedule(expr: str) -> str:
    """The expression, checked: five fields (minute hour day-of-month month day-of-week)."""
    text = " ".join(expr.split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise BadSchedule(f"--schedule {expr!r} is not a five-field cron expression (e.g. '0 3 * * *' for 03:00 UTC "
                          f"daily, '*/15 * * * *' every quarter hour)")
    return text


def next_run(expr: str, after: dt.datetime) -> dt.datetime:
    """The first time strictly after ``after`` that ``expr`` names (UTC)."""
    return croniter(parse_schedule(expr), after.astimezone(dt.UTC)).get_next(dt.datetime)


def run_schedule(expr: str, job: Callable[[], object], stop: threading.Event | None = None,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 max_runs: int | None = None) -> int:
    """Call ``job`` at each time ``expr`` names until ``stop`` is set (or ``max_runs`` runs);
    returns the number of runs."""
    stop = stop or threading.Event()
    runs = 0
    due = next_run(expr, now())
    while not stop.is_set() and (max_runs is None or runs < max_runs):
        wait = (due - now()).total_seconds()
        if wait > 0 and stop.wait(wait):
            break
        try:
            job()
        except TdsError as exc:
            log.error("scheduled compliance scan failed: %s", exc)
        runs += 1
        due = next_run(expr, max(due, now()))
    return runs
