"""A trade from signature to settlement, dispute and payout, through the API, with the ledger checked."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from exchange.db import db, utcnow
from exchange.ledger.models import JournalEntry
from exchange.ledger.verify import verify
from exchange.money import fee_for
from tests.tradeflow import contract_for, sign
from trading.models import Trade

SHA = "c" * 64


@pytest.fixture
def parties(api):
    return api.vendor(), api.enterprise(), api.operator()


def signed_trade(api, vendor, buyer, **product):
    contract = contract_for(api, vendor, buyer, **product)
    sign(api, buyer, contract["id"])
    return sign(api, vendor, contract["id"])["trade_id"]


def pay(api, buyer, operator, trade_id):
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"})
    assert r.status_code == 201, r.get_json()
    payment = r.get_json()
    assert payment["status"] == "pending" and payment["amount"] == 1_250_000
    r = api.post(f"payments/{payment['id']}/confirm", operator)
    assert r.status_code == 200, r.get_json()
    return payment


def entries(api, actor, trade_id):
    r = api.get(f"ledger/entries?trade_id={trade_id}", actor)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def ledger_valid(app):
    with app.app_context():
        result = verify(db.session)
        db.session.rollback()
    assert result["valid"], result
    return result


def balances(api, actor):
    return {a["name"] if "name" in a else f"{a['purpose']}:{a['owner_id']}:{a['currency']}": a["balance"]
            for a in api.get("ledger/accounts?per_page=100", actor).get_json()["items"]}


def test_signature_to_settlement_and_payout(app, api, parties):
    vendor, buyer, operator = parties
    trade_id = signed_trade(api, vendor, buyer)
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "awaiting_payment"
    assert api.post(f"trades/{trade_id}/payments", vendor, json={"provider": "manual"}).status_code == 403
    payment = pay(api, buyer, operator, trade_id)
    assert api.post(f"payments/{payment['id']}/confirm", operator).status_code == 409
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert trade["status"] == "escrowed" and trade["paid_amount"] == 1_250_000
    assert api.post(f"trades/{trade_id}/delivery", buyer, json={"reference": "x", "sha256": SHA}).status_code == 403
    r = api.post(f"trades/{trade_id}/delivery", vendor,
                 json={"reference": "sftp://gz-transport/2026-11.csv", "sha256": SHA})
    assert r.status_code == 200 and r.get_json()["status"] == "delivered"
    assert api.post(f"trades/{trade_id}/acceptance", vendor).status_code == 403
    r = api.post(f"trades/{trade_id}/acceptance", buyer)
    assert r.status_code == 200, r.get_json()
    trade = r.get_json()
    assert trade["status"] == "settled" and trade["fee"] == fee_for(1_250_000, 200) == 25_000
    assert api.post(f"trades/{trade_id}/acceptance", buyer).status_code == 409
    kinds = [e["kind"] for e in entries(api, buyer, trade_id)]
    assert sorted(kinds) == ["payment", "settlement"]
    for entry in entries(api, operator, trade_id):
        for currency in {p["currency"] for p in entry["postings"]}:
            assert sum(p["amount"] for p in entry["postings"] if p["currency"] == currency) == 0
    assert api.get(f"ledger/entries?trade_id={trade_id}", api.enterprise()).status_code == 404
    with app.app_context():
        from exchange.ledger.engine import balance

        assert balance(db.session, owner_id=trade_id, purpose="trade_escrow", currency="CNY") == 0
        assert balance(db.session, owner_id=vendor.org_id, purpose="seller_payable", currency="CNY") == 1_225_000
        assert balance(db.session, owner_id="exchange", purpose="exchange_fees", currency="CNY") == 25_000
    # Payouts: never above the payable balance.
    body = {"org_id": vendor.org_id, "currency": "CNY", "amount": 1_225_001}
    assert api.post("payouts", vendor, json=body).status_code == 403
    r = api.post("payouts", operator, json=body)
    assert r.status_code == 422 and "amount" in r.get_json()["errors"]
    r = api.post("payouts", operator, json={**body, "amount": 1_000_000})
    assert r.status_code == 201 and r.get_json()["status"] == "paid"
    r = api.post("payouts", operator, json={**body, "amount": 225_001})
    assert r.status_code == 422
    assert api.post("payouts", operator, json={**body, "amount": 225_000}).status_code == 201
    result = ledger_valid(app)
    assert result["entries"] == 4


def test_idempotent_money_steps_never_post_twice(app, api, parties):
    vendor, buyer, operator = parties
    trade_id = signed_trade(api, vendor, buyer)
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
    key = {"Idempotency-Key": f"confirm-{payment['id']}"}
    first = api.post(f"payments/{payment['id']}/confirm", operator, headers=key)
    again = api.post(f"payments/{payment['id']}/confirm", operator, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.data == first.data
    with app.app_context():
        n = db.session.execute(select(func.count()).select_from(JournalEntry)
                               .where(JournalEntry.trade_id == trade_id)).scalar_one()
    assert n == 1


@pytest.mark.parametrize(("refund", "status", "settled_fee"), [
    (1_250_000, "refunded", 0),
    (375_000, "settled", fee_for(875_000, 200)),
    (0, "settled", 25_000),
])
def test_dispute_resolution(app, api, parties, refund, status, settled_fee):
    vendor, buyer, operator = parties
    trade_id = signed_trade(api, vendor, buyer)
    pay(api, buyer, operator, trade_id)
    assert api.post(f"trades/{trade_id}/disputes", vendor, json={"reason": "x"}).status_code == 403
    r = api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "数据不完整 incomplete delivery"})
    assert r.status_code == 201 and r.get_json()["status"] == "open"
    assert api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "x", "sha256": SHA}).status_code == 409
    assert api.post(f"trades/{trade_id}/resolution", buyer, json={"refund_amount": 0}).status_code == 403
    r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 1_250_001})
    assert r.status_code == 422 and "refund_amount" in r.get_json()["errors"]
    r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": refund, "comment": "partial"})
    assert r.status_code == 200, r.get_json()
    trade = r.get_json()
    assert trade["status"] == status and trade["refunded_amount"] == refund and trade["fee"] == settled_fee
    assert api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 0}).status_code == 409
    with app.app_context():
        from exchange.ledger.engine import balance

        assert balance(db.session, owner_id=trade_id, purpose="trade_escrow", currency="CNY") == 0
        payable = balance(db.session, owner_id=vendor.org_id, purpose="seller_payable", currency="CNY")
        assert payable == 1_250_000 - refund - settled_fee
    ledger_valid(app)


def test_delivered_trade_settles_after_the_acceptance_period(app, api, parties):
    vendor, buyer, operator = parties
    trade_id = signed_trade(api, vendor, buyer)
    pay(api, buyer, operator, trade_id)
    api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "api-key-issued", "sha256": SHA})
    assert app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "delivered"
    with app.app_context():
        db.session.execute(update(Trade).where(Trade.id == trade_id)
                           .values(delivered_at=utcnow() - timedelta(days=7, seconds=1),
                                   acceptance_started_at=utcnow() - timedelta(days=7, seconds=1)))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0 and "1 trades auto-settled" in result.output
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert trade["status"] == "settled" and trade["settlement"] == "auto_accepted"
    ledger_valid(app)


def test_payment_validation_and_states(api, parties):
    vendor, buyer, operator = parties
    trade_id = signed_trade(api, vendor, buyer)
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "paypal"})
    assert r.status_code == 422
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "stripe"})
    assert r.status_code == 422  # not configured on this exchange
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual", "amount": 1})
    assert r.status_code == 422 and "amount" in r.get_json()["errors"]
    assert api.post(f"trades/{trade_id}/acceptance", buyer).status_code == 409
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "x"}).status_code == 409
    r = api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "x", "sha256": "nothex"})
    assert r.status_code == 422
    assert api.post("payments/pay_nope/confirm", operator).status_code == 404


@pytest.mark.postgres
def test_racing_confirmations_acceptances_and_payouts(app, api, parties):
    vendor, buyer, operator = parties
    trade_id = signed_trade(api, vendor, buyer)
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()

    def race(n, method, path, actor, body=None):
        barrier, codes = threading.Barrier(n), []

        def go():
            client = app.test_client()
            barrier.wait()
            codes.append(client.open(path, method=method, headers=actor.headers, json=body or {}).status_code)

        threads = [threading.Thread(target=go) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(codes)

    assert race(4, "POST", f"/api/v1/payments/{payment['id']}/confirm", operator) == [200, 409, 409, 409]
    api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "x", "sha256": SHA})
    assert race(4, "POST", f"/api/v1/trades/{trade_id}/acceptance", buyer) == [200, 409, 409, 409]
    # 1,225,000 payable: four racing payouts of 400,000 -> exactly three succeed.
    codes = race(4, "POST", "/api/v1/payouts", operator, {"org_id": vendor.org_id, "currency": "CNY",
                                                           "amount": 400_000})
    assert codes == [201, 201, 201, 422]
    with app.app_context():
        from exchange.ledger.engine import balance

        assert balance(db.session, owner_id=vendor.org_id, purpose="seller_payable", currency="CNY") == 25_000
    ledger_valid(app)


def test_a_disputed_trade_settles_only_by_resolution(api, parties):
    vendor, buyer, operator = parties
    trade_id = signed_trade(api, vendor, buyer)
    pay(api, buyer, operator, trade_id)
    api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "wrong data"})
    assert api.post(f"trades/{trade_id}/acceptance", buyer).status_code == 409
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "disputed"
