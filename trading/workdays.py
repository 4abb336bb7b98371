"""Filing deadlines in mainland working days, as pure functions.

A standard contract (national or GBA) is filed within `FILING_WORKING_DAYS` working days. Counting is done in
China Standard Time (Asia/Shanghai): the signature's CST date is day 0, counting starts with the next calendar
day, and the deadline is 23:59:59 CST on the 10th mainland working day, returned as an aware UTC datetime.

Working days come from the `chinese_calendar` package (the State Council's yearly holiday schedule, including the
adjusted working days — 调休 — that fall on a Saturday or Sunday). Nothing here keeps its own list of holidays.
For a year the package does not know yet, `chinese_calendar.is_workday` raises NotImplementedError; such days
count Monday to Friday as working days and the result is marked provisional, to be recomputed once the package
is updated (`pip install -U chinesecalendar` after the State Council publishes the schedule, usually in
November of the year before).

Imports nothing from the project.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

FILING_WORKING_DAYS = 10
CST = ZoneInfo("Asia/Shanghai")
_END_OF_DAY = time(23, 59, 59)


def _is_workday(day: date) -> tuple[bool, bool]:
    """(is a mainland working day, known to the calendar)."""
    try:
        return bool(chinese_calendar.is_workday(day)), True
    except NotImplementedError:
        return day.weekday() < 5, False


def calendar_knows(year: int) -> bool:
    """Does the installed `chinese_calendar` carry the holiday schedule of `year`?"""
    return _is_workday(date(year, 6, 30))[1]


def filing_due(signed_at: datetime) -> tuple[datetime, bool]:
    """(the filing deadline as an aware UTC datetime, provisional) for a contract signed at `signed_at`.

    `signed_at` must be timezone-aware (UTC by convention). `provisional` is True when any day counted lies in a
    year the calendar does not know; those days were counted as Monday-Friday working days.
    """
    if signed_at.tzinfo is None or signed_at.utcoffset() is None:
        raise ValueError("signed_at must be an aware datetime (UTC)")
    day = signed_at.astimezone(CST).date()
    counted = 0
    provisional = False
    while counted < FILING_WORKING_DAYS:
        day += timedelta(days=1)
        working, known = _is_workday(day)
        provisional = provisional or not known
        counted += working
    due = datetime.combine(day, _END_OF_DAY, tzinfo=CST).astimezone(UTC)
    return due.replace(microsecond=0), provisional
