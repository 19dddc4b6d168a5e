"""China bank business days: weekends, public holidays and make-up workdays (调休).

Backed by the ``chinese-calendar`` package, which knows each year's official schedule
once the State Council publishes it. For a year it does not know yet, only weekends are
non-working days and :func:`is_known_year` says so, so callers can warn.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar


@lru_cache(maxsize=64)
def is_known_year(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@lru_cache(maxsize=4096)
def is_business_day(day: date) -> bool:
    """True on China working days, including make-up Saturdays and Sundays."""
    if is_known_year(day.year):
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5


def next_business_day(day: date) -> date:
    """The first business day strictly after ``day``."""
    d = day + timedelta(days=1)
    while not is_business_day(d):
        d += timedelta(days=1)
    return d


def business_day_on_or_after(day: date) -> date:
    d = day
    while not is_business_day(d):
        d += timedelta(days=1)
    return d
