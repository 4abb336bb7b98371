"""The Stripe gateway: PaymentIntents, Refunds and Connect Transfers through stripe-python's StripeClient.

`api_base` points the client at a local peer (localstripe in the tests) through StripeClient's
`base_addresses={"api": ...}`. Amounts go to Stripe as integer minor units with a lower-case
currency. Every call carries the caller's deterministic idempotency key, so a retried step returns
the first result instead of charging twice. Webhooks are verified like `stripe.Webhook.construct_event`
(HMAC-SHA256 over `t.payload`, 300 s tolerance) and, in addition, refused when stamped too far in
the future.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import stripe

from exchange.api import strict_json_loads
from exchange.errors import Conflict
from exchange.payments.gateway import (
    InvalidWebhook,
    PaymentResult,
    ProviderError,
    ProviderEvent,
    ProviderStatus,
    ProviderUnavailable,
    ProviderUnreachable,
    RefundResult,
    TransferResult,
    check_amount,
    check_currency,
    check_idempotency_key,
)

WEBHOOK_TOLERANCE_SECONDS = 300
# Stripe's metadata limits: 50 keys, keys up to 40 characters, values up to 500.
_METADATA_KEYS, _METADATA_KEY_LEN, _METADATA_VALUE_LEN = 50, 40, 500

_INTENT_STATUS = {"succeeded": ProviderStatus.SUCCEEDED, "canceled": ProviderStatus.CANCELED}
_REFUND_STATUS = {
    "succeeded": ProviderStatus.SUCCEEDED,
    "failed": ProviderStatus.FAILED,
    "canceled": ProviderStatus.CANCELED,
}


def _metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """Stripe metadata is flat strings; refuse what Stripe would refuse, before calling it."""
    out = {str(k): str(v) for k, v in values.items() if v is not None}
    if len(out) > _METADATA_KEYS or any(
        len(k) > _METADATA_KEY_LEN or len(v) > _METADATA_VALUE_LEN for k, v in out.items()
    ):
        raise ValueError("metadata exceeds Stripe's limits (50 keys, 40-character keys, 500-character values)")
    return out


class StripeGateway:
    """Stripe through `StripeClient`; one instance per configuration (its HTTP client is reused)."""

    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str | None = None,
        api_base: str | None = None,
        http_client: stripe.HTTPClient | None = None,
        max_network_retries: int = 2,
        tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
    ) -> None:
        if not api_key:
            raise ProviderUnavailable("the stripe provider is not configured (STRIPE_API_KEY is not set)")
        self._webhook_secret = webhook_secret
        self._tolerance = tolerance
        self._http_client = http_client or stripe.new_default_http_client()
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=self._http_client,
            max_network_retries=max_network_retries,
        )

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._http_client.close()

    def __enter__(self) -> StripeGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # outbound calls

    def create_payment(
        self, *, reference: str, amount: int, currency: str, idempotency_key: str, metadata: Mapping[str, Any]
    ) -> PaymentResult:
        """Create a PaymentIntent (card) the buyer confirms with `client_secret`; pending until then."""
        amount, currency = check_amount(amount), check_currency(currency)
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            # Explicit method types: automatic_payment_methods is not understood by every peer.
            "payment_method_types": ["card"],
            "metadata": _metadata({**metadata, "reference": reference}),
        }
        intent = self._call("create the payment", lambda: self._client.v1.payment_intents.create(
            params, {"idempotency_key": check_idempotency_key(idempotency_key)}))
        result = self._payment_result(intent)
        if result.amount != amount or result.currency != currency:
            # Stripe answers a reused key with the first request's object: never accept another payment's.
            raise ProviderError(
                f"stripe returned a payment of {result.amount} {result.currency} for key {idempotency_key!r}, "
                f"expected {amount} {currency}"
            )
        return result

    def retrieve_payment(self, provider_ref: str) -> PaymentResult:
        """The PaymentIntent's current status and amounts."""
        intent = self._call("retrieve the payment", lambda: self._client.v1.payment_intents.retrieve(provider_ref))
        return self._payment_result(intent)

    def cancel_payment(self, *, provider_ref: str, idempotency_key: str) -> PaymentResult:
        """Cancel the PaymentIntent; Stripe refuses (ProviderError) one that has already succeeded."""
        intent = self._call("cancel the payment", lambda: self._client.v1.payment_intents.cancel(
            provider_ref, {}, {"idempotency_key": check_idempotency_key(idempotency_key)}))
        return self._payment_result(intent)

    def refund(self, *, provider_ref: str, amount: int, idempotency_key: str) -> RefundResult:
        """Refund `amount` of the PaymentIntent `provider_ref` through Stripe."""
        amount = check_amount(amount)
        refund = self._call("refund the payment", lambda: self._client.v1.refunds.create(
            {"payment_intent": provider_ref, "amount": amount},
            {"idempotency_key": check_idempotency_key(idempotency_key)},
        ))
        if refund.get("amount") != amount:
            raise ProviderError(
                f"stripe refunded {refund.get('amount')} for key {idempotency_key!r}, expected {amount}"
            )
        currency = refund.get("currency")
        return RefundResult(
            provider=self.name,
            provider_ref=refund["id"],
            payment_ref=provider_ref,
            status=_REFUND_STATUS.get(refund.get("status") or "", ProviderStatus.PENDING),
            amount=amount,
            currency=currency.upper() if isinstance(currency, str) else None,
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
        """A Connect Transfer of `amount` to the seller's connected account (`acct_...`); raises
        Conflict (409) when there is no such account."""
        amount, currency = check_amount(amount), check_currency(currency)
        if not destination_account or not destination_account.startswith("acct_"):
            raise Conflict("the organization has no Stripe connected account (stripe_account_id)",
                           next_step="an operator must link the organization's Stripe connected account "
                                     "(stripe_account_id) first")
        transfer = self._call("transfer to the seller", lambda: self._client.v1.transfers.create(
            {
                "amount": amount,
                "currency": currency.lower(),
                "destination": destination_account,
                "metadata": _metadata(metadata),
            },
            {"idempotency_key": check_idempotency_key(idempotency_key)},
        ))
        if transfer.get("amount") != amount or str(transfer.get("currency", "")).upper() != currency:
            raise ProviderError(f"stripe returned another transfer for key {idempotency_key!r}")
        return TransferResult(
            provider=self.name,
            provider_ref=transfer["id"],
            destination_account=destination_account,
            status=ProviderStatus.CANCELED if transfer.get("reversed") else ProviderStatus.SUCCEEDED,
            amount=amount,
            currency=currency,
        )

    def _call(self, what: str, fn: Callable[[], Any]) -> dict[str, Any]:
        """Make one API call; its object as a plain dict, or the failure as a domain error."""
        try:
            return fn().to_dict()
        except (stripe.APIConnectionError, stripe.RateLimitError) as e:
            raise ProviderUnreachable(f"stripe could not {what}: {e.user_message or e.__class__.__name__}") from e
        except stripe.APIError as e:
            raise ProviderUnreachable(f"stripe failed to {what} (HTTP {e.http_status})") from e
        except stripe.StripeError as e:
            raise ProviderError(f"stripe refused to {what}: {e.user_message or e.__class__.__name__}") from e

    def _payment_result(self, intent: dict[str, Any]) -> PaymentResult:
        currency = intent.get("currency")
        return PaymentResult(
            provider=self.name,
            provider_ref=intent["id"],
            status=_INTENT_STATUS.get(intent.get("status") or "", ProviderStatus.PENDING),
            client_secret=intent.get("client_secret"),
            amount=intent.get("amount"),
            currency=currency.upper() if isinstance(currency, str) else None,
        )

    # webhooks

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> ProviderEvent:
        """Verify the `Stripe-Signature` of `payload` and parse the event; raises InvalidWebhook (400)
        for a missing, wrong or stale signature or a body that is not an event, and
        ProviderUnavailable (422) when STRIPE_WEBHOOK_SECRET is not configured."""
        if not self._webhook_secret:
            raise ProviderUnavailable("stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET is not set)")
        if not signature_header:
            raise InvalidWebhook("the Stripe-Signature header is missing")
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidWebhook("the webhook body is not UTF-8") from None
        try:
            stripe.WebhookSignature.verify_header(text, signature_header, self._webhook_secret, self._tolerance)
        except stripe.SignatureVerificationError as e:
            raise InvalidWebhook(f"bad Stripe-Signature: {e.user_message}") from None
        timestamp = _signed_timestamp(signature_header)
        if timestamp > time.time() + self._tolerance:
            raise InvalidWebhook("bad Stripe-Signature: timestamp is in the future")
        return _event_from(text)


def _signed_timestamp(header: str) -> int:
    # verify_header has already parsed this header successfully.
    return int(next(part.split("=", 1)[1] for part in header.split(",") if part.split("=", 1)[0].strip() == "t"))


def _event_from(text: str) -> ProviderEvent:
    try:
        # The API's own strict parser: no NaN, no duplicate keys (parsers disagree on which one wins),
        # no nesting deep enough to exhaust the stack (a RecursionError would be a 500).
        body = strict_json_loads(text)
    except ValueError:
        raise InvalidWebhook("the webhook body is not JSON") from None
    if not isinstance(body, dict) or body.get("object") != "event":
        raise InvalidWebhook("the webhook body is not a Stripe event")
    event_id, event_type, data = body.get("id"), body.get("type"), body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not isinstance(obj, dict):
        raise InvalidWebhook("the Stripe event lacks an id, a type or a data object")
    amount = obj.get("amount")
    received = obj.get("amount_received")
    if obj.get("object") == "payment_intent" and obj.get("status") == "succeeded" and type(received) is int:
        amount = received
    currency = obj.get("currency")
    created = body.get("created")
    return ProviderEvent(
        id=event_id,
        type=event_type,
        provider_ref=obj["id"] if isinstance(obj.get("id"), str) else None,
        amount=amount if type(amount) is int else None,
        currency=currency.upper() if isinstance(currency, str) else None,
        raw=body,
        created=created if type(created) is int else None,
    )
