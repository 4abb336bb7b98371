"""Stripe webhook verification: good, bad, stale and malformed deliveries (no network needed).

The end-to-end check with a webhook signed and sent by a real peer is in
tests/integration/test_payments_localstripe.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import stripe

from exchange.payments import InvalidWebhook, ProviderUnavailable, StripeGateway

SECRET = "whsec_test_datafair_0123456789"


@pytest.fixture
def gateway() -> Iterator[StripeGateway]:
    with StripeGateway(api_key="sk_test_x", webhook_secret=SECRET, api_base="http://127.0.0.1:9") as gw:
        yield gw


def event_body(**intent: object) -> bytes:
    obj = {"id": "pi_123", "object": "payment_intent", "amount": 125000, "amount_received": 125000,
           "currency": "hkd", "status": "succeeded", "metadata": {"reference": "trd_1", "amount": "1"}, **intent}
    return json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
                       "created": int(time.time()), "data": {"object": obj}}).encode()


def sign(body: bytes, *, secret: str = SECRET, at: float | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, int(at or time.time()))


def test_a_correctly_signed_event_is_parsed(gateway):
    body = event_body()
    event = gateway.parse_webhook(body, sign(body))
    assert (event.id, event.type, event.provider_ref) == ("evt_1", "payment_intent.succeeded", "pi_123")
    assert (event.amount, event.currency) == (125000, "HKD")
    assert event.raw["data"]["object"]["metadata"]["reference"] == "trd_1"


def test_the_received_amount_is_reported_not_the_requested_one(gateway):
    body = event_body(amount=125000, amount_received=100000)
    assert gateway.parse_webhook(body, sign(body)).amount == 100000


def test_an_event_for_an_object_without_amount_has_none(gateway):
    body = json.dumps({"id": "evt_2", "object": "event", "type": "customer.created",
                       "data": {"object": {"id": "cus_1", "object": "customer"}}}).encode()
    event = gateway.parse_webhook(body, sign(body))
    assert (event.provider_ref, event.amount, event.currency) == ("cus_1", None, None)


@pytest.mark.parametrize("case", ["wrong-secret", "tampered-body", "no-v1", "garbage", "empty", "missing"])
def test_bad_signatures_are_refused(gateway, case):
    body = event_body()
    header = {
        "wrong-secret": sign(body, secret="whsec_other"),
        "tampered-body": sign(event_body(amount=1)),
        "no-v1": f"t={int(time.time())},v0=abc",
        "garbage": "not a signature",
        "empty": "",
        "missing": None,
    }[case]
    with pytest.raises(InvalidWebhook) as err:
        gateway.parse_webhook(body, header)
    assert err.value.status == 400


@pytest.mark.parametrize(("age", "accepted"), [(0, True), (290, True), (310, False), (3600, False), (-3600, False)])
def test_signatures_older_than_300_seconds_or_from_the_future_are_stale(gateway, age, accepted):
    body = event_body()
    header = sign(body, at=time.time() - age)
    if accepted:
        assert gateway.parse_webhook(body, header).id == "evt_1"
    else:
        with pytest.raises(InvalidWebhook, match=r"tolerance|future"):
            gateway.parse_webhook(body, header)


@pytest.mark.parametrize("body", [
    b"\xff\xfe", b"not json", b"[1, 2]", b'{"object": "charge", "id": "ch_1"}',
    b'{"object": "event", "id": "evt_1", "type": "x", "data": {}}',
    b'{"object": "event", "id": "evt_1", "type": "x", "data": {"object": {"amount": NaN}}}',
])
def test_signed_bodies_that_are_not_events_are_refused(gateway, body):
    header = stripe.WebhookSignature.generate_signature_header(body.decode(errors="replace"), SECRET)
    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(body, header)


def test_webhooks_need_a_configured_secret():
    with StripeGateway(api_key="sk_test_x", webhook_secret=None, api_base="http://127.0.0.1:9") as gateway:
        body = event_body()
        with pytest.raises(ProviderUnavailable) as err:
            gateway.parse_webhook(body, sign(body))
    assert err.value.status == 422
