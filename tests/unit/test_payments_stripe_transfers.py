"""Stripe Connect Transfers (seller payouts).

localstripe has no Transfers endpoint, so these tests — and only these — answer with a fake
`stripe.HTTPClient` subclass that records the request and replies like Stripe's API. Everything
else in the Stripe gateway is tested against a real localstripe.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
import stripe

from exchange.errors import Conflict
from exchange.payments import ProviderError, ProviderStatus, StripeGateway


class FakeStripeTransfers(stripe.HTTPClient):
    """Answers POST /v1/transfers like Stripe (and replays by Idempotency-Key, as Stripe does)."""

    name = "fake-transfers"

    def __init__(self, *, status: int = 200, error: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, dict[str, str], dict[str, list[str]]]] = []
        self.by_key: dict[str, dict[str, Any]] = {}
        self.status, self.error = status, error

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        form = urllib.parse.parse_qs(post_data or "")
        headers = dict(headers or {})
        self.requests.append((method, url, headers, form))
        if self.error:
            return json.dumps({"error": self.error}), self.status, {}
        key = headers.get("Idempotency-Key", "")
        if key not in self.by_key:
            self.by_key[key] = {
                "id": f"tr_{len(self.by_key) + 1}", "object": "transfer", "amount": int(form["amount"][0]),
                "currency": form["currency"][0], "destination": form["destination"][0], "reversed": False,
                "metadata": {k[9:-1]: v[0] for k, v in form.items() if k.startswith("metadata[")},
            }
        return json.dumps(self.by_key[key]), 200, {"Request-Id": "req_fake"}

    def close(self):
        pass


def gateway_with(http: FakeStripeTransfers) -> StripeGateway:
    return StripeGateway(api_key="sk_test_x", api_base="https://stripe.invalid", http_client=http,
                         max_network_retries=0)


def test_a_payout_is_a_transfer_to_the_connected_account_in_minor_units():
    http = FakeStripeTransfers()
    result = gateway_with(http).transfer(destination_account="acct_1SELLER", amount=98_000, currency="HKD",
                                         idempotency_key="datafair:pay_1:transfer", metadata={"org_id": "org_1"})
    assert (result.provider, result.provider_ref, result.status) == ("stripe", "tr_1", ProviderStatus.SUCCEEDED)
    assert (result.amount, result.currency, result.destination_account) == (98_000, "HKD", "acct_1SELLER")
    ((method, url, headers, form),) = http.requests
    assert (method, url) == ("post", "https://stripe.invalid/v1/transfers")
    assert headers["Idempotency-Key"] == "datafair:pay_1:transfer"
    assert form == {"amount": ["98000"], "currency": ["hkd"], "destination": ["acct_1SELLER"],
                    "metadata[org_id]": ["org_1"]}


def test_a_retried_payout_sends_the_same_key_and_gets_the_same_transfer():
    http = FakeStripeTransfers()
    gateway = gateway_with(http)
    args = {"destination_account": "acct_1SELLER", "amount": 500, "currency": "CNY",
            "idempotency_key": "datafair:pay_2:transfer", "metadata": {}}
    assert gateway.transfer(**args).provider_ref == gateway.transfer(**args).provider_ref
    assert {r[2]["Idempotency-Key"] for r in http.requests} == {"datafair:pay_2:transfer"}


def test_an_organization_without_a_connected_account_cannot_be_paid_by_stripe():
    http = FakeStripeTransfers()
    with pytest.raises(Conflict, match="stripe_account_id"):
        gateway_with(http).transfer(destination_account="", amount=1, currency="CNY",
                                    idempotency_key="k", metadata={})
    assert http.requests == []


def test_stripe_refusing_the_transfer_is_a_provider_error():
    http = FakeStripeTransfers(status=400, error={"type": "invalid_request_error", "code": "insufficient_funds",
                                                  "message": "Insufficient funds in Stripe account."})
    with pytest.raises(ProviderError) as err:
        gateway_with(http).transfer(destination_account="acct_1SELLER", amount=1, currency="CNY",
                                    idempotency_key="k", metadata={})
    assert err.value.status == 502 and "Insufficient funds" in err.value.detail
