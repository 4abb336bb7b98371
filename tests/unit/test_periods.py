"""Calendar periods of subscriptions (trading.periods): months clamp to the month's length, every
start is computed from the anchor (a short month never shortens the next), years keep 29 February
where it exists, and `index_at` finds the period of any instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trading import periods


def at(y: int, m: int, d: int, h: int = 9, mi: int = 30) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=UTC)


def test_31_january_gives_the_last_day_of_february_then_31_march():
    anchor = at(2027, 1, 31)
    starts = [periods.start_of(anchor, "month", i) for i in range(1, 6)]
    assert starts == [at(2027, 1, 31), at(2027, 2, 28), at(2027, 3, 31), at(2027, 4, 30), at(2027, 5, 31)]
    assert periods.period(anchor, "month", 2) == (2, at(2027, 2, 28), at(2027, 3, 31))


def test_a_leap_year_february_has_29_days():
    assert periods.start_of(at(2028, 1, 31), "month", 2) == at(2028, 2, 29)
    assert periods.start_of(at(2028, 1, 30), "month", 2) == at(2028, 2, 29)
    assert periods.start_of(at(2028, 1, 29), "month", 2) == at(2028, 2, 29)


def test_year_periods_from_29_february():
    anchor = at(2028, 2, 29)
    assert [periods.start_of(anchor, "year", i) for i in range(1, 6)] == [
        at(2028, 2, 29), at(2029, 2, 28), at(2030, 2, 28), at(2031, 2, 28), at(2032, 2, 29)]


def test_december_rolls_into_january_of_the_next_year():
    assert periods.period(at(2026, 12, 15), "month", 1).end == at(2027, 1, 15)
    assert periods.start_of(at(2026, 11, 30), "month", 4) == at(2027, 2, 28)


def test_index_at_the_boundaries():
    anchor = at(2027, 1, 31)
    end_1 = periods.period(anchor, "month", 1).end
    assert periods.index_at(anchor, "month", anchor) == 1
    assert periods.index_at(anchor, "month", end_1 - timedelta(seconds=1)) == 1
    assert periods.index_at(anchor, "month", end_1) == 2
    assert periods.index_at(anchor, "month", anchor - timedelta(days=3)) == 1
    assert periods.index_at(at(2028, 2, 29), "year", at(2029, 2, 28, 9, 29)) == 1
    assert periods.index_at(at(2028, 2, 29), "year", at(2029, 2, 28, 9, 30)) == 2


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC, microsecond=0))


@given(anchor=moments, unit=st.sampled_from(["month", "year"]), index=st.integers(1, 40))
def test_periods_tile_time_without_gaps_or_overlaps(anchor, unit, index):
    p, q = periods.period(anchor, unit, index), periods.period(anchor, unit, index + 1)
    assert p.start < p.end == q.start
    # A month is 28..31 days, a year 365..366; the day of the anchor is kept where the month has it.
    days = (p.end - p.start).days
    assert (28 <= days <= 31) if unit == "month" else (365 <= days <= 366)
    assert p.start.day == min(anchor.day, p.start.day) and p.start.time() == anchor.time()
    if anchor.day <= 28:
        assert p.start.day == anchor.day


@given(anchor=moments, unit=st.sampled_from(["month", "year"]), seconds=st.integers(0, 40 * 366 * 86400))
def test_index_at_finds_the_period_containing_the_instant(anchor, unit, seconds):
    t = anchor + timedelta(seconds=seconds)
    i = periods.index_at(anchor, unit, t)
    p = periods.period(anchor, unit, i)
    assert p.start <= t < p.end
