"""Stripe end to end against a real peer: localstripe creates the PaymentIntent, the buyer pays it
with a test card, and localstripe's signed `payment_intent.succeeded` webhook reaches the app over
real HTTP (a werkzeug server on loopback serving the app) and escrows the trade."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server

from tests.localstripe import LocalStripe
from tests.tradeflow import contract_for, sign

pytestmark = [pytest.mark.localstripe, pytest.mark.allow_hosts(["127.0.0.1"])]
SECRET = "whsec_datafair_trading_test"


@pytest.fixture
def stripe_app(app, localstripe: LocalStripe):
    app.config.update(STRIPE_API_KEY=localstripe.api_key, STRIPE_API_BASE=localstripe.url,
                      STRIPE_WEBHOOK_SECRET=SECRET)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    localstripe.register_webhook("datafair", f"http://127.0.0.1:{port}/api/v1/webhooks/stripe", SECRET,
                                 events=["payment_intent.succeeded"])
    yield app
    server.shutdown()
    thread.join(timeout=5)


def _signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    ts = int(time.time()) if at is None else at
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={sig}"


def _poll(api, actor, trade_id, status, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trade = api.get(f"trades/{trade_id}", actor).get_json()
        if trade["status"] == status:
            return trade
        time.sleep(0.2)
    raise AssertionError(f"trade {trade_id} never became {status}: {trade}")


def test_stripe_payment_escrows_through_the_real_webhook(stripe_app, api, localstripe):
    vendor, buyer = api.vendor(region="HK"), api.enterprise(region="HK")
    contract = contract_for(api, vendor, buyer, origin_region="HK",
                            price={"model": "one_time", "amount": 125_000, "currency": "HKD"})
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "stripe"})
    assert r.status_code == 201, r.get_json()
    payment = r.get_json()
    assert payment["provider_ref"].startswith("pi_") and payment["client_secret"]
    localstripe.pay_with_test_card(payment["provider_ref"])
    trade = _poll(api, buyer, trade_id, "escrowed")
    assert trade["paid_amount"] == 125_000
    entries = api.get(f"ledger/entries?trade_id={trade_id}", buyer).get_json()["items"]
    assert [e["kind"] for e in entries] == ["payment"]


def test_webhook_signatures_duplicates_unknown_intents_and_amounts(stripe_app, api):
    client = api.client
    event = {"id": "evt_test_1", "object": "event", "type": "payment_intent.succeeded", "created": int(time.time()),
             "data": {"object": {"id": "pi_unknown", "object": "payment_intent", "amount": 100,
                                 "amount_received": 100, "currency": "cny", "status": "succeeded"}}}
    body = json.dumps(event).encode()
    url = "/api/v1/webhooks/stripe"
    headers = {"Content-Type": "application/json"}
    assert client.post(url, data=body, headers=headers).status_code == 400
    bad = client.post(url, data=body, headers={**headers, "Stripe-Signature": _signed(body, "whsec_wrong")})
    assert bad.status_code == 400
    old = _signed(body, at=int(time.time()) - 400)
    stale = client.post(url, data=body, headers={**headers, "Stripe-Signature": old})
    assert stale.status_code == 400
    ok = client.post(url, data=body, headers={**headers, "Stripe-Signature": _signed(body)})
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["applied"] is False
    assert ok.get_json()["reason"] == "unknown payment intent"
    again = client.post(url, data=body, headers={**headers, "Stripe-Signature": _signed(body)})
    assert again.status_code == 200 and again.get_json()["reason"] == "duplicate event"


def test_webhook_amount_is_never_trusted(stripe_app, api, localstripe):
    vendor, buyer = api.vendor(region="HK"), api.enterprise(region="HK")
    contract = contract_for(api, vendor, buyer, origin_region="HK",
                            price={"model": "one_time", "amount": 125_000, "currency": "HKD"})
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "stripe"}).get_json()
    forged = {"id": "evt_forged_amount", "object": "event", "type": "payment_intent.succeeded",
              "created": int(time.time()),
              "data": {"object": {"id": payment["provider_ref"], "object": "payment_intent", "amount": 1,
                                  "amount_received": 1, "currency": "hkd", "status": "succeeded"}}}
    body = json.dumps(forged).encode()
    r = api.client.post("/api/v1/webhooks/stripe", data=body,
                        headers={"Content-Type": "application/json", "Stripe-Signature": _signed(body)})
    assert r.status_code == 200 and r.get_json()["applied"] is False
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "awaiting_payment"
