"""The privacy-computing demo's synthetic retail file: the same bytes every time, the promised columns,
and facts its sandbox policy relies on (rows per person, bounds) true of every row."""

from __future__ import annotations

import csv
import io
from collections import Counter
from functools import cache

from delivery import demo


@cache
def table_rows() -> tuple[dict[str, str], ...]:
    return tuple(csv.DictReader(io.StringIO(demo.retail_csv().decode())))


def test_the_retail_file_is_deterministic():
    assert demo.retail_csv() == demo.retail_csv()


def test_the_retail_file_has_its_columns_and_a_few_thousand_rows():
    data = demo.retail_csv()
    assert data.splitlines()[0].decode() == ",".join(demo.RETAIL_COLUMNS)
    assert {"customer_id", "phone", "basket_amount_cents", "items"} <= set(demo.RETAIL_COLUMNS)
    table = table_rows()
    assert 2_000 <= len(table) <= 6_000
    assert all(len(r) == len(demo.RETAIL_COLUMNS) and None not in r.values() for r in table)


def test_every_city_of_the_bay_area_appears_with_enough_rows_for_k():
    by_city = Counter(r["city"] for r in table_rows())
    gba = {"guangzhou", "shenzhen", "zhuhai", "foshan", "huizhou", "dongguan", "zhongshan", "jiangmen",
           "zhaoqing", "hong_kong", "macao"}
    assert set(by_city) == gba
    # A count by city is never suppressed at the largest k a demo policy would use.
    assert min(by_city.values()) >= 50
    assert {r["month"] for r in table_rows()} == {f"2026-{m:02d}" for m in range(1, 11)}
    assert {r["district"] for r in table_rows() if r["city"] == "macao"} == {"se", "santo_antonio", "taipa"}


def test_the_policy_facts_hold_for_every_row():
    table = table_rows()
    per_person = Counter(r["customer_id"] for r in table)
    assert max(per_person.values()) == demo.RETAIL_ROWS_PER_PERSON
    assert len(per_person) == demo.RETAIL_PEOPLE
    for column, (low, high) in demo.RETAIL_BOUNDS.items():
        values = [int(r[column]) for r in table]
        assert low <= min(values) and max(values) <= high, column
    # One person, one phone and one age band; phone numbers are invalid by construction.
    people = {(r["customer_id"], r["phone"], r["age_band"]) for r in table}
    assert len(people) == len(per_person)
    assert all(r["phone"].startswith(("+86 100 ", "+852 0", "+853 0")) for r in table)
    # Some fine-grained groups are below k = 10: the demo has something to suppress.
    cells = Counter((r["city"], r["district"], r["category"]) for r in table)
    assert any(n < 10 for n in cells.values()) and any(n >= 10 for n in cells.values())

