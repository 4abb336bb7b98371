"""`get_gateway(name)`: the configured gateway for a provider name (`manual` or `stripe`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import current_app

from exchange.payments.gateway import PaymentGateway, ProviderUnavailable
from exchange.payments.manual import ManualGateway

if TYPE_CHECKING:
    from exchange.payments.stripe_gateway import StripeGateway

PROVIDER_NAMES = ("manual", "stripe")
DEFAULT_PROVIDER = "manual"

_MANUAL = ManualGateway()
# One StripeGateway per configuration for the life of the process: its HTTP client pools
# connections, and dropping a pool mid-run would leak sockets.
_stripe_gateways: dict[tuple[str, str | None, str | None], StripeGateway] = {}
_lock = threading.Lock()


def get_gateway(name: str, config: Mapping[str, Any] | None = None) -> PaymentGateway:
    """The gateway for `name`, configured from `config` (default: the current app's config).

    Raises ProviderUnavailable (422, on `provider`) for an unknown name, or for `stripe` when
    STRIPE_API_KEY is not configured.
    """
    if name == "manual":
        return _MANUAL
    if name != "stripe":
        raise ProviderUnavailable(f"unknown payment provider {name!r}; expected one of {', '.join(PROVIDER_NAMES)}")
    config = current_app.config if config is None else config
    api_key = config.get("STRIPE_API_KEY")
    if not api_key:
        raise ProviderUnavailable("the stripe provider is not configured on this exchange (STRIPE_API_KEY is not set)")
    cache_key = (api_key, config.get("STRIPE_WEBHOOK_SECRET"), config.get("STRIPE_API_BASE"))
    with _lock:
        gateway = _stripe_gateways.get(cache_key)
        if gateway is None:
            from exchange.payments.stripe_gateway import StripeGateway

            gateway = StripeGateway(api_key=api_key, webhook_secret=cache_key[1], api_base=cache_key[2])
            _stripe_gateways[cache_key] = gateway
    return gateway


def available_providers(config: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The provider names this deployment can take payments with."""
    config = current_app.config if config is None else config
    return ("manual", "stripe") if config.get("STRIPE_API_KEY") else ("manual",)
