"""Payment gateways behind one interface: `manual` (default, offline) and `stripe`.

The trading layer uses `get_gateway(name)` for outbound calls and webhook verification, and the
services here to apply each webhook event once and to make every outbound call through
`run_provider_call`: recorded (with its deterministic idempotency key) and committed first, made
with no transaction open, answered in a new transaction. Nothing here changes trades or the ledger.
"""

from typing import Any

from exchange.payments.gateway import (
    InvalidWebhook,
    PaymentGateway,
    PaymentResult,
    ProviderError,
    ProviderEvent,
    ProviderStatus,
    ProviderUnavailable,
    ProviderUnreachable,
    RefundResult,
    TransferResult,
)
from exchange.payments.manual import ManualGateway
from exchange.payments.registry import DEFAULT_PROVIDER, PROVIDER_NAMES, available_providers, get_gateway
from exchange.payments.services import (
    TransactionOpenError,
    abandoned_calls,
    begin_call,
    complete_call,
    find_call,
    idempotency_key,
    in_transaction,
    outside_transaction,
    record_event_once,
    run_provider_call,
)


def __getattr__(name: str) -> object:
    # The Stripe SDK costs ~14 MB per process: loaded only where a Stripe gateway is used.
    if name == "StripeGateway":
        from exchange.payments.stripe_gateway import StripeGateway

        return StripeGateway
    raise AttributeError(name)


__all__ = [
    "DEFAULT_PROVIDER",
    "PROVIDER_NAMES",
    "InvalidWebhook",
    "ManualGateway",
    "PaymentGateway",
    "PaymentResult",
    "ProviderError",
    "ProviderEvent",
    "ProviderStatus",
    "ProviderUnavailable",
    "ProviderUnreachable",
    "RefundResult",
    "StripeGateway",
    "TransactionOpenError",
    "TransferResult",
    "abandoned_calls",
    "available_providers",
    "begin_call",
    "complete_call",
    "find_call",
    "get_gateway",
    "idempotency_key",
    "in_transaction",
    "outside_transaction",
    "record_event_once",
    "run_provider_call",
]


def init_app(app: Any, api: Any) -> None:
    """Register the payment tables (gateways are chosen per call from the configuration)."""
    from exchange.payments import models  # noqa: F401 - registers the payment tables
