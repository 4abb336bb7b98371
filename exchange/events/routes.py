"""HTTP routes: `/api/v1/webhook-endpoints` (an organization's endpoints and their deliveries)."""

from __future__ import annotations

from typing import Any

from exchange.api import AUTH, Blueprint, paginate
from exchange.db import db
from exchange.events import services
from exchange.events.schemas import (
    WebhookDeliveryPageSchema,
    WebhookEndpointCreatedSchema,
    WebhookEndpointCreateSchema,
    WebhookEndpointPageSchema,
    WebhookEndpointSchema,
)
from exchange.fields import Facts, PaginationArgsSchema
from exchange.principal import current_principal
from exchange.ratelimit import limit_writes

blp = Blueprint("webhook-endpoints", __name__, url_prefix="/api/v1/webhook-endpoints",
                description="Outbound webhooks: signed event deliveries to an organization's endpoints")


@blp.route("", methods=["POST"])
@blp.arguments(WebhookEndpointCreateSchema)
@blp.response(201, WebhookEndpointCreatedSchema)
@blp.doc(security=AUTH)
@blp.problems(400, 401, 403, 409, 415, 422, 429)
@limit_writes("webhook-endpoints")
def create_endpoint(data: dict[str, Any]) -> Any:
    """Register an endpoint of your (verified) organization for some event types. The response holds
    the signing `secret`, shown this once. Deliveries are POSTs of `{"id", "type", "created_at", "data"}`
    signed in `Datafair-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    endpoint, secret = services.create_endpoint(db.session, url=data["url"], events=data["events"],
                                                actor=current_principal())
    return Facts(endpoint, secret=secret)


@blp.route("", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, WebhookEndpointPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 422)
def list_endpoints(args: dict[str, Any]) -> Any:
    """Your organization's endpoints (never their secrets)."""
    stmt = services.list_endpoints(actor=current_principal())
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/<endpoint_id>", methods=["GET"])
@blp.response(200, WebhookEndpointSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404)
def get_endpoint(endpoint_id: str) -> Any:
    """One of your organization's endpoints."""
    return services.get_endpoint(db.session, endpoint_id=endpoint_id, actor=current_principal())


@blp.route("/<endpoint_id>", methods=["DELETE"])
@blp.response(200, WebhookEndpointSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 404)
def delete_endpoint(endpoint_id: str) -> Any:
    """Stop deliveries to an endpoint: its pending deliveries are cancelled; it disappears from the lists."""
    return services.delete_endpoint(db.session, endpoint_id=endpoint_id, actor=current_principal())


@blp.route("/<endpoint_id>/deliveries", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, WebhookDeliveryPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404, 422)
def list_deliveries(args: dict[str, Any], endpoint_id: str) -> Any:
    """Deliveries to one of your endpoints, newest first: event, attempts, last answer, next attempt."""
    stmt = services.list_deliveries(db.session, endpoint_id=endpoint_id, actor=current_principal())
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"], scalars=False)
    page["items"] = [services.delivery_shown(row) for row in page["items"]]
    return page
