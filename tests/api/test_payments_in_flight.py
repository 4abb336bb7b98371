"""One payment in flight per trade: a second payment while one is pending -> 409 naming it; the buyer
cancels it and pays again; the database refuses a second pending payment even when requests race."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from exchange.db import db
from tests.api.test_settlement import ledger_valid, signed_trade
from trading.models import Payment


@pytest.fixture
def parties(api):
    return api.vendor(), api.enterprise(), api.operator()


def test_a_second_payment_while_one_is_pending_is_refused_until_it_is_cancelled(app, api, parties):
    vendor, buyer, operator = parties
    trade_id = signed_trade(api, vendor, buyer)
    first = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"})
    assert first.status_code == 201, first.get_json()
    first = first.get_json()
    again = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"})
    assert again.status_code == 409
    detail = again.get_json()["detail"]
    assert first["id"] in detail and f"payments/{first['id']}/cancel" in detail

    # Only the buyer cancels; others are refused and nothing changes.
    assert api.post(f"payments/{first['id']}/cancel", vendor).status_code == 403
    assert api.post(f"payments/{first['id']}/cancel", api.enterprise()).status_code == 404
    assert api.post("payments/pay_nope/cancel", buyer).status_code == 404
    assert api.get(f"payments/{first['id']}", buyer).get_json()["status"] == "pending"

    r = api.post(f"payments/{first['id']}/cancel", buyer)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "canceled" and r.get_json()["refund_reason"] is None
    r = api.post(f"payments/{first['id']}/cancel", buyer)
    assert r.status_code == 409 and "canceled" in r.get_json()["detail"]
    # A cancelled payment cannot be confirmed any more.
    assert api.post(f"payments/{first['id']}/confirm", operator).status_code == 409

    second = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"})
    assert second.status_code == 201, second.get_json()
    second = second.get_json()
    assert second["id"] != first["id"] and second["status"] == "pending"
    assert api.post(f"payments/{second['id']}/confirm", operator).status_code == 200
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert trade["status"] == "escrowed" and trade["paid_amount"] == second["amount"]
    # Paid: neither another payment nor cancelling the succeeded one.
    assert api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).status_code == 409
    assert api.post(f"payments/{second['id']}/cancel", buyer).status_code == 409
    ledger_valid(app)


def test_the_database_keeps_one_pending_payment_per_trade(app, api, parties):
    vendor, buyer, _ = parties
    trade_id = signed_trade(api, vendor, buyer)
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
    with app.app_context():
        db.session.add(Payment(trade_id=trade_id, provider="manual", status="pending", amount=payment["amount"],
                               currency=payment["currency"], created_by="usr_x"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
        # Any number of finished ones may sit beside it.
        db.session.add(Payment(trade_id=trade_id, provider="manual", status="canceled", amount=payment["amount"],
                               currency=payment["currency"], created_by="usr_x"))
        db.session.commit()


@pytest.mark.postgres
def test_two_racing_payments_give_one_201_and_one_409(app, api, parties):
    vendor, buyer, _ = parties
    for _ in range(3):
        trade_id = signed_trade(api, vendor, buyer)
        barrier, codes = threading.Barrier(2), []

        def go(trade_id=trade_id, barrier=barrier, codes=codes):
            client = app.test_client()
            barrier.wait()
            r = client.post(f"/api/v1/trades/{trade_id}/payments", headers=buyer.headers, json={"provider": "manual"})
            codes.append(r.status_code)

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [201, 409]
        with app.app_context():
            n = db.session.execute(select(func.count()).select_from(Payment)
                                   .where(Payment.trade_id == trade_id)).scalar_one()
        assert n == 1


def test_the_spec_documents_cancel_and_the_refund_fields(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    cancel = spec["paths"]["/api/v1/payments/{payment_id}/cancel"]["post"]
    assert {"200", "403", "404", "409"} <= set(cancel["responses"])
    payment = spec["components"]["schemas"]["Payment"]["properties"]
    assert {"refund_reason", "refunded_at"} <= set(payment)
    assert {"refund_pending", "refunded", "canceled"} <= set(payment["status"]["enum"])
