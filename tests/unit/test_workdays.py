"""Filing deadlines: 10 mainland working days from the day after signature in Asia/Shanghai, due 23:59:59 CST.

Expected dates are counted by hand from the State Council's published 2026 schedule (国办发明电〔2025〕7号 as
carried by `chinese_calendar` 1.11): New Year 1-3 Jan, Sun 4 Jan worked; Spring Festival 15-23 Feb, Sat 14 Feb and
Sat 28 Feb worked; Mid-autumn 25-27 Sep; National Day 1-7 Oct, Sun 20 Sep and Sat 10 Oct worked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import chinese_calendar
import pytest

from trading import workdays
from trading.workdays import CST, FILING_WORKING_DAYS, calendar_knows, filing_due


def cst(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    """A signature at a CST wall-clock time, given to filing_due as UTC (as the callers do)."""
    return datetime(y, m, d, hh, mm, tzinfo=CST).astimezone(UTC)


def due_on(y: int, m: int, d: int) -> datetime:
    """23:59:59 CST of a day, as UTC: 15:59:59 UTC the same day (China has no daylight saving)."""
    return datetime(y, m, d, 15, 59, 59, tzinfo=UTC)


def test_the_installed_calendar_carries_the_published_2026_schedule():
    worked_weekends = [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20),
                       date(2026, 10, 10)]
    assert all(chinese_calendar.is_workday(d) and d.weekday() >= 5 for d in worked_weekends)
    spring = [date(2026, 2, 15) + timedelta(days=i) for i in range(9)]  # 15-23 Feb
    national = [date(2026, 10, 1) + timedelta(days=i) for i in range(7)]  # 1-7 Oct
    assert not any(chinese_calendar.is_workday(d) for d in [*spring, *national])
    assert chinese_calendar.is_workday(date(2026, 10, 8))  # 2026's National Day week ends on the 7th


CASES = [
    # Spring Festival 2026. Signed Fri 13 Feb: Sat 14 (worked) =1; 15-23 off; Tue 24..Fri 27 =2..5; Sat 28 (worked)
    # =6; Mon 2..Thu 5 Mar =7..10.
    ("spring-fri-13-feb", cst(2026, 2, 13), due_on(2026, 3, 5), False),
    # Signed Thu 12 Feb: Fri 13 =1, Sat 14 =2, Tue 24..Fri 27 =3..6, Sat 28 =7, Mon 2..Wed 4 Mar =8..10.
    ("spring-thu-12-feb", cst(2026, 2, 12), due_on(2026, 3, 4), False),
    # Signed on the first holiday, Sun 15 Feb: Tue 24..Fri 27 =1..4, Sat 28 =5, Mon 2..Fri 6 Mar =6..10.
    ("spring-sun-15-feb", cst(2026, 2, 15), due_on(2026, 3, 6), False),
    # Signed on the worked Saturday 14 Feb itself: the count starts on Sun 15 (off): Tue 24 =1 ... as above, Fri 6.
    ("spring-sat-14-feb", cst(2026, 2, 14), due_on(2026, 3, 6), False),
    # National Day 2026. Signed Wed 30 Sep: 1-7 Oct off; Thu 8 =1, Fri 9 =2, Sat 10 (worked) =3, Mon 12..Fri 16
    # =4..8, Mon 19 =9, Tue 20 =10.
    ("national-wed-30-sep", cst(2026, 9, 30), due_on(2026, 10, 20), False),
    # Signed Fri 18 Sep: Sun 20 (worked) =1, Mon 21..Thu 24 =2..5, 25-27 Mid-autumn off, Mon 28..Wed 30 =6..8,
    # 1-7 Oct off, Thu 8 =9, Fri 9 =10.
    ("national-fri-18-sep", cst(2026, 9, 18), due_on(2026, 10, 9), False),
    # New Year 2026. Signed Wed 31 Dec 2025: 1-3 Jan off, Sun 4 (worked) =1, Mon 5..Fri 9 =2..6, Mon 12..Thu 15 =7..10.
    ("new-year-wed-31-dec-2025", cst(2025, 12, 31), due_on(2026, 1, 15), False),
    # 23:30 CST on Mon 2 Mar 2026 is 15:30 UTC the same day: the count starts Tue 3 Mar: 3..6 =1..4, 9..13 =5..9,
    # Mon 16 =10.
    ("late-evening-cst", cst(2026, 3, 2, 23, 30), due_on(2026, 3, 16), False),
    # 00:30 CST on Tue 3 Mar is 16:30 UTC on Mon 2 Mar: the CST date (3 Mar) counts, so the count starts Wed 4 Mar:
    # 4..6 =1..3, 9..13 =4..8, Mon 16 =9, Tue 17 =10 (counting from the UTC date would give Mon 16).
    ("after-cst-midnight", cst(2026, 3, 3, 0, 30), due_on(2026, 3, 17), False),
    # An unknown year: 2031 (1 Jan 2031 is a Wednesday). Signed Mon 6 Jan: Tue 7..Fri 10 =1..4, Mon 13..Fri 17
    # =5..9, Mon 20 =10; weekends only, provisional.
    ("unknown-2031", cst(2031, 1, 6), due_on(2031, 1, 20), True),
    # Known into unknown: signed Thu 24 Dec 2026. Fri 25 =1, Mon 28..Thu 31 =2..5, then 2027 (unknown; 1 Jan 2027 is
    # a Friday and counts as Mon-Fri): Fri 1 =6, Mon 4..Thu 7 =7..10. Provisional.
    ("known-into-unknown", cst(2026, 12, 24), due_on(2027, 1, 7), True),
    # Close to the edge but entirely inside 2026: signed Thu 10 Dec: Fri 11 =1, 14..18 =2..6, 21..24 =7..10.
    ("end-of-known-year", cst(2026, 12, 10), due_on(2026, 12, 24), False),
    # Signed 23:30 CST on Thu 31 Dec 2026 (15:30 UTC): every counted day is in 2027: Fri 1 =1, 4..8 =2..6,
    # 11..14 =7..10.
    ("new-years-eve-late", cst(2026, 12, 31, 23, 30), due_on(2027, 1, 14), True),
]


@pytest.mark.parametrize(("signed_at", "due", "provisional"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_filing_due(signed_at, due, provisional):
    assert filing_due(signed_at) == (due, provisional)


@pytest.mark.parametrize("signed_at", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_the_due_moment_is_end_of_day_cst_in_utc(signed_at):
    due, _ = filing_due(signed_at)
    assert due.tzinfo is UTC and due.microsecond == 0
    assert due.astimezone(CST).time() == time(23, 59, 59)
    assert due.astimezone(CST).date() > signed_at.astimezone(CST).date()


def test_microseconds_and_other_offsets_do_not_matter():
    signed = cst(2026, 2, 13).replace(microsecond=123_456)
    assert filing_due(signed) == (due_on(2026, 3, 5), False)
    assert filing_due(signed.astimezone(CST)) == (due_on(2026, 3, 5), False)


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="aware"):
        filing_due(datetime(2026, 2, 13, 2, 0))


def test_calendar_knows():
    assert FILING_WORKING_DAYS == 10
    assert calendar_knows(2026) and calendar_knows(2024)
    assert not calendar_knows(2031)


def test_working_days_come_from_the_package(monkeypatch):
    """Replace the package's answer: the deadline follows it, so no list of holidays is kept elsewhere."""
    monkeypatch.setattr(workdays.chinese_calendar, "is_workday", lambda day: True)
    assert filing_due(cst(2026, 2, 13)) == (due_on(2026, 2, 23), False)

    def unknown(day):
        raise NotImplementedError(f"no available data for year {day.year}")

    monkeypatch.setattr(workdays.chinese_calendar, "is_workday", unknown)
    assert filing_due(cst(2026, 2, 13)) == (due_on(2026, 2, 27), True)  # Mon 16..Fri 27, weekends only
    assert not calendar_knows(2026)
