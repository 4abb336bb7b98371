"""Domain events: the outbox written in the same transaction as each change, webhook endpoints and
their signed deliveries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import hooks, metrics


def _webhooks(session: Session) -> Iterable[Metric]:
    from exchange.events.models import WebhookDelivery
    from exchange.events.outbox import OutboxEvent

    waiting = session.execute(select(func.count()).select_from(OutboxEvent)
                              .where(OutboxEvent.dispatched_at.is_(None))).scalar_one()
    yield GaugeMetricFamily("datafair_outbox_undispatched_events", "Outbox events not yet fanned out to deliveries",
                            value=float(waiting))
    rows = session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all()
    yield metrics.labelled_gauge("datafair_webhook_deliveries", "Webhook deliveries by status", "status", rows)


def init_app(app: Flask, api: Any) -> None:
    from exchange.events import outbox, routes  # outbox registers its table

    api.register_blueprint(routes.blp)
    outbox.register_event_types(app, outbox.EXCHANGE_EVENT_TYPES)
    metrics.register_collector(app, "webhooks", _webhooks)
    hooks.register(app, "organization_verified", _organization_verified)


def document_event_types(app: Flask, api: Any) -> None:
    """Write the event types the layers registered on `app` into its OpenAPI document (the enum of
    the webhook endpoints' `events`, and their maximum count). Called once every layer's `init_app`
    ran: the schemas are documented when the kernel registers its blueprint, before the domains."""
    from exchange.events import outbox
    from exchange.events.schemas import EVENT_TYPE_PROPERTIES

    names = sorted(outbox.event_types(app))
    schemas = api.spec.components.to_dict().get("schemas", {})
    for component, prop, bounded in EVENT_TYPE_PROPERTIES:
        events = schemas[component]["properties"][prop]
        events["items"]["enum"] = list(names)
        if bounded:
            events["minItems"], events["maxItems"] = 1, len(names)


def _organization_verified(session: Session, *, org: Any, actor: Any, previous: str, reason: str) -> None:
    """The organization itself and the operators' organization (its back office) are told."""
    from exchange.events import outbox
    from exchange.fields import iso_z

    outbox.emit(session, event_type="organization.verified", org_ids=[org.id, actor.org_id], payload={
        "organization": {"id": org.id, "name": org.name, "type": org.type, "region": org.region,
                         "status": org.status, "status_changed_at": iso_z(org.status_changed_at)},
        "previous_status": previous,
        "reason": reason,
    })
