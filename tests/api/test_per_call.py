"""per_call deals through the API: calls bought in the terms, the contract's total, no acceptance, and
the resolution of a disputed per_call trade (draw first, whole calls, end access or keep metering)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from exchange import hooks
from exchange.db import db, utcnow
from exchange.ledger.engine import balance
from exchange.ledger.verify import verify
from exchange.money import MAX_AMOUNT, fee_for
from tests.certflow import certify
from tests.tradeflow import bid, sign, terms
from trading import settlement
from trading.models import Dispute, Trade

UNIT = 50  # 0.50 CNY a call
PER_CALL = {"model": "per_call", "amount": UNIT, "currency": "CNY"}
SHA = "d" * 64


@pytest.fixture
def parties(api):
    return api.vendor(), api.enterprise(), api.operator()


@pytest.fixture
def product(api, parties):
    return certify(api, parties[0], price=PER_CALL)


def per_call_terms(product, calls):
    return terms(product, calls=calls)


def per_call_trade(api, parties, product, calls=1000, unit=UNIT, pay=True):
    vendor, buyer, operator = parties
    offer = bid(api, buyer, product, amount=unit, terms=per_call_terms(product, calls))
    r = api.post(f"offers/{offer['id']}/accept", vendor)
    assert r.status_code == 201, r.get_json()
    contract = r.get_json()
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    if pay:
        payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
        assert payment["amount"] == calls * unit
        assert api.post(f"payments/{payment['id']}/confirm", operator).status_code == 200
    return trade_id


def draw(app, trade_id, amount, period="2026-12-02T06:00:00Z"):
    with app.app_context():
        entry = settlement.draw_usage(db.session, trade_id=trade_id, amount=amount, period=period)
        db.session.commit()
    return entry


def escrow(app, trade_id):
    with app.app_context():
        return balance(db.session, owner_id=trade_id, purpose="trade_escrow", currency="CNY")


def ledger_valid(app):
    with app.app_context():
        result = verify(db.session)
        db.session.rollback()
    assert result["valid"], result


def with_handler(monkeypatch, app, name, handler):
    """Register a handler for this test only (the app outlives it)."""
    registered = dict(app.extensions.get(hooks.EXTENSION, {}))
    registered[name] = [*registered.get(name, []), handler]
    monkeypatch.setitem(app.extensions, hooks.EXTENSION, registered)


# -- terms.calls --------------------------------------------------------------------------------------
def test_per_call_offers_need_calls_and_the_contract_totals_them(api, parties, product):
    vendor, buyer, _ = parties
    r = api.post("offers", buyer, json={"product_id": product["id"], "price": {"amount": UNIT, "currency": "CNY"},
                                        "terms": terms(product)})
    assert r.status_code == 422 and "terms.calls" in r.get_json()["errors"]
    for calls in (0, 10**9 + 1, "5", 2.5, True):
        r = api.post("offers", buyer, json={"product_id": product["id"], "price": {"amount": UNIT, "currency": "CNY"},
                                            "terms": per_call_terms(product, calls)})
        assert r.status_code == 422, (calls, r.get_json())
        assert "terms.calls" in r.get_json()["errors"], (calls, r.get_json())
    # The total must stay an exact JSON integer.
    unit = MAX_AMOUNT // 10**9 + 1
    r = api.post("offers", buyer, json={"product_id": product["id"], "price": {"amount": unit, "currency": "CNY"},
                                        "terms": per_call_terms(product, 10**9)})
    assert r.status_code == 422 and "terms.calls" in r.get_json()["errors"]
    offer = bid(api, buyer, product, amount=unit - 1, terms=per_call_terms(product, 10**9))
    assert offer["price"]["amount"] == unit - 1 and offer["terms"]["calls"] == 10**9

    offer = bid(api, buyer, product, amount=40, terms=per_call_terms(product, 2500))
    assert offer["price"] == {"amount": 40, "currency": "CNY"}
    # A counter is held to the same rule.
    r = api.post(f"offers/{offer['id']}/counter", vendor, json={"price": {"amount": 45, "currency": "CNY"},
                                                                 "terms": terms(product)})
    assert r.status_code == 422 and "terms.calls" in r.get_json()["errors"]
    r = api.post(f"offers/{offer['id']}/counter", vendor, json={"price": {"amount": 45, "currency": "CNY"},
                                                                 "terms": per_call_terms(product, 2000)})
    assert r.status_code == 201, r.get_json()
    r = api.post(f"offers/{r.get_json()['id']}/accept", buyer)
    assert r.status_code == 201, r.get_json()
    contract = r.get_json()
    assert contract["price"] == {"amount": 90_000, "currency": "CNY"} and contract["terms"]["calls"] == 2000
    sign(api, buyer, contract["id"])
    trade = api.get(f"trades/{sign(api, vendor, contract['id'])['trade_id']}", buyer).get_json()
    assert trade["amount"] == 90_000 and trade["fee"] == 0 and trade["settled_amount"] == 0


def test_calls_are_refused_for_other_price_models(api, parties):
    vendor, buyer, _ = parties
    product = certify(api, vendor)  # a subscription
    r = api.post("offers", buyer, json={"product_id": product["id"], "price": {"amount": 1000, "currency": "CNY"},
                                        "terms": terms(product, calls=10)})
    assert r.status_code == 422
    assert r.get_json()["errors"]["terms.calls"] == ["only for per_call products"]
    offer = bid(api, buyer, product, amount=1000)
    assert "calls" not in offer["terms"]
    accepted = api.post(f"offers/{offer['id']}/accept", vendor).get_json()
    assert accepted["price"]["amount"] == 1000


# -- no acceptance ------------------------------------------------------------------------------------
def test_a_per_call_trade_is_never_accepted_nor_auto_accepted(app, api, parties, product):
    vendor, buyer, _ = parties
    trade_id = per_call_trade(api, parties, product)
    r = api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "api-key-issued", "sha256": SHA})
    assert r.status_code == 200 and r.get_json()["status"] == "delivered"
    r = api.post(f"trades/{trade_id}/acceptance", buyer)
    assert r.status_code == 409 and "entitlement ends" in r.get_json()["detail"]
    with app.app_context():
        long_ago = utcnow() - timedelta(days=30)
        db.session.execute(update(Trade).where(Trade.id == trade_id)
                           .values(delivered_at=long_ago, acceptance_started_at=long_ago))
        db.session.commit()
        assert settlement.auto_acceptance_due(db.session, utcnow(), 10) == []
    assert app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert trade["status"] == "delivered" and trade["settled_at"] is None
    # It ends with its entitlement: the drawn calls stay with the seller, the rest goes back.
    assert draw(app, trade_id, 300 * UNIT) is not None
    with app.app_context():
        assert settlement.end_per_call(db.session, trade_id=trade_id) is True
        db.session.commit()
        assert settlement.end_per_call(db.session, trade_id=trade_id) is False
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert trade["status"] == "settled" and trade["refunded_amount"] == 700 * UNIT
    assert trade["settled_amount"] == 300 * UNIT and trade["fee"] == fee_for(300 * UNIT, 200)
    assert escrow(app, trade_id) == 0
    ledger_valid(app)


# -- resolution ---------------------------------------------------------------------------------------
def test_resolution_draws_counted_calls_first_and_keeps_access(app, api, parties, product, monkeypatch):
    vendor, buyer, operator = parties
    trade_id = per_call_trade(api, parties, product, calls=1000)
    api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "api-key-issued", "sha256": SHA})
    assert draw(app, trade_id, 100 * UNIT) is not None
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "answers were empty"}).status_code == 201
    assert draw(app, trade_id, 10 * UNIT) is None  # no drawdown while disputed
    shrunk = []

    def draw_pending(session, *, trade):
        # Delivery's part: 150 calls counted so far, 50 of them not yet drawn.
        if trade.drawn_amount < 150 * UNIT:
            settlement.draw_usage(session, trade_id=trade.id, amount=150 * UNIT - trade.drawn_amount, period="pending")

    with_handler(monkeypatch, app, "per_call_resolving", draw_pending)
    with_handler(monkeypatch, app, "per_call_refunded_calls",
                 lambda session, *, trade, calls: shrunk.append((trade.id, calls)))
    r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 3 * UNIT + 1})
    assert r.status_code == 422 and "whole number of calls" in r.get_json()["errors"]["refund_amount"][0]
    # 1000 bought, 150 drawn once the counted 50 are: at most 850 calls remain.
    r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 851 * UNIT})
    assert r.status_code == 422 and "refund_amount" in r.get_json()["errors"]
    assert api.get(f"trades/{trade_id}", buyer).get_json()["settled_amount"] == 100 * UNIT  # rolled back
    r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 200 * UNIT})
    assert r.status_code == 200, r.get_json()
    trade = r.get_json()
    assert trade["status"] == "delivered" and trade["refunded_amount"] == 200 * UNIT
    assert trade["settled_amount"] == 150 * UNIT and trade["fee"] == fee_for(150 * UNIT, 200)
    assert shrunk == [(trade_id, 200)]
    assert escrow(app, trade_id) == 650 * UNIT
    # Metering resumes; the trade still has no acceptance.
    assert draw(app, trade_id, 650 * UNIT) is not None
    assert api.post(f"trades/{trade_id}/acceptance", buyer).status_code == 409
    with app.app_context():
        assert settlement.end_per_call(db.session, trade_id=trade_id)
        db.session.commit()
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert trade["status"] == "settled" and trade["settled_amount"] == 800 * UNIT
    assert trade["refunded_amount"] == 200 * UNIT and trade["fee"] == fee_for(800 * UNIT, 200)
    kinds = [e["kind"] for e in api.get(f"ledger/entries?trade_id={trade_id}", buyer).get_json()["items"]]
    assert sorted(kinds) == ["payment", "refund", "usage", "usage", "usage"]
    ledger_valid(app)


@pytest.mark.parametrize(("drawn_calls", "status"), [(120, "settled"), (0, "refunded")])
def test_resolution_with_end_access_refunds_the_unused_calls(app, api, parties, product, drawn_calls, status):
    vendor, buyer, operator = parties
    trade_id = per_call_trade(api, parties, product, calls=400)
    if drawn_calls:
        assert draw(app, trade_id, drawn_calls * UNIT)
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "upstream down"}).status_code == 201
    r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 10 * UNIT, "end_access": True})
    assert r.status_code == 200, r.get_json()
    trade = r.get_json()
    assert trade["status"] == status and trade["refunded_amount"] == (400 - drawn_calls) * UNIT
    assert trade["settled_amount"] == drawn_calls * UNIT and trade["fee"] == fee_for(drawn_calls * UNIT, 200)
    assert escrow(app, trade_id) == 0
    with app.app_context():
        dispute = db.session.execute(select(Dispute).where(Dispute.trade_id == trade_id)).scalar_one()
        assert dispute.status == "resolved" and dispute.refund_amount == (400 - drawn_calls) * UNIT
    assert api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 0}).status_code == 409
    with app.app_context():
        assert settlement.end_per_call(db.session, trade_id=trade_id) is False
        assert balance(db.session, owner_id=vendor.org_id, purpose="seller_payable", currency="CNY") == (
            drawn_calls * UNIT - fee_for(drawn_calls * UNIT, 200))
    ledger_valid(app)


def test_usage_is_drawn_only_from_a_live_per_call_escrow(app, api, parties, product):
    vendor, buyer, operator = parties
    unpaid = per_call_trade(api, parties, product, calls=10, pay=False)
    with app.app_context():
        with pytest.raises(settlement.Conflict):
            settlement.draw_usage(db.session, trade_id=unpaid, amount=UNIT, period="p")
        db.session.rollback()
        with pytest.raises(settlement.Conflict):
            settlement.end_per_call(db.session, trade_id=unpaid)
        db.session.rollback()
    trade_id = per_call_trade(api, parties, product, calls=10)
    with app.app_context():
        with pytest.raises(settlement.Conflict, match="holds 500"):
            settlement.draw_usage(db.session, trade_id=trade_id, amount=11 * UNIT, period="p")
        db.session.rollback()
    # Nothing drawn, never delivered: the whole escrow goes back and the trade is refunded.
    with app.app_context():
        assert settlement.end_per_call(db.session, trade_id=trade_id)
        db.session.commit()
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert trade["status"] == "refunded" and trade["refunded_amount"] == 10 * UNIT and trade["settled_amount"] == 0
    with app.app_context():
        with pytest.raises(settlement.Conflict):
            settlement.draw_usage(db.session, trade_id=trade_id, amount=UNIT, period="p")
        db.session.rollback()
    # A one-time trade is not drawn by usage.
    other = certify(api, vendor, price={"model": "one_time", "amount": 5000, "currency": "CNY"})
    offer = bid(api, buyer, other)
    contract = api.post(f"offers/{offer['id']}/accept", vendor).get_json()
    sign(api, buyer, contract["id"])
    one_time = sign(api, vendor, contract["id"])["trade_id"]
    payment = api.post(f"trades/{one_time}/payments", buyer, json={"provider": "manual"}).get_json()
    api.post(f"payments/{payment['id']}/confirm", operator)
    with app.app_context():
        with pytest.raises(settlement.Conflict, match="per_call"):
            settlement.draw_usage(db.session, trade_id=one_time, amount=UNIT, period="p")
        db.session.rollback()
    ledger_valid(app)
