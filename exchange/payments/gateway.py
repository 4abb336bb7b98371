"""The payment gateway interface, its result types and its errors.

Amounts are integers of minor units; currencies are the API's upper-case codes (`CNY`, `HKD`, `MOP`).
Every outbound operation takes a caller-chosen `idempotency_key` derived from (subject, step), so a
retried step can never move money twice (see `exchange.payments.services.idempotency_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from exchange.errors import DomainError, ServiceUnavailable, ValidationFailed
from exchange.money import CURRENCIES, MAX_AMOUNT


class ProviderStatus(StrEnum):
    """Where a payment, refund or transfer stands at the provider."""

    PENDING = "pending"  # waiting for the customer, the operator or the bank
    SUCCEEDED = "succeeded"  # money moved
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """A payment as the provider sees it. `amount`/`currency` are None only when the provider
    cannot know them (the manual gateway keeps no state)."""

    provider: str
    provider_ref: str
    status: ProviderStatus
    client_secret: str | None = None
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    provider: str
    provider_ref: str
    payment_ref: str
    status: ProviderStatus
    amount: int
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class TransferResult:
    provider: str
    provider_ref: str
    destination_account: str
    status: ProviderStatus
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified provider event (a webhook).

    The signature proves the event came from the provider, not that it matches our books: the
    caller must compare `amount` and `currency` with the trade it belongs to (found by
    `provider_ref`, never by metadata in the body) before changing any state, and must apply each
    `id` once (`record_event_once`). `provider_ref` is the id of the event's object (a
    PaymentIntent id for `payment_intent.*` events). `amount` is the amount received when the
    provider reports it, else the object's amount; None when the object carries no amount.
    """

    id: str
    type: str
    provider_ref: str | None
    amount: int | None
    currency: str | None
    raw: Mapping[str, Any] = field(repr=False)
    created: int | None = None


class InvalidWebhook(DomainError):
    """A webhook whose signature is missing, wrong or older than the tolerance, or whose body is not
    a provider event (400; nothing must change)."""

    status, slug, title = 400, "invalid-webhook", "Invalid webhook"


class ProviderUnavailable(ValidationFailed):
    """The requested provider is unknown or not configured in this deployment (422 on `provider`)."""

    slug, title = "provider-unavailable", "Payment provider unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors={"provider": [detail]})


class ProviderError(DomainError):
    """The provider refused the request (502): a bad account, an idempotency clash, a decline."""

    status, slug, title = 502, "payment-provider-error", "Payment provider error"


class ProviderUnreachable(ServiceUnavailable):
    """The provider could not be reached or is overloaded (503); retrying with the same idempotency
    key is safe."""

    slug, title = "payment-provider-unreachable", "Payment provider unreachable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "30"})


@runtime_checkable
class PaymentGateway(Protocol):
    """One interface for every payment provider (`manual`, `stripe`).

    Implementations raise `ProviderError`/`ProviderUnreachable` for provider failures,
    `ValidationFailed` for amounts or currencies they cannot take, and `InvalidWebhook` from
    `parse_webhook`. They never touch the database: the caller records intent (and commits) before
    calling, then applies the result.
    """

    name: str

    def create_payment(
        self, *, reference: str, amount: int, currency: str, idempotency_key: str, metadata: Mapping[str, Any]
    ) -> PaymentResult:
        """Start collecting `amount` for `reference` (e.g. a trade id); the result is normally pending."""
        ...

    def retrieve_payment(self, provider_ref: str) -> PaymentResult:
        """The provider's current view of a payment, for reconciliation and out-of-order events."""
        ...

    def cancel_payment(self, *, provider_ref: str, idempotency_key: str) -> PaymentResult:
        """Cancel a payment the payer has not completed (its status afterwards: normally canceled)."""
        ...

    def refund(self, *, provider_ref: str, amount: int, idempotency_key: str) -> RefundResult:
        """Return `amount` of the payment `provider_ref` to the payer."""
        ...

    def transfer(
        self,
        *,
        destination_account: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, Any],
    ) -> TransferResult:
        """Pay `amount` out to a seller's account at the provider."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> ProviderEvent:
        """Verify and parse a webhook body; raises InvalidWebhook (400)."""
        ...


def check_amount(amount: Any, *, field_name: str = "amount") -> int:
    """A positive integer of minor units within the API's cap; raises ValidationFailed (422)."""
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise ValidationFailed(f"{field_name} must be a positive integer of minor units",
                               errors={field_name: ["must be a positive integer of minor units"]})
    return amount


def check_currency(currency: Any) -> str:
    """One of the exchange's currencies, returned upper-case; raises ValidationFailed (422)."""
    code = currency.upper() if isinstance(currency, str) else None
    if code not in CURRENCIES:
        raise ValidationFailed(f"currency must be one of {', '.join(CURRENCIES)}",
                               errors={"currency": [f"must be one of {', '.join(CURRENCIES)}"]})
    return code


def check_idempotency_key(key: Any) -> str:
    """Stripe accepts keys of up to 255 characters; an empty key would defeat the point."""
    if not isinstance(key, str) or not 0 < len(key) <= 255:
        raise ValueError("idempotency_key must be a non-empty string of at most 255 characters")
    return key
