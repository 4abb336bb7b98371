"""HTTP routes: `/api/v1/webhook-endpoints` (an organization's endpoints and their deliveries)."""

from __future__ import annotations

from typing import Any

from exchange.api import AUTH, Blueprint, log_page, paginate
from exchange.db import db
from exchange.events import services
from exchange.events.schemas import (
    WEBHOOK_DELIVERY_CURSOR_EXAMPLE,
    WEBHOOK_DELIVERY_PAGE_EXAMPLE,
    WEBHOOK_ENDPOINT_CREATE_EXAMPLE,
    WEBHOOK_ENDPOINT_CREATED_EXAMPLE,
    WEBHOOK_ENDPOINT_EXAMPLE,
    WEBHOOK_ENDPOINT_PAGE_EXAMPLE,
    WebhookDeliveryPageSchema,
    WebhookEndpointCreatedSchema,
    WebhookEndpointCreateSchema,
    WebhookEndpointPageSchema,
    WebhookEndpointSchema,
)
from exchange.fields import Facts, LogPageArgsSchema, PaginationArgsSchema
from exchange.principal import current_principal
from exchange.ratelimit import limit_writes

blp = Blueprint("webhook-endpoints", __name__, url_prefix="/api/v1/webhook-endpoints",
                description="Outbound webhooks: signed event deliveries to an organization's endpoints")


@blp.route("", methods=["POST"])
@blp.arguments(WebhookEndpointCreateSchema, example=WEBHOOK_ENDPOINT_CREATE_EXAMPLE)
@blp.response(201, WebhookEndpointCreatedSchema, example=WEBHOOK_ENDPOINT_CREATED_EXAMPLE)
@blp.doc(security=AUTH, operationId="createWebhookEndpoint")
@blp.problems(400, 401, 403, 409, 415, 422, 429)
@limit_writes("webhook-endpoints")
def create_endpoint(data: dict[str, Any]) -> Any:
    """Register a webhook endpoint for some event types.

    Any user of a verified organization (403 otherwise) registers an endpoint of their organization;
    the events of those types that concern the organization are then delivered to it. The response
    holds the signing `secret`, shown this once (null in an idempotent replay). Deliveries are POSTs
    of `{"id", "type", "created_at", "data"}` signed in `Datafair-Signature: t=<unix>,v1=<hex
    HMAC-SHA256(secret, "<t>.<body>")>`, retried with backoff until a 2xx answer. Audited. 422 for a
    URL that is not http(s) on a public address (https only in production; a host name must
    resolve) or an unknown event type; 409 past `DATAFAIR_WEBHOOK_MAX_ENDPOINTS` (default 20) live
    endpoints per organization; 429 past the organization's write rate limit."""
    endpoint, secret = services.create_endpoint(db.session, url=data["url"], events=data["events"],
                                                actor=current_principal())
    return Facts(endpoint, secret=secret)


@blp.route("", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, WebhookEndpointPageSchema, example=WEBHOOK_ENDPOINT_PAGE_EXAMPLE)
@blp.doc(security=AUTH, operationId="listWebhookEndpoints")
@blp.problems(401, 422)
def list_endpoints(args: dict[str, Any]) -> Any:
    """List your organization's webhook endpoints.

    Any authenticated user: the live (not deleted) endpoints of their own organization, oldest
    first, never their secrets. Changes nothing."""
    stmt = services.list_endpoints(actor=current_principal())
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/<endpoint_id>", methods=["GET"])
@blp.response(200, WebhookEndpointSchema, example=WEBHOOK_ENDPOINT_EXAMPLE)
@blp.doc(security=AUTH, operationId="getWebhookEndpoint")
@blp.problems(401, 404)
def get_endpoint(endpoint_id: str) -> Any:
    """Get one of your organization's webhook endpoints.

    Any authenticated user of the organization that registered it (without its secret). 404 for an
    unknown or deleted endpoint and for another organization's. Changes nothing."""
    return services.get_endpoint(db.session, endpoint_id=endpoint_id, actor=current_principal())


@blp.route("/<endpoint_id>", methods=["DELETE"])
@blp.response(200, WebhookEndpointSchema, example=WEBHOOK_ENDPOINT_EXAMPLE)
@blp.doc(security=AUTH, operationId="deleteWebhookEndpoint")
@blp.problems(401, 403, 404)
def delete_endpoint(endpoint_id: str) -> Any:
    """Delete a webhook endpoint.

    Any user of the organization that registered it stops deliveries to it: its `pending`
    deliveries become `cancelled`, it disappears from the lists, its delivery history is kept.
    Audited. Answers the endpoint as it was. 403 when the organization is suspended; 404 for an
    unknown or already deleted endpoint and for another organization's."""
    return services.delete_endpoint(db.session, endpoint_id=endpoint_id, actor=current_principal())


@blp.route("/<endpoint_id>/deliveries", methods=["GET"])
@blp.arguments(LogPageArgsSchema, location="query")
@blp.response(200, WebhookDeliveryPageSchema, examples={"page": {"value": WEBHOOK_DELIVERY_PAGE_EXAMPLE},
                                                        "cursor": {"value": WEBHOOK_DELIVERY_CURSOR_EXAMPLE}})
@blp.doc(security=AUTH, operationId="listWebhookDeliveries")
@blp.problems(401, 404, 422)
def list_deliveries(args: dict[str, Any], endpoint_id: str) -> Any:
    """List the deliveries to one of your webhook endpoints.

    Any authenticated user of the organization that registered it: its deliveries, newest first,
    with the event, the status (`pending`, `delivered`, `failed` after the last attempt, `cancelled`
    when the endpoint was deleted), attempts, the last answer and the next attempt. 404 for an
    unknown or deleted endpoint and for another organization's. Changes nothing. Pages by number
    (`page`, `per_page`, with `total`) or, given `after` or `limit`, by cursor oldest first (`next`:
    pass it as `after`; deliveries created meanwhile come on the following pages, none skipped or
    repeated)."""
    stmt = services.list_deliveries(db.session, endpoint_id=endpoint_id, actor=current_principal())
    page = log_page(db.session, stmt, args, order=services.DELIVERY_ORDER, scalars=False)
    page["items"] = [services.delivery_shown(row) for row in page["items"]]
    return page
