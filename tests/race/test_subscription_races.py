"""Subscription renewals raced on real PostgreSQL (trading.subscriptions: the `subscriptions` row is
the lock every change of a subscription takes first).

* Two sweeps renewing the same due subscriptions at once (each thread its own app context, session
  and connection, released together by a Barrier) make exactly one period-2 trade per contract.
* The buyer's cancellation (`POST /contracts/{id}/subscription/cancel`, its own test client and
  thread) racing the renewal of the same subscription has a serial outcome: cancelled first, no
  period-2 trade; renewed first, the period-2 trade is cancelled with the subscription. Never an
  `awaiting_payment` trade on a cancelled subscription, and the cancellation answers 200 either way.

The clock is the domain clock (`NOW_OFFSET_S`), moved to the latest `renews_at`; nothing sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from exchange.db import db, utcnow
from exchange.jobs import scheduler as jobs
from tests.race.harness import query
from tests.subscriptionflow import contract, parse, set_clock, subscribe
from trading import subscriptions

pytestmark = pytest.mark.postgres

SUBSCRIPTIONS = 5
TIMEOUT_S = 60.0


def _due_world(api: Any, app: Any, n: int) -> list[dict[str, Any]]:
    """`n` subscriptions of 3 periods, period 1 paid, and the clock at the latest of their renews_at."""
    deals = [subscribe(api, periods=3) for _ in range(n)]
    renews = [parse(contract(api, d["buyer"], d["contract"]["id"])["subscription"]["renews_at"]) for d in deals]
    set_clock(app, max(renews))
    return deals


def _together(app: Any, jobs_: list[Callable[[], Any]]) -> list[Any]:
    """Run each job in its own thread and app context (its own session and connection), released
    together by a Barrier; their results in order. A thread's exception fails the test."""
    barrier = threading.Barrier(len(jobs_))
    results: list[Any] = [None] * len(jobs_)
    done = [False] * len(jobs_)
    crashed: list[BaseException] = []

    def worker(i: int, job: Callable[[], Any]) -> None:
        try:
            with app.app_context():
                try:
                    barrier.wait()
                    results[i] = job()
                    done[i] = True
                finally:
                    db.session.remove()
        except BaseException as exc:  # reported below
            crashed.append(exc)

    threads = [threading.Thread(target=worker, args=(i, j), daemon=True) for i, j in enumerate(jobs_)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_S)
    assert not crashed, crashed
    assert all(done), "a thread did not finish in time (a lock wait or a deadlock)"
    return results


def _renew_all(ids: list[str]) -> list[str]:
    """What one sweep does: each due id renewed in its own transaction; the ids this thread renewed."""
    renewed = []
    for contract_id in ids:
        now = utcnow()
        try:
            if subscriptions.renew(db.session, contract_id, now):
                renewed.append(contract_id)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return renewed


def _period_trades(app: Any, ids: list[str]) -> dict[tuple[str, int], int]:
    rows = query(app, "SELECT contract_id, period_index, count(*) FROM trades WHERE contract_id = ANY(:ids) "
                      "GROUP BY contract_id, period_index", ids=ids)
    return {(r[0], r[1]): r[2] for r in rows}


def _subs(app: Any, ids: list[str]) -> dict[str, tuple[str, int]]:
    rows = query(app, "SELECT contract_id, status, latest_period FROM subscriptions WHERE contract_id = ANY(:ids)",
                 ids=ids)
    return {r[0]: (r[1], r[2]) for r in rows}


def _due(app: Any) -> list[str]:
    with app.app_context():
        try:
            return subscriptions.renewal_due(db.session, utcnow(), 1000)
        finally:
            db.session.remove()


@pytest.mark.parametrize("how", ["renew", "sweep"])
def test_two_sweeps_renewing_at_once_make_one_trade_per_period(api, app, how):
    deals = _due_world(api, app, SUBSCRIPTIONS)
    ids = sorted(d["contract"]["id"] for d in deals)
    due = _due(app)
    assert sorted(due) == ids, due
    if how == "renew":
        results = _together(app, [lambda: _renew_all(due), lambda: _renew_all(due)])
        # Each subscription was renewed by exactly one of the two sweeps; the other saw it no longer due.
        renewed = sorted(results[0] + results[1])
        assert renewed == ids, results
    else:
        results = _together(app, [lambda: jobs.run_group("sweep"), lambda: jobs.run_group("sweep")])
        for r in results:
            assert not str(r["trading.subscription_renewal"]).startswith("error"), results
        counts = sorted(int(str(r["trading.subscription_renewal"]).split()[0]) for r in results)
        assert sum(counts) == SUBSCRIPTIONS, results
    trades = _period_trades(app, ids)
    for cid in ids:
        assert trades.get((cid, 1)) == 1 and trades.get((cid, 2)) == 1, trades
        assert (cid, 3) not in trades, trades
    assert _subs(app, ids) == {cid: ("active", 2) for cid in ids}
    assert _due(app) == []


def test_a_cancellation_racing_the_renewal_has_a_serial_outcome(api, app):
    deals = _due_world(api, app, SUBSCRIPTIONS)
    ids = [d["contract"]["id"] for d in deals]
    assert sorted(_due(app)) == sorted(ids)
    orders: dict[str, str] = {}
    for deal in deals:
        cid, buyer = deal["contract"]["id"], deal["buyer"]

        def renewal(cid: str = cid) -> bool:
            return bool(_renew_all([cid]))

        def cancellation(cid: str = cid, buyer: Any = buyer) -> tuple[int, Any]:
            r = app.test_client().post(f"/api/v1/contracts/{cid}/subscription/cancel", json={},
                                       headers=buyer.headers)
            return r.status_code, r.get_json()

        renewed, (status, body) = _together(app, [renewal, cancellation])
        assert status == 200, body
        assert body["subscription"]["status"] == "cancelled", body
        rows = query(app, "SELECT period_index, status FROM trades WHERE contract_id = :c ORDER BY period_index", c=cid)
        by_period = {r[0]: r[1] for r in rows}
        assert len(rows) == len(by_period), rows  # one trade per period
        assert by_period[1] == "escrowed", rows
        if renewed:  # renewal first: its trade was cancelled with the subscription
            assert by_period.get(2) == "cancelled", rows
            orders[cid] = "renewal first"
        else:  # cancellation first: nothing renewed
            assert 2 not in by_period, rows
            orders[cid] = "cancellation first"
        assert "awaiting_payment" not in by_period.values(), rows
        assert _subs(app, [cid]) == {cid: ("cancelled", 2 if renewed else 1)}
    # Nothing is left awaiting payment on any cancelled subscription, whatever the order.
    left = query(app, "SELECT t.id FROM trades t JOIN subscriptions s ON s.contract_id = t.contract_id "
                      "WHERE s.status = 'cancelled' AND t.status = 'awaiting_payment' AND t.contract_id = ANY(:ids)",
                 ids=ids)
    assert left == [], (left, orders)
    assert _due(app) == []
