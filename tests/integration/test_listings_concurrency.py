"""Concurrent writers on PostgreSQL: fair counters add up; a revision goes to review once."""

from __future__ import annotations

import threading

import pytest

from exchange.db import db
from exchange.errors import Conflict
from listings import services
from tests.factories import create_product, principal_of

pytestmark = pytest.mark.postgres


def _parallel(app, n, work):
    barrier = threading.Barrier(n)
    outcomes: list[object] = []

    def run() -> None:
        with app.app_context():
            barrier.wait()
            try:
                outcomes.append(work(db.session))
                db.session.commit()
            except Exception as exc:
                db.session.rollback()
                outcomes.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_fair_signings_from_many_workers_add_up(api):
    fair = api.post("fairs", api.operator(), json={"name": "并发", "venue": "琶洲", "starts_at": "2026-01-01T00:00:00Z",
                                                   "ends_at": "2027-01-01T00:00:00Z"}).get_json()
    outcomes = _parallel(api.app, 8, lambda s: services.record_fair_signing(s, fair_id=fair["id"]))
    assert outcomes == [None] * 8
    refs = iter(range(8))
    outcomes = _parallel(api.app, 8, lambda s: services.record_fair_sale(
        s, fair_id=fair["id"], ref=f"trd_{next(refs)}", currency="CNY", amount=100))
    assert outcomes == [None] * 8
    stats = api.get(f"fairs/{fair['id']}").get_json()["stats"]
    assert stats["contracts_signed_on_site"] == 8
    assert stats["volume"] == [{"currency": "CNY", "amount": 800}]


def test_a_draft_is_submitted_once(api):
    vendor = api.vendor()
    pid = create_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    outcomes = _parallel(api.app, 4, lambda s: services.submit_for_review(s, product_id=pid, actor=who).version)
    assert outcomes.count(1) == 1
    assert all(isinstance(o, Conflict) for o in outcomes if o != 1)
    history = api.get(f"products/{pid}/history", vendor).get_json()["items"]
    assert [h["to_status"] for h in history if h["subject"] == "product"] == ["draft", "in_review"]
