"""Webhook endpoints (per organization) and deliveries (one per endpoint and event)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, IdColumn, TimestampMixin, UTCDateTime, check_in
from exchange.events.outbox import OutboxEvent  # noqa: F401 - the table deliveries refer to
from exchange.events.states import DELIVERY_STATUSES, DeliveryStatus  # noqa: F401 - DELIVERY_STATUSES re-exported


class WebhookEndpoint(TimestampMixin, Base):
    """An organization's URL for events; the HMAC secret is stored encrypted (see services)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = IdColumn("whe")
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDelivery(TimestampMixin, Base):
    """One event to one endpoint: attempts, the last answer, when to try next.

    A worker claims a delivery by writing a fresh `lease_token` with `lease_expires_at` (on
    PostgreSQL after `SELECT ... FOR UPDATE SKIP LOCKED`); it records the attempt only while its
    token is still the row's, so two workers never send the same attempt at once, and a worker that
    dies mid-attempt lets the lease expire and the attempt be made again (at-least-once).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        CheckConstraint(check_in("status", DeliveryStatus), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = IdColumn("whd")
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(40))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
