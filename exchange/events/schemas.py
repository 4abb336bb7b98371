"""Schemas of the webhook endpoints API."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from exchange.events.models import DELIVERY_STATUSES
from exchange.events.outbox import event_types
from exchange.fields import OneTimeSecret, StrictSchema, Text, UTCDateTime, log_page_schema, page_schema
from exchange.netguard import MAX_URL_LENGTH


class RegisteredEventType(validate.Validator):
    """One of the event types registered on the current app (the same check and message as OneOf).

    The layers register their types in `init_app`, after this module is imported, so the choices are
    read at load time; `exchange.events.document_event_types` writes them into the OpenAPI enum."""

    def __call__(self, value: Any) -> Any:
        return validate.OneOf(sorted(event_types()))(value)


class EventTypeList(validate.Validator):
    """At least one event type, at most as many as are registered (Length(min=1, max=n))."""

    def __call__(self, value: Any) -> Any:
        return validate.Length(min=1, max=len(event_types()))(value)


# (component, property, with EventTypeList's bounds) of the OpenAPI document that list the event types.
EVENT_TYPE_PROPERTIES = (("WebhookEndpointCreate", "events", True), ("WebhookEndpoint", "events", False),
                         ("WebhookEndpointCreated", "events", False))


class WebhookEndpointCreateSchema(StrictSchema):
    url = Text(required=True, max_length=MAX_URL_LENGTH, metadata={
        "description": "http(s) URL on a public address (https only in production); stored normalized "
                       "(host lowercased, IDNA-mapped, no trailing dot)",
        "example": "https://93.184.216.34/hooks/datafair"})
    events = fields.List(fields.String(validate=RegisteredEventType()), required=True,
                         validate=EventTypeList(),
                         metadata={"description": "event types to receive"})


class WebhookEndpointSchema(Schema):
    id = fields.String(dump_only=True)
    org_id = fields.String()
    url = fields.String()
    events = fields.List(fields.String(validate=RegisteredEventType()))
    created_at = UTCDateTime()


class WebhookEndpointCreatedSchema(WebhookEndpointSchema):
    secret = OneTimeSecret(
        description="HMAC-SHA256 key of the Datafair-Signature header. Shown only in this response: store it.")


class WebhookDeliverySchema(Schema):
    id = fields.String()
    event_id = fields.String(metadata={"description": "also sent as the Datafair-Event-Id header; deduplicate on it"})
    event_type = fields.String()
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    last_attempt_at = UTCDateTime(allow_none=True)
    next_attempt_at = UTCDateTime(allow_none=True)
    delivered_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()


WebhookEndpointPageSchema = page_schema(WebhookEndpointSchema, "WebhookEndpointPage")
WebhookDeliveryPageSchema = log_page_schema(WebhookDeliverySchema, "WebhookDeliveryPage")


# OpenAPI examples (the request is accepted as is by a verified organization; responses match their schema).
ENDPOINT_ID_EXAMPLE = "whe_0193a5e1c4b27d8e9f0a1b2c3d4e5f60"
_ORG_ID_EXAMPLE = "org_0193a4c2e1f08b6d2c4e9a7f13b5d8e0"
WEBHOOK_ENDPOINT_CREATE_EXAMPLE = {
    "url": "https://93.184.216.34/hooks/datafair",
    "events": ["trade.escrowed", "trade.settled", "contract.signed"],
}
WEBHOOK_ENDPOINT_EXAMPLE = {
    "id": ENDPOINT_ID_EXAMPLE,
    "org_id": _ORG_ID_EXAMPLE,
    "url": "https://93.184.216.34/hooks/datafair",
    "events": ["contract.signed", "trade.escrowed", "trade.settled"],
    "created_at": "2026-11-30T16:45:12Z",
}
WEBHOOK_ENDPOINT_CREATED_EXAMPLE = {
    **WEBHOOK_ENDPOINT_EXAMPLE,
    "secret": "whsec_5kQ0v3mJ8yTz2bNw7rXc4hLp9sFa6dGe1uIo0qWtYnM",
}
WEBHOOK_ENDPOINT_PAGE_EXAMPLE = {"items": [WEBHOOK_ENDPOINT_EXAMPLE], "total": 1, "page": 1, "per_page": 20}
WEBHOOK_DELIVERY_PAGE_EXAMPLE = {
    "items": [
        {
            "id": "whd_0193a6b0f2e94a5b6c7d8e9f0a1b2c3d",
            "event_id": "evt_0193a6b0f2d18c9d0e1f2a3b4c5d6e7f",
            "event_type": "trade.escrowed",
            "status": "pending",
            "attempts": 2,
            "last_status_code": 503,
            "last_error": "answered 503",
            "last_attempt_at": "2026-12-01T09:31:05Z",
            "next_attempt_at": "2026-12-01T09:36:05Z",
            "delivered_at": None,
            "created_at": "2026-12-01T09:30:01Z",
        },
        {
            "id": "whd_0193a69c1d7e2f3a4b5c6d7e8f9a0b1c",
            "event_id": "evt_0193a69c1d5b6c7d8e9f0a1b2c3d4e5f",
            "event_type": "contract.signed",
            "status": "delivered",
            "attempts": 1,
            "last_status_code": 200,
            "last_error": None,
            "last_attempt_at": "2026-12-01T09:08:14Z",
            "next_attempt_at": None,
            "delivered_at": "2026-12-01T09:08:14Z",
            "created_at": "2026-12-01T09:08:13Z",
        },
    ],
    "total": 2, "page": 1, "per_page": 20,
}
# `?limit=1`: the oldest delivery first (cursor mode is in creation order), more to follow.
WEBHOOK_DELIVERY_CURSOR_EXAMPLE = {"items": WEBHOOK_DELIVERY_PAGE_EXAMPLE["items"][1:],
                                   "next": WEBHOOK_DELIVERY_PAGE_EXAMPLE["items"][1]["id"], "limit": 1}
