"""Stripe's money path against localstripe, through the HTTP API: a success that arrives for a payment
no longer pending is refunded (webhook or reconciliation), the trade is escrowed once; every provider
call is made with no database transaction open; a call interrupted between its intent's commit and
the call itself is completed by the reconciliation job.

Webhooks go from localstripe to a loopback receiver and are forwarded to the app by the test, so a
test decides when (or whether) each arrives: a success held "in transit" arrives late.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from exchange.db import db, utcnow
from exchange.payments import StripeGateway, in_transaction, registry
from exchange.payments.models import ProviderCall
from tests.api.test_settlement import entries, ledger_valid
from tests.localstripe import Delivery, LocalStripe, WebhookReceiver
from tests.tradeflow import contract_for, sign
from trading.models import Payment

pytestmark = [pytest.mark.localstripe, pytest.mark.allow_hosts(["127.0.0.1"])]
SECRET = "whsec_datafair_duplicates_test"
AMOUNT = 125_000


class SpyGateway:
    """The real Stripe gateway, noting for each outbound call whether the request's session had a
    transaction open at that moment; `fail[operation]` makes the next such call die before it is made."""

    def __init__(self, real: StripeGateway) -> None:
        self.real, self.name = real, real.name
        self.calls: list[tuple[str, bool]] = []
        self.fail: dict[str, BaseException] = {}
        self.before: dict[str, Any] = {}  # operation -> a callable run just before that call (once)

    def __getattr__(self, operation: str) -> Any:
        method = getattr(self.real, operation)
        if operation == "parse_webhook":
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((operation, in_transaction(db.session)))
            if operation in self.fail:
                raise self.fail.pop(operation)
            if operation in self.before:
                self.before.pop(operation)()
            return method(*args, **kwargs)

        return call


@pytest.fixture
def spy(app, localstripe: LocalStripe, webhook_receiver: WebhookReceiver):
    app.config.update(STRIPE_API_KEY=localstripe.api_key, STRIPE_API_BASE=localstripe.url,
                      STRIPE_WEBHOOK_SECRET=SECRET)
    localstripe.register_webhook("datafair", webhook_receiver.url, SECRET, events=["payment_intent.succeeded"])
    key = (localstripe.api_key, SECRET, localstripe.url)
    gateway = SpyGateway(StripeGateway(api_key=localstripe.api_key, webhook_secret=SECRET, api_base=localstripe.url))
    registry._stripe_gateways[key] = gateway
    yield gateway
    registry._stripe_gateways.pop(key, None)
    gateway.real.close()
    inside = [c for c in gateway.calls if c[1]]
    assert gateway.calls and not inside, f"provider calls inside a transaction: {gateway.calls}"


def stripe_trade(api) -> tuple[Any, Any, str]:
    vendor, buyer = api.vendor(region="HK"), api.enterprise(region="HK")
    contract = contract_for(api, vendor, buyer, origin_region="HK",
                            price={"model": "one_time", "amount": AMOUNT, "currency": "HKD"})
    sign(api, buyer, contract["id"])
    return vendor, buyer, sign(api, vendor, contract["id"])["trade_id"]


def pay_by_stripe(api, buyer, trade_id: str) -> dict:
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "stripe"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def success_of(receiver: WebhookReceiver, intent_id: str) -> Delivery:
    return receiver.wait_for(lambda d: json.loads(d.body)["data"]["object"]["id"] == intent_id)


def forward(api, delivery: Delivery) -> dict:
    r = api.client.post("/api/v1/webhooks/stripe", data=delivery.body, headers={
        "Content-Type": "application/json", "Stripe-Signature": delivery.headers["stripe-signature"]})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def reconcile(app) -> None:
    result = app.test_cli_runner().invoke(args=["jobs", "run-once", "--job", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "error" not in json.loads(result.output)["reconcile"]["trading.stripe_reconciliation"]


def refunds_at_stripe(localstripe: LocalStripe, intent_id: str) -> list[int]:
    return [r.amount for r in localstripe.customer_client().v1.refunds.list({"payment_intent": intent_id}).data]


def paid_twice(api, localstripe, webhook_receiver, buyer, trade_id) -> tuple[dict, Delivery, dict]:
    """The buyer confirms payment A in one browser tab, cancels it in another (too late: Stripe refuses
    the cancel, A has succeeded) while A's webhook is still in transit, then pays again with B."""
    a = pay_by_stripe(api, buyer, trade_id)
    localstripe.pay_with_test_card(a["provider_ref"])
    held = success_of(webhook_receiver, a["provider_ref"])
    r = api.post(f"payments/{a['id']}/cancel", buyer)
    assert r.status_code == 200 and r.get_json()["status"] == "canceled"
    b = pay_by_stripe(api, buyer, trade_id)
    localstripe.pay_with_test_card(b["provider_ref"])
    assert forward(api, success_of(webhook_receiver, b["provider_ref"]))["applied"] is True
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "escrowed"
    return a, held, b


def assert_refunded_once(app, api, localstripe, buyer, trade_id, a, b) -> None:
    shown = api.get(f"payments/{a['id']}", buyer).get_json()
    assert (shown["status"], shown["refund_reason"]) == ("refunded", "duplicate") and shown["refunded_at"]
    assert api.get(f"payments/{b['id']}", buyer).get_json()["status"] == "succeeded"
    assert refunds_at_stripe(localstripe, a["provider_ref"]) == [AMOUNT]
    assert refunds_at_stripe(localstripe, b["provider_ref"]) == []
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert (trade["status"], trade["paid_amount"], trade["refunded_amount"]) == ("escrowed", AMOUNT, 0)
    # Escrowed once; the duplicate's money never entered escrow, so it has no entry.
    assert [e["kind"] for e in entries(api, buyer, trade_id)] == ["payment"]
    ledger_valid(app)


def test_a_late_success_for_a_cancelled_payment_is_refunded_after_the_webhook_commits(
        app, api, localstripe, webhook_receiver, spy):
    _, buyer, trade_id = stripe_trade(api)
    a, held, b = paid_twice(api, localstripe, webhook_receiver, buyer, trade_id)
    assert refunds_at_stripe(localstripe, a["provider_ref"]) == []
    ack = forward(api, held)
    assert ack["applied"] is True and "duplicate" in ack["reason"]
    assert_refunded_once(app, api, localstripe, buyer, trade_id, a, b)
    # The same event again changes nothing; reconciliation finds nothing left to refund.
    assert forward(api, held)["reason"] == "duplicate event"
    reconcile(app)
    assert refunds_at_stripe(localstripe, a["provider_ref"]) == [AMOUNT]
    ops = [op for op, _ in spy.calls]
    assert {"create_payment", "cancel_payment", "refund"} <= set(ops)


def test_reconciliation_refunds_a_duplicate_whose_webhook_never_came(app, api, localstripe, webhook_receiver, spy):
    _, buyer, trade_id = stripe_trade(api)
    a, held, b = paid_twice(api, localstripe, webhook_receiver, buyer, trade_id)
    reconcile(app)
    assert_refunded_once(app, api, localstripe, buyer, trade_id, a, b)
    # The lost webhook turns up after all: nothing more happens.
    ack = forward(api, held)
    assert ack["applied"] is False and ack["reason"] == "payment already refunded"
    assert refunds_at_stripe(localstripe, a["provider_ref"]) == [AMOUNT]
    assert "retrieve_payment" in {op for op, _ in spy.calls}


def test_no_provider_call_is_made_inside_a_transaction(app, api, localstripe, webhook_receiver, spy):
    _, buyer, trade_id = stripe_trade(api)
    first = pay_by_stripe(api, buyer, trade_id)
    assert first["client_secret"]
    cancelled = api.post(f"payments/{first['id']}/cancel", buyer).get_json()
    assert cancelled["status"] == "canceled" and cancelled["client_secret"] is None  # it completes nothing now
    intent = localstripe.customer_client().v1.payment_intents.retrieve(first["provider_ref"])
    assert intent.status == "canceled"  # cancelled at Stripe, after the commit
    again = pay_by_stripe(api, buyer, trade_id)
    localstripe.pay_with_test_card(again["provider_ref"])
    forward(api, success_of(webhook_receiver, again["provider_ref"]))
    operator = api.operator()
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "incomplete"}).status_code == 201
    r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 25_000})
    assert r.status_code == 200 and r.get_json()["refunded_amount"] == 25_000
    assert refunds_at_stripe(localstripe, again["provider_ref"]) == [25_000]
    # A payment whose webhook is overdue is fetched by the reconciliation job.
    _, buyer2, trade2 = stripe_trade(api)
    silent = pay_by_stripe(api, buyer2, trade2)
    localstripe.pay_with_test_card(silent["provider_ref"])
    with app.app_context():
        db.session.execute(update(Payment).where(Payment.id == silent["id"])
                           .values(created_at=utcnow() - timedelta(minutes=11)))
        db.session.commit()
    reconcile(app)
    assert api.get(f"trades/{trade2}", buyer2).get_json()["status"] == "escrowed"
    ops = {op for op, _ in spy.calls}
    assert ops >= {"create_payment", "cancel_payment", "refund", "retrieve_payment"}
    assert not [c for c in spy.calls if c[1]]
    ledger_valid(app)


def test_a_call_interrupted_after_its_intent_was_committed_is_completed_by_reconciliation(
        app, api, localstripe, webhook_receiver, spy):
    _, buyer, trade_id = stripe_trade(api)
    spy.fail["create_payment"] = RuntimeError("the worker died before calling Stripe")
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "stripe"})
    assert r.status_code == 500
    with app.app_context():
        payment = db.session.execute(select(Payment).where(Payment.trade_id == trade_id)).scalar_one()
        call = db.session.execute(select(ProviderCall).where(ProviderCall.subject_id == payment.id)).scalar_one()
        assert (payment.status, payment.provider_ref, call.status) == ("pending", None, "started")
        payment_id, call_id = payment.id, call.id
        db.session.rollback()
    # The intent is durable: a retry is told about the pending payment instead of making another.
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "stripe"})
    assert r.status_code == 409 and payment_id in r.get_json()["detail"]
    reconcile(app)  # the call is too recent: a request may still be making it
    assert api.get(f"payments/{payment_id}", buyer).get_json()["provider_ref"] is None
    with app.app_context():
        db.session.execute(update(ProviderCall).where(ProviderCall.id == call_id)
                           .values(created_at=utcnow() - timedelta(minutes=3)))
        db.session.commit()
    reconcile(app)
    shown = api.get(f"payments/{payment_id}", buyer).get_json()
    assert shown["status"] == "pending" and shown["provider_ref"].startswith("pi_") and shown["client_secret"]
    with app.app_context():
        assert db.session.get(ProviderCall, call_id).status == "pending"  # Stripe: waiting for the buyer
        db.session.rollback()
    localstripe.pay_with_test_card(shown["provider_ref"])
    assert forward(api, success_of(webhook_receiver, shown["provider_ref"]))["applied"] is True
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "escrowed"
    ledger_valid(app)


def test_a_resolution_racing_a_refund_under_way_is_refused_and_the_refund_is_booked(
        app, api, localstripe, webhook_receiver, spy):
    """Two operators resolve the same dispute: one refunds 25 000 (its Stripe refund under way, no
    transaction open), the other settles it with no refund meanwhile. The second must be refused (the
    dispute's refund is already begun), so the refund Stripe made is booked, not lost."""
    _, buyer, trade_id = stripe_trade(api)
    paid = pay_by_stripe(api, buyer, trade_id)
    localstripe.pay_with_test_card(paid["provider_ref"])
    forward(api, success_of(webhook_receiver, paid["provider_ref"]))
    operator, other = api.operator(), api.operator()
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "incomplete"}).status_code == 201
    racing = []
    spy.before["refund"] = lambda: racing.append(
        api.post(f"trades/{trade_id}/resolution", other, json={"refund_amount": 0}))
    r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 25_000})
    assert racing and racing[0].status_code == 409, racing[0].get_json()
    assert r.status_code == 200, r.get_json()
    assert refunds_at_stripe(localstripe, paid["provider_ref"]) == [25_000]
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert (trade["status"], trade["refunded_amount"]) == ("settled", 25_000)
    assert [e["kind"] for e in entries(api, buyer, trade_id)] == ["payment", "refund", "settlement"]
    ledger_valid(app)


def test_a_payment_whose_replayed_creation_stripe_refuses_fails_and_frees_the_trade(
        app, api, localstripe, webhook_receiver, spy):
    """The worker died before calling Stripe; when reconciliation makes the call, Stripe refuses it.
    The payment is `failed` (as when the request itself is refused), not left pending forever with
    no PaymentIntent, blocking every new payment of the trade with a 409."""
    from exchange.payments import ProviderError

    _, buyer, trade_id = stripe_trade(api)
    spy.fail["create_payment"] = RuntimeError("the worker died before calling Stripe")
    assert api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "stripe"}).status_code == 500
    with app.app_context():
        payment_id = db.session.execute(select(Payment.id).where(Payment.trade_id == trade_id)).scalar_one()
        db.session.execute(update(ProviderCall).where(ProviderCall.subject_id == payment_id)
                           .values(created_at=utcnow() - timedelta(minutes=3)))
        db.session.commit()
    spy.fail["create_payment"] = ProviderError("stripe refused to create the payment: amount too large")
    reconcile(app)
    assert api.get(f"payments/{payment_id}", buyer).get_json()["status"] == "failed"
    again = pay_by_stripe(api, buyer, trade_id)
    localstripe.pay_with_test_card(again["provider_ref"])
    assert forward(api, success_of(webhook_receiver, again["provider_ref"]))["applied"] is True
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "escrowed"
    ledger_valid(app)
