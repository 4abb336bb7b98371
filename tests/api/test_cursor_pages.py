"""Append-only logs page by cursor (API.md Conventions): `?after=<id>&limit=` answers the next items in
the log's append order and `next` (the last item's id, or null at the end), stable under inserts.

One table of the four logs (ledger entries, the audit trail, webhook deliveries, an entitlement's
access log); one parametrized test per property. The expected contents of each log come straight from
the database in its append order, never from the API under test. One exchange is built for the
module: the tests only append to the logs and compute what they expect when they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from delivery import accesses
from delivery.models import Access
from exchange.db import db
from exchange.events import outbox
from exchange.events.delivery import fan_out
from exchange.events.models import WebhookDelivery
from exchange.identity import audit
from exchange.identity.models import AuditEvent
from exchange.ledger import engine
from exchange.ledger.models import JournalEntry
from tests.deliveryflow import bought
from tests.factories import Actor, ApiHelper
from tests.ledger_helpers import escrow, funding, move

PUBLIC = "https://93.184.215.14/datafair/events"
EVENT = "organization.verified"
# More than a cursor page of 20 in every log, so the query-count test sees full pages.
INITIAL = 22


@dataclass
class World:
    api: ApiHelper
    op: Actor
    mine: dict[str, Any]  # a bought trade: vendor, buyer, trade, ent, release
    other: dict[str, Any]  # another one, of other parties
    endpoint: str = ""  # the buyer's webhook endpoint
    other_endpoint: str = ""  # the other buyer's
    outsider: Actor | None = None
    counter: list[int] = field(default_factory=lambda: [0])

    def n(self) -> int:
        self.counter[0] += 1
        return self.counter[0]


# -- the four logs: how to read, append to and enumerate each --------------------------------------
def _ledger_append(w: World, trade_id: str) -> None:
    engine.post_entry(db.session, kind="payment", trade_id=trade_id, metadata={"n": w.n()},
                      postings=move(funding(w.mine["buyer"].org_id), escrow(trade_id), 100))


def _audit_append(w: World, action: str) -> None:
    audit.record(db.session, None, action, "test", f"obj_{w.n()}")


def _access_append(w: World, ent_id: str) -> None:
    accesses.allowed(db.session, entitlement_id=ent_id, kind="download_link", user_id=None, release_id=None,
                     obj=f"file-{w.n()}.csv", size=None, sha256=None)


def _delivery_append(w: World, org_id: str) -> None:
    outbox.emit(db.session, event_type=EVENT, org_ids=[org_id], payload={"n": w.n()})
    db.session.commit()
    fan_out(db.session)


@dataclass(frozen=True)
class Log:
    name: str
    path: Callable[[World], str]  # the list of the log under test
    reader: Callable[[World], Actor]  # someone who sees it
    subject: Callable[[World], str]  # what `append` appends to (a trade, an entitlement, an org)
    elsewhere: Callable[[World], str]  # the same for another list of the same log
    append: Callable[[World, str], None]
    ids: Callable[[World], Any]  # the select of the ids of the list under test, in append order
    foreign: Callable[[World], Any]  # one id of the other list (invisible here)
    page_mode: bool = True

    def __str__(self) -> str:
        return self.name


LOGS = [
    Log("ledger", path=lambda w: f"ledger/entries?trade_id={w.mine['trade']['id']}", reader=lambda w: w.mine["buyer"],
        subject=lambda w: w.mine["trade"]["id"], elsewhere=lambda w: w.other["trade"]["id"], append=_ledger_append,
        ids=lambda w: select(JournalEntry.id).where(JournalEntry.trade_id == w.mine["trade"]["id"])
        .order_by(JournalEntry.seq),
        foreign=lambda w: select(JournalEntry.id).where(JournalEntry.trade_id == w.other["trade"]["id"])),
    Log("audit", path=lambda w: "audit?action=test.appended", reader=lambda w: w.op,
        subject=lambda w: "test.appended", elsewhere=lambda w: "test.elsewhere", append=_audit_append,
        ids=lambda w: select(AuditEvent.id).where(AuditEvent.action == "test.appended").order_by(AuditEvent.id),
        foreign=lambda w: select(AuditEvent.id).where(AuditEvent.action != "test.appended")),
    Log("deliveries", path=lambda w: f"webhook-endpoints/{w.endpoint}/deliveries", reader=lambda w: w.mine["buyer"],
        subject=lambda w: w.mine["buyer"].org_id, elsewhere=lambda w: w.other["buyer"].org_id,
        append=_delivery_append,
        ids=lambda w: select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == w.endpoint)
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id),
        foreign=lambda w: select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == w.other_endpoint)),
    Log("accesses", path=lambda w: f"entitlements/{w.mine['ent']['id']}/accesses", reader=lambda w: w.mine["buyer"],
        subject=lambda w: w.mine["ent"]["id"], elsewhere=lambda w: w.other["ent"]["id"], append=_access_append,
        ids=lambda w: select(Access.id).where(Access.entitlement_id == w.mine["ent"]["id"]).order_by(Access.id),
        foreign=lambda w: select(Access.id).where(Access.entitlement_id == w.other["ent"]["id"]), page_mode=False),
]
by_name = pytest.mark.parametrize("log", LOGS, ids=str)


def append(w: World, log: Log, count: int = 1, elsewhere: int = 0) -> None:
    """`count` new items in the list under test and `elsewhere` in another list of the same log, interleaved."""
    with w.api.app.app_context():
        for i in range(max(count, elsewhere)):
            if i < elsewhere:
                log.append(w, log.elsewhere(w))
            if i < count:
                log.append(w, log.subject(w))
        db.session.commit()


def expected(w: World, log: Log) -> list[Any]:
    with w.api.app.app_context():
        return list(db.session.execute(log.ids(w)).scalars())


def foreign_id(w: World, log: Log) -> Any:
    with w.api.app.app_context():
        found = db.session.execute(log.foreign(w).limit(1)).scalar_one_or_none()
    assert found is not None, f"{log}: the other list is empty"
    return found


def url(path: str, **query: Any) -> str:
    qs = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    return path + (("&" if "?" in path else "?") + qs if qs else "")


def get(w: World, path: str, actor: Actor, **query: Any) -> Any:
    return w.api.get(url(path, **query), actor)


def walk(w: World, log: Log, actor: Actor | None = None, after: Any = None, limit: int | None = 3,
         between: Callable[[int], None] | None = None) -> list[Any]:
    """Follow the cursor from `after` to the end; `between(i)` runs after the i-th page."""
    seen: list[Any] = []
    for i in range(1000):
        r = get(w, log.path(w), actor or log.reader(w), after=after, limit=limit)
        assert r.status_code == 200, (log.name, r.get_json())
        body = r.get_json()
        assert set(body) == {"items", "next", "limit"}, body.keys()
        page = [item["id"] for item in body["items"]]
        seen += page
        assert len(page) <= (limit or 20)
        if between:
            between(i)
        if body["next"] is None:
            return seen
        assert body["next"] == page[-1] and body["next"] != after, "the cursor must move on"
        after = body["next"]
    raise AssertionError("the cursor never ended")


def page_ids(w: World, log: Log, actor: Actor, extra: str = "") -> tuple[int, list[Any]]:
    """Every id of the page-mode list (status, ids), following the page numbers."""
    ids: list[Any] = []
    for number in range(1, 1000):
        r = get(w, log.path(w) + extra, actor, page=number, per_page=100)
        if r.status_code != 200:
            return r.status_code, ids
        body = r.get_json()
        ids += [item["id"] for item in body["items"]]
        if number * 100 >= body["total"]:
            return 200, ids
    raise AssertionError("the pages never ended")


@pytest.fixture(scope="module")
def world(_session_app: Any, database: Any) -> Iterator[World]:
    saved = dict(_session_app.config)
    database.reset(_session_app)
    api = ApiHelper(_session_app)
    op = api.operator()
    w = World(api=api, op=op, mine=bought(api), other=bought(api), outsider=api.enterprise())
    for key, actor in (("endpoint", w.mine["buyer"]), ("other_endpoint", w.other["buyer"])):
        r = api.post("webhook-endpoints", actor, json={"url": PUBLIC, "events": [EVENT]})
        assert r.status_code == 201, r.get_json()
        setattr(w, key, r.get_json()["id"])
    for log in LOGS:
        append(w, log, INITIAL, elsewhere=2)
    yield w
    _session_app.config.clear()
    _session_app.config.update(saved)
    with _session_app.app_context():
        db.session.remove()


# -- properties --------------------------------------------------------------------------------------
@by_name
@pytest.mark.parametrize("limit", [1, 3, 20])
def test_the_cursor_visits_every_item_once_in_append_order(world, log, limit):
    everything = expected(world, log)
    assert len(everything) >= INITIAL
    assert walk(world, log, limit=limit) == everything  # `?limit=` alone starts at the beginning
    # From any item on: exactly the items after it.
    middle = len(everything) // 2
    assert walk(world, log, after=everything[middle], limit=limit) == everything[middle + 1:]
    # `after` alone: 20 at a time.
    body = get(world, log.path(world), log.reader(world), after=everything[0]).get_json()
    assert body["limit"] == 20 and [i["id"] for i in body["items"]] == everything[1:21]
    assert body["next"] == (everything[20] if len(everything) > 21 else None)
    # After the last item: an empty page, `next` null.
    r = get(world, log.path(world), log.reader(world), after=everything[-1])
    assert r.status_code == 200 and r.get_json() == {"items": [], "next": None, "limit": 20}


@by_name
def test_items_appended_while_paging_come_later_never_skipped_or_repeated(world, log):
    before = expected(world, log)

    def grow(page: int) -> None:
        if page in (0, 2):
            append(world, log, 2, elsewhere=1)

    seen = walk(world, log, limit=4, between=grow)
    assert len(seen) == len(set(seen))
    assert seen == expected(world, log) == before + seen[len(before):]
    assert len(seen) == len(before) + 4
    # A client at the end keeps its last id: what is appended next is its following page.
    append(world, log, 3, elsewhere=1)
    assert walk(world, log, after=seen[-1], limit=2) == expected(world, log)[len(seen):]


@by_name
@pytest.mark.parametrize("limit", ["0", "101", "-1", "x", "1.5"])
def test_limit_out_of_range_is_422(world, log, limit):
    r = get(world, log.path(world), log.reader(world), limit=limit)
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json" and "limit" in r.get_json()["errors"]


@by_name
@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(world, log, limit):
    body = get(world, log.path(world), log.reader(world), limit=limit).get_json()
    assert body["limit"] == limit and len(body["items"]) == min(limit, len(expected(world, log)))


@by_name
@pytest.mark.parametrize("which", ["unknown", "another list's", "malformed", "past 32 bits", "past 2^53"])
def test_an_after_that_is_not_an_item_of_this_list_is_422(world, log, which):
    # Integer ids are 32-bit on PostgreSQL: a larger `after` is a 422 on both engines, never a 500 on one.
    integer = log.name in ("audit", "accesses")
    after = {"unknown": 2**31 - 1 if integer else "jnl_0000000000000000000000000000dead",
             "another list's": foreign_id(world, log),
             "malformed": "x" if integer else "",
             "past 32 bits": 2**31 if integer else "x" * 81,
             "past 2^53": 2**53 + 1 if integer else "y" * 1000}[which]
    r = get(world, log.path(world), log.reader(world), after=after)
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json" and list(r.get_json()["errors"]) == ["after"]


@by_name
@pytest.mark.parametrize(("cursor", "paged"), [({"after": None}, {"page": 1}), ({"limit": 5}, {"per_page": 5}),
                                               ({"limit": 5}, {"page": 2, "per_page": 5})])
def test_mixing_cursor_and_page_numbers_is_422(world, log, cursor, paged):
    query = {**cursor, **paged}
    if "after" in query:
        query["after"] = expected(world, log)[0]
    r = get(world, log.path(world), log.reader(world), **query)
    assert r.status_code == 422, r.get_json()
    errors = r.get_json()["errors"]
    assert set(paged) <= set(errors), errors


def test_without_after_or_limit_page_mode_is_unchanged(world):
    for log in LOGS:
        if not log.page_mode:
            continue
        body = get(world, log.path(world), log.reader(world)).get_json()
        assert set(body) == {"items", "total", "page", "per_page"}, log.name
        assert (body["page"], body["per_page"], body["total"]) == (1, 20, len(expected(world, log)))


# Who asks, with which filter: in cursor mode exactly what page mode shows them (same status, same items).
VIEWERS = {
    "ledger": [("buyer", ""), ("vendor", ""), ("op", ""), ("outsider", ""), ("other_buyer", ""),
               ("op", "&kind=settlement"), ("buyer", "&kind=payment")],
    "audit": [("op", ""), ("op", "&actor_org_id=org_nobody"), ("buyer", ""), ("outsider", "")],
    "deliveries": [("buyer", ""), ("buyer_member", ""), ("vendor", ""), ("other_buyer", ""), ("op", "")],
    "accesses": [("buyer", ""), ("vendor", ""), ("op", ""), ("outsider", ""), ("other_buyer", "")],
}


def actor(w: World, who: str) -> Actor:
    if who == "buyer_member":
        return w.api.member(w.mine["buyer"])
    return {"buyer": w.mine["buyer"], "vendor": w.mine["vendor"], "op": w.op, "outsider": w.outsider,
            "other_buyer": w.other["buyer"]}[who]


def cursor_ids(w: World, log: Log, who: Actor, extra: str) -> tuple[int, list[Any]]:
    ids: list[Any] = []
    after = None
    for _ in range(1000):
        r = get(w, log.path(w) + extra, who, after=after, limit=7)
        if r.status_code != 200:
            return r.status_code, ids
        body = r.get_json()
        ids += [item["id"] for item in body["items"]]
        if body["next"] is None:
            return 200, ids
        assert body["next"] != after, "the cursor must move on"
        after = body["next"]
    raise AssertionError("the cursor never ended")


@by_name
def test_cursor_mode_shows_each_caller_what_page_mode_does(world, log):
    everything = expected(world, log)
    outcomes = {}
    for who, extra in VIEWERS[log.name]:
        caller = actor(world, who)
        status, ids = cursor_ids(world, log, caller, extra)
        if log.page_mode:
            paged_status, paged = page_ids(world, log, caller, extra)
            assert status == paged_status, (who, extra)
            assert sorted(ids, key=str) == sorted(paged, key=str), (who, extra)
        assert ids == [i for i in everything if i in set(ids)], "cursor pages in append order"
        outcomes[(who, extra)] = (status, len(ids))
    # The table means something: the reader sees the whole list, someone is refused, a filter narrows it.
    assert outcomes[VIEWERS[log.name][0]] == (200, len(everything))
    assert any(status in (403, 404) for status, _ in outcomes.values()), outcomes


@by_name
def test_cursor_pages_run_a_fixed_number_of_statements_and_never_count(world, log):
    with world.api.app.app_context():
        db_engine = db.engine
    first = expected(world, log)[0]

    def statements(limit: int) -> list[str]:
        seen: list[str] = []

        def listen(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(db_engine, "before_cursor_execute", listen)
        try:
            r = get(world, log.path(world), log.reader(world), after=first, limit=limit)
        finally:
            event.remove(db_engine, "before_cursor_execute", listen)
        assert r.status_code == 200 and len(r.get_json()["items"]) == limit, r.get_json()
        return seen

    statements(1)  # warm-up
    one, many = statements(1), statements(20)
    assert len(one) == len(many), (one, many)
    assert not [s for s in many if "count(" in s.lower()], many


@settings(max_examples=8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(log=st.sampled_from(LOGS),
       steps=st.lists(st.one_of(st.tuples(st.just("append"), st.integers(1, 3), st.integers(0, 2)),
                                st.tuples(st.just("fetch"), st.integers(1, 4), st.just(0))), max_size=8))
def test_any_interleaving_of_appends_and_fetches_yields_each_item_once_in_order(world, log, steps):
    start = expected(world, log)[-1]
    after, seen = start, []
    for op, a, b in [*steps, ("drain", 0, 0)]:
        if op == "append":
            append(world, log, a, elsewhere=b)
            continue
        for _ in range(100):
            body = get(world, log.path(world), log.reader(world), after=after, limit=a or 5).get_json()
            seen += [item["id"] for item in body["items"]]
            if body["items"]:
                assert body["items"][-1]["id"] != after, "the cursor must move on"
                after = body["items"][-1]["id"]
            if op == "fetch" or body["next"] is None:
                break
    everything = expected(world, log)
    assert seen == everything[everything.index(start) + 1:]
