"""Cron expressions and intervals (offchain/sources/schedule.py)."""
import datetime as dt

import pytest

from offchain.sources.errors import ScheduleError
from offchain.sources.schedule import Cron, Schedule

T = dt.datetime(2026, 3, 14, 10, 7, 30)   # a Saturday


@pytest.mark.parametrize("expr, expected", [
    ("* * * * *", dt.datetime(2026, 3, 14, 10, 8)),
    ("*/15 * * * *", dt.datetime(2026, 3, 14, 10, 15)),
    ("0 9-17 * * 1-5", dt.datetime(2026, 3, 16, 9, 0)),          # next weekday morning
    ("30 2 1 * *", dt.datetime(2026, 4, 1, 2, 30)),
    ("0 0 * * sun", dt.datetime(2026, 3, 15, 0, 0)),
    ("0 0 * * 7", dt.datetime(2026, 3, 15, 0, 0)),                # 7 is Sunday too
    ("5,10 10 * jan,mar *", dt.datetime(2026, 3, 14, 10, 10)),
    ("0 12 13 * 5", dt.datetime(2026, 3, 20, 12, 0)),            # day 13 OR Friday (Vixie rule)
    ("@daily", dt.datetime(2026, 3, 15, 0, 0)),
    ("0 0 29 2 *", dt.datetime(2028, 2, 29, 0, 0)),
])
def test_next_after(expr, expected):
    assert Cron.parse(expr).next_after(T) == expected


@pytest.mark.parametrize("expr, reason", [
    ("* * * *", "4 fields"), ("61 * * * *", "outside 0-59"), ("*/0 * * * *", "step"),
    ("5-1 * * * *", "backwards"), ("x * * * *", "not a number"),
])
def test_refused(expr, reason):
    with pytest.raises(ScheduleError, match=reason):
        Cron.parse(expr)


def test_never_matching():
    with pytest.raises(ScheduleError, match="never matches"):
        Cron.parse("0 0 31 2 *").next_after(T)


def test_schedule_delay():
    assert Schedule.of(30, None).delay_after(T) == 30
    assert Schedule.of(None, "*/15 * * * *").delay_after(T) == 450
    assert Schedule.of(None, None).once
