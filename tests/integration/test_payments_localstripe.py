"""The Stripe gateway against a real Stripe peer: localstripe, started by the tests on loopback.

A PaymentIntent is created through the gateway, paid with a test card the way a buyer's browser
would, and its signed `payment_intent.succeeded` webhook is received over HTTP and verified.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import stripe

from exchange.payments import (
    InvalidWebhook,
    ProviderError,
    ProviderStatus,
    ProviderUnreachable,
    StripeGateway,
    idempotency_key,
)
from tests.localstripe import Delivery, LocalStripe, WebhookReceiver

pytestmark = [pytest.mark.localstripe, pytest.mark.allow_hosts(["127.0.0.1"])]

SECRET = "whsec_datafair_localstripe_test"


@pytest.fixture
def gateway(localstripe: LocalStripe) -> Iterator[StripeGateway]:
    with StripeGateway(api_key=localstripe.api_key, webhook_secret=SECRET, api_base=localstripe.url) as gw:
        yield gw


def pay_trade(gateway: StripeGateway, trade_id: str, amount: int = 125_000, currency: str = "HKD") -> str:
    result = gateway.create_payment(reference=trade_id, amount=amount, currency=currency,
                                    idempotency_key=idempotency_key(trade_id, "payment"),
                                    metadata={"trade_id": trade_id})
    return result.provider_ref


def wait_for_status(gateway: StripeGateway, ref: str, status: ProviderStatus, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while gateway.retrieve_payment(ref).status is not status:
        assert time.monotonic() < deadline, f"{ref} never became {status}"
        time.sleep(0.05)


def test_a_paid_intent_arrives_as_a_signed_webhook_that_parse_webhook_verifies(
    localstripe: LocalStripe, webhook_receiver: WebhookReceiver, gateway: StripeGateway
):
    localstripe.register_webhook("datafair", webhook_receiver.url, SECRET, events=["payment_intent.succeeded"])
    created = gateway.create_payment(reference="trd_hook", amount=125_000, currency="HKD",
                                     idempotency_key=idempotency_key("trd_hook", "payment"),
                                     metadata={"trade_id": "trd_hook"})
    assert created.status is ProviderStatus.PENDING
    assert created.client_secret and created.client_secret.startswith(created.provider_ref + "_secret_")

    localstripe.pay_with_test_card(created.provider_ref)

    def ours(delivery: Delivery) -> bool:
        return json.loads(delivery.body)["data"]["object"]["id"] == created.provider_ref

    delivery = webhook_receiver.wait_for(ours)
    event = gateway.parse_webhook(delivery.body, delivery.headers["stripe-signature"])
    assert event.type == "payment_intent.succeeded"
    assert event.id.startswith("evt_")
    assert (event.provider_ref, event.amount, event.currency) == (created.provider_ref, 125_000, "HKD")
    assert event.raw["data"]["object"]["metadata"]["trade_id"] == "trd_hook"

    # The same delivery with its body altered, or checked with another secret, is refused.
    forged = delivery.body.replace(b"125000", b"999999")
    assert forged != delivery.body
    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(forged, delivery.headers["stripe-signature"])
    other = StripeGateway(api_key=localstripe.api_key, webhook_secret="whsec_other", api_base=localstripe.url)
    with other, pytest.raises(InvalidWebhook):
        other.parse_webhook(delivery.body, delivery.headers["stripe-signature"])


def test_the_intent_is_created_in_minor_units_with_a_lower_case_currency(localstripe, gateway):
    ref = pay_trade(gateway, "trd_units", amount=9_999, currency="MOP")
    intent = localstripe.customer_client().v1.payment_intents.retrieve(ref)
    assert (intent.amount, intent.currency) == (9_999, "mop")
    assert intent.metadata.to_dict() == {"trade_id": "trd_units", "reference": "trd_units"}


def test_reconciliation_sees_pending_then_succeeded(localstripe, gateway):
    ref = pay_trade(gateway, "trd_recon", amount=5_000, currency="CNY")
    before = gateway.retrieve_payment(ref)
    assert (before.status, before.amount, before.currency) == (ProviderStatus.PENDING, 5_000, "CNY")
    localstripe.pay_with_test_card(ref)
    wait_for_status(gateway, ref, ProviderStatus.SUCCEEDED)


def test_a_declined_card_leaves_the_payment_pending(localstripe, gateway):
    ref = pay_trade(gateway, "trd_declined")
    with pytest.raises(stripe.CardError):
        localstripe.pay_with_test_card(ref, card="pm_card_chargeCustomerFail")
    assert gateway.retrieve_payment(ref).status is ProviderStatus.PENDING


def test_a_partial_refund_goes_through_stripe(localstripe, gateway):
    ref = pay_trade(gateway, "trd_refund", amount=125_000)
    localstripe.pay_with_test_card(ref)
    wait_for_status(gateway, ref, ProviderStatus.SUCCEEDED)

    refund = gateway.refund(provider_ref=ref, amount=25_000, idempotency_key=idempotency_key("trd_refund", "refund"))
    assert (refund.status, refund.amount, refund.currency, refund.payment_ref) == (
        ProviderStatus.SUCCEEDED, 25_000, "HKD", ref)
    at_peer = localstripe.customer_client().v1.refunds.list({"payment_intent": ref}).data
    assert [(r.id, r.amount) for r in at_peer] == [(refund.provider_ref, 25_000)]


def test_refunding_an_unpaid_intent_is_a_provider_error(gateway):
    ref = pay_trade(gateway, "trd_unpaid")
    with pytest.raises(ProviderError) as err:
        gateway.refund(provider_ref=ref, amount=1, idempotency_key=idempotency_key("trd_unpaid", "refund"))
    assert err.value.status == 502


def test_an_unknown_intent_is_a_provider_error(gateway):
    with pytest.raises(ProviderError):
        gateway.retrieve_payment("pi_doesnotexist")


def test_an_unreachable_provider_is_503_and_safe_to_retry():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: connection refused
        gateway = StripeGateway(api_key="sk_test_x", api_base=closed, max_network_retries=0)
        with gateway, pytest.raises(ProviderUnreachable) as err:
            gateway.create_payment(reference="t", amount=1, currency="CNY", idempotency_key="k", metadata={})
    assert err.value.status == 503 and err.value.headers["Retry-After"]
