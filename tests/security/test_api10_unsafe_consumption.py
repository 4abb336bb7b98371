"""OWASP API10:2023 Unsafe Consumption of APIs: what Stripe's webhook says is checked, never believed.

tests/integration/test_stripe_flow.py covers a real localstripe webhook, bad and stale signatures,
unknown intents, duplicate events and a forged amount. Here the cases it lacks: the right amount in
the wrong currency, a partial `amount_received`, amounts of the wrong JSON type, an object that is not
actually succeeded, metadata naming another trade, other event types for our intent, an event id
replayed with another body, a timestamp in the future, and hostile JSON inside a valid signature —
each acknowledged or refused without escrowing anything and never a 500.

The payment row is the one `create_payment` stores for Stripe (`provider_ref` = the PaymentIntent id);
it is written directly so these tests need no Stripe peer (the webhook handler makes no outbound call).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from exchange.db import db
from exchange.identity.models import AuditEvent
from tests.tradeflow import contract_for, sign
from trading.models import Payment

SECRET = "whsec_datafair_unsafe_consumption"
URL = "/api/v1/webhooks/stripe"
AMOUNT = 125_000


@pytest.fixture
def stripe_trade(api, app):
    app.config.update(STRIPE_API_KEY="sk_test_unsafe_consumption", STRIPE_API_BASE="http://127.0.0.1:9",
                      STRIPE_WEBHOOK_SECRET=SECRET)
    vendor, buyer = api.vendor(region="HK"), api.enterprise(region="HK")
    contract = contract_for(api, vendor, buyer, origin_region="HK",
                            price={"model": "one_time", "amount": AMOUNT, "currency": "HKD"})
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    other = contract_for(api, vendor, buyer, origin_region="HK",
                         price={"model": "one_time", "amount": AMOUNT, "currency": "HKD"})
    sign(api, buyer, other["id"])
    other_trade = sign(api, vendor, other["id"])["trade_id"]
    intent = f"pi_unsafe_{trade_id[-12:]}"
    with app.app_context():
        db.session.add(Payment(trade_id=trade_id, provider="stripe", status="pending", amount=AMOUNT,
                               currency="HKD", provider_ref=intent, client_secret=f"{intent}_secret_x",
                               created_by=buyer.user_id))
        db.session.commit()
    return {"buyer": buyer, "trade": trade_id, "other_trade": other_trade, "intent": intent}


def _signed(payload: bytes, at: int | None = None, secret: str = SECRET) -> str:
    ts = int(time.time()) if at is None else at
    return f"t={ts},v1={hmac.new(secret.encode(), f'{ts}.'.encode() + payload, hashlib.sha256).hexdigest()}"


def _event(intent: str, *, event_id: str | None = None, type: str = "payment_intent.succeeded",
           **obj: Any) -> dict[str, Any]:
    body = {"id": intent, "object": "payment_intent", "amount": AMOUNT, "amount_received": AMOUNT,
            "currency": "hkd", "status": "succeeded", "metadata": {}}
    body.update(obj)
    return {"id": event_id or f"evt_{time.monotonic_ns()}", "object": "event", "type": type,
            "created": int(time.time()), "data": {"object": body}}


def _post(api, payload: bytes, signature: str | None = None):
    return api.client.post(URL, data=payload, headers={"Content-Type": "application/json",
                                                        "Stripe-Signature": signature or _signed(payload)})


def _status(api, t) -> str:
    return api.get(f"trades/{t['trade']}", t["buyer"]).get_json()["status"]


def _deliver(api, event: dict[str, Any]):
    return _post(api, json.dumps(event).encode())


@pytest.mark.parametrize("change", [
    {"currency": "cny"},  # the right number in another currency
    {"currency": "HKD ", "amount": AMOUNT},
    {"amount_received": AMOUNT - 1},  # partial capture: less arrived than the trade's amount
    {"amount_received": AMOUNT + 1},
    {"amount_received": str(AMOUNT), "amount": str(AMOUNT)},  # numbers of the wrong JSON type
    {"amount_received": float(AMOUNT), "amount": float(AMOUNT)},
    {"amount_received": True, "amount": True},
    {"amount_received": None, "amount": None},
    {"status": "processing"},  # the type says succeeded, the object does not
    {"status": "requires_payment_method", "amount_received": 0},
    {"object": "charge"},
])
def test_an_event_that_does_not_match_the_trade_escrows_nothing(api, app, stripe_trade, change):
    r = _deliver(api, _event(stripe_trade["intent"], **change))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["applied"] is False
    assert _status(api, stripe_trade) == "awaiting_payment"
    # The same intent with the true figures is still applied afterwards (nothing was half done).
    r = _deliver(api, _event(stripe_trade["intent"]))
    assert r.get_json()["applied"] is True and _status(api, stripe_trade) == "escrowed"


def test_a_currency_or_amount_mismatch_is_audited(api, app, stripe_trade):
    _deliver(api, _event(stripe_trade["intent"], currency="mop"))
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.amount_mismatch")).all()
    assert len(events) == 1 and events[0].detail["event_currency"] == "MOP"


def test_metadata_naming_another_trade_is_ignored(api, stripe_trade):
    r = _deliver(api, _event(stripe_trade["intent"], metadata={"trade_id": stripe_trade["other_trade"]}))
    assert r.get_json() == {"received": True, "applied": True, "trade_id": stripe_trade["trade"]}
    other = api.get(f"trades/{stripe_trade['other_trade']}", stripe_trade["buyer"]).get_json()
    assert other["status"] == "awaiting_payment"


@pytest.mark.parametrize("type", ["payment_intent.payment_failed", "payment_intent.created",
                                  "payment_intent.amount_capturable_updated", "charge.succeeded",
                                  "checkout.session.completed"])
def test_other_event_types_for_our_intent_change_nothing(api, stripe_trade, type):
    r = _deliver(api, _event(stripe_trade["intent"], type=type))
    assert r.status_code == 200 and r.get_json()["applied"] is False
    assert _status(api, stripe_trade) == "awaiting_payment"


def test_an_event_id_replayed_with_another_body_is_a_duplicate(api, stripe_trade):
    first = _deliver(api, _event(stripe_trade["intent"], event_id="evt_replayed", currency="cny"))
    assert first.get_json()["applied"] is False
    again = _deliver(api, _event(stripe_trade["intent"], event_id="evt_replayed"))
    assert again.get_json() == {"received": True, "applied": False, "reason": "duplicate event"}
    assert _status(api, stripe_trade) == "awaiting_payment"


def test_signatures_from_the_future_or_over_another_body_are_400(api, stripe_trade):
    payload = json.dumps(_event(stripe_trade["intent"])).encode()
    assert _post(api, payload, _signed(payload, at=int(time.time()) + 3600)).status_code == 400
    tampered = payload.replace(b'"amount": 125000', b'"amount": 125001')
    assert _post(api, tampered, _signed(payload)).status_code == 400
    assert _post(api, payload, "t=abc,v1=zz").status_code == 400
    assert _status(api, stripe_trade) == "awaiting_payment"


@pytest.mark.parametrize("payload", [
    b"[" * 50_000 + b"]" * 50_000,  # nesting beyond any parser's stack
    b'{"id": "evt_nan", "object": "event", "type": "payment_intent.succeeded", "data": {"object": NaN}}',
    b'{"id": "evt_big", "object": "event", "type": "x", "created": ' + b"9" * 5000 + b', "data": {"object": {}}}',
    b'{"id": "evt_dup", "id": "evt_dup2", "object": "event", "type": "x", "data": {"object": {}}}',
    "\u4e2d\u6587".encode("utf-16"),
    b"",
])
def test_hostile_json_inside_a_valid_signature_is_400_never_500(api, stripe_trade, payload):
    r = _post(api, payload)
    assert r.status_code == 400, (r.status_code, r.get_data(as_text=True)[:200])
    assert r.mimetype == "application/problem+json"
    assert _status(api, stripe_trade) == "awaiting_payment"
