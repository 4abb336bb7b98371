"""The manual gateway: bank transfers confirmed by an operator; works offline.

It keeps no state. Its references are derived from the idempotency key, so retrying a step yields
the same reference, as a real provider's idempotency would. A payment stays pending here for ever:
the operator's confirmation is recorded by the trading layer, not by the gateway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from exchange.payments.gateway import (
    InvalidWebhook,
    PaymentResult,
    ProviderEvent,
    ProviderStatus,
    RefundResult,
    TransferResult,
    check_amount,
    check_currency,
    check_idempotency_key,
)


def _ref(prefix: str, idempotency_key: str) -> str:
    return f"{prefix}_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"


class ManualGateway:
    """Offline provider: payments wait for an operator; refunds and transfers are recorded as done
    (the operator moves the money by bank transfer)."""

    name = "manual"

    def create_payment(
        self, *, reference: str, amount: int, currency: str, idempotency_key: str, metadata: Mapping[str, Any]
    ) -> PaymentResult:
        """A pending payment with a reference the buyer quotes on the bank transfer."""
        check_idempotency_key(idempotency_key)
        return PaymentResult(
            provider=self.name,
            provider_ref=_ref("manpay", idempotency_key),
            status=ProviderStatus.PENDING,
            client_secret=None,
            amount=check_amount(amount),
            currency=check_currency(currency),
        )

    def retrieve_payment(self, provider_ref: str) -> PaymentResult:
        """Always pending: only an operator (through the trading layer) knows the money arrived."""
        return PaymentResult(provider=self.name, provider_ref=provider_ref, status=ProviderStatus.PENDING)

    def cancel_payment(self, *, provider_ref: str, idempotency_key: str) -> PaymentResult:
        """Canceled: the buyer simply does not make the bank transfer."""
        check_idempotency_key(idempotency_key)
        return PaymentResult(provider=self.name, provider_ref=provider_ref, status=ProviderStatus.CANCELED)

    def refund(self, *, provider_ref: str, amount: int, idempotency_key: str) -> RefundResult:
        """Recorded as succeeded: the operator returns the money by bank transfer."""
        check_idempotency_key(idempotency_key)
        return RefundResult(
            provider=self.name,
            provider_ref=_ref("manref", idempotency_key),
            payment_ref=provider_ref,
            status=ProviderStatus.SUCCEEDED,
            amount=check_amount(amount),
        )

    def transfer(
        self,
        *,
        destination_account: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, Any],
    ) -> TransferResult:
        """Recorded as succeeded: the operator pays the seller by bank transfer."""
        check_idempotency_key(idempotency_key)
        return TransferResult(
            provider=self.name,
            provider_ref=_ref("mantr", idempotency_key),
            destination_account=destination_account,
            status=ProviderStatus.SUCCEEDED,
            amount=check_amount(amount),
            currency=check_currency(currency),
        )

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> ProviderEvent:
        """The manual provider sends no webhooks: always InvalidWebhook (400)."""
        raise InvalidWebhook("the manual payment provider has no webhooks")
