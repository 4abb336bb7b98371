"""Schemas of the webhook endpoints API."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from exchange.events.models import DELIVERY_STATUSES
from exchange.events.outbox import event_types
from exchange.fields import OneTimeSecret, StrictSchema, Text, UTCDateTime, page_schema
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
        "example": "https://erp.example.com/datafair/events"})
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
WebhookDeliveryPageSchema = page_schema(WebhookDeliverySchema, "WebhookDeliveryPage")
