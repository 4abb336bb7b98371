"""Calendar periods of a subscription (API.md, Subscriptions): pure functions of the anchor (the
contract's second signature), the unit and the index, with no clock and no database.

Period 1 starts at the anchor; period n starts n-1 months (or years) later, the day clamped to the
length of its month and the time of day kept: an anchor on 31 January gives 28 (or 29) February,
then 31 March — each start is computed from the anchor, never from the previous start, so a short
month never shortens the ones after it. All in UTC.
"""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import NamedTuple

UNITS = {"month": 1, "year": 12}


class Period(NamedTuple):
    index: int
    start: datetime
    end: datetime


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` moved by `months` calendar months, the day clamped to the target month's length."""
    total = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def start_of(anchor: datetime, unit: str, index: int) -> datetime:
    """When period `index` (1-based) begins."""
    if index < 1:
        raise ValueError("periods count from 1")
    return add_months(anchor, UNITS[unit] * (index - 1))


def period(anchor: datetime, unit: str, index: int) -> Period:
    """Period `index`: [start, end), where end is the next period's start."""
    return Period(index, start_of(anchor, unit, index), start_of(anchor, unit, index + 1))


def index_at(anchor: datetime, unit: str, at: datetime) -> int:
    """The index of the period containing `at` (1 before the anchor: period 1 is the first)."""
    if at < anchor:
        return 1
    step = UNITS[unit]
    months = (at.year - anchor.year) * 12 + (at.month - anchor.month)
    index = max(1, months // step + 1)
    # The estimate is off by at most one either way (the day and time within the month).
    while start_of(anchor, unit, index) > at:
        index -= 1
    while start_of(anchor, unit, index + 1) <= at:
        index += 1
    return index
