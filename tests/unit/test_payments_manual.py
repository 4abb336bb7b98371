"""The manual gateway (offline, operator-confirmed) and the interface every gateway shares."""

from __future__ import annotations

import pytest

from exchange.errors import ValidationFailed
from exchange.money import MAX_AMOUNT
from exchange.payments import (
    InvalidWebhook,
    ManualGateway,
    PaymentGateway,
    ProviderStatus,
    StripeGateway,
    idempotency_key,
)

gateway = ManualGateway()


def test_both_gateways_implement_the_interface():
    assert isinstance(gateway, PaymentGateway)
    stripe_gateway = StripeGateway(api_key="sk_test_x", api_base="http://127.0.0.1:9")
    try:
        assert isinstance(stripe_gateway, PaymentGateway)
    finally:
        stripe_gateway.close()


def test_payment_stays_pending_until_an_operator_confirms():
    result = gateway.create_payment(reference="trd_1", amount=125_000, currency="hkd",
                                    idempotency_key="datafair:trd_1:payment", metadata={"trade_id": "trd_1"})
    assert result.provider == "manual"
    assert result.status is ProviderStatus.PENDING
    assert result.client_secret is None
    assert (result.amount, result.currency) == (125_000, "HKD")
    assert result.provider_ref.startswith("manpay_")
    assert gateway.retrieve_payment(result.provider_ref).status is ProviderStatus.PENDING


def test_references_are_stable_per_idempotency_key_and_distinct_across_keys():
    def pay(key: str) -> str:
        return gateway.create_payment(reference="trd_1", amount=100, currency="CNY",
                                      idempotency_key=key, metadata={}).provider_ref

    assert pay("datafair:trd_1:payment") == pay("datafair:trd_1:payment")
    assert pay("datafair:trd_1:payment") != pay("datafair:trd_2:payment")


def test_refund_and_transfer_are_recorded_as_done():
    refund = gateway.refund(provider_ref="manpay_x", amount=500, idempotency_key="datafair:trd_1:refund")
    assert (refund.status, refund.amount, refund.payment_ref) == (ProviderStatus.SUCCEEDED, 500, "manpay_x")
    assert refund.provider_ref.startswith("manref_")
    transfer = gateway.transfer(destination_account="bank:HK-123", amount=900, currency="MOP",
                                idempotency_key="datafair:pay_1:transfer", metadata={})
    assert (transfer.status, transfer.amount, transfer.currency) == (ProviderStatus.SUCCEEDED, 900, "MOP")
    assert transfer.destination_account == "bank:HK-123"
    assert transfer.provider_ref.startswith("mantr_")


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "100", None, MAX_AMOUNT + 1])
def test_amounts_must_be_positive_integer_minor_units(amount):
    with pytest.raises(ValidationFailed) as err:
        gateway.create_payment(reference="t", amount=amount, currency="CNY", idempotency_key="k", metadata={})
    assert err.value.status == 422 and "amount" in err.value.errors
    with pytest.raises(ValidationFailed):
        gateway.refund(provider_ref="manpay_x", amount=amount, idempotency_key="k")


@pytest.mark.parametrize("currency", ["USD", "", None, "CN"])
def test_only_the_exchange_currencies(currency):
    with pytest.raises(ValidationFailed) as err:
        gateway.transfer(destination_account="x", amount=1, currency=currency, idempotency_key="k", metadata={})
    assert "currency" in err.value.errors


def test_an_empty_idempotency_key_is_refused():
    with pytest.raises(ValueError, match="idempotency_key"):
        gateway.create_payment(reference="t", amount=1, currency="CNY", idempotency_key="", metadata={})


def test_manual_provider_has_no_webhooks():
    with pytest.raises(InvalidWebhook) as err:
        gateway.parse_webhook(b"{}", "t=1,v1=00")
    assert err.value.status == 400


def test_idempotency_keys_are_deterministic_per_subject_and_step():
    assert idempotency_key("trd_1", "payment") == idempotency_key("trd_1", "payment") == "datafair:trd_1:payment"
    assert idempotency_key("trd_1", "refund") != idempotency_key("trd_1", "payment")
    for subject, step in (("", "payment"), ("trd_1", ""), ("trd_1", "a:b"), ("x" * 300, "payment")):
        with pytest.raises(ValueError):
            idempotency_key(subject, step)
