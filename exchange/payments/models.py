"""Payment bookkeeping: provider events applied (exactly once) and outbound calls (intent first)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime, utcnow

PROVIDERS = ("manual", "stripe")
OPERATIONS = ("payment", "refund", "transfer", "cancel")
CALL_STATUSES = ("started", "succeeded", "pending", "failed", "canceled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ProcessedProviderEvent(Base):
    """A provider event id that has been applied; the unique key makes a second application impossible."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_provider_events_provider_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(100))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProviderCall(Base):
    """An outbound money call, stored (and committed) before it is made, under its idempotency key.

    A retry after a crash finds the row and repeats the call with the same key, so the provider
    performs it once; `status`/`provider_ref` record the answer once it is known.
    """

    __tablename__ = "provider_calls"
    __table_args__ = (
        UniqueConstraint("provider", "idempotency_key", name="uq_provider_calls_provider_key"),
        CheckConstraint(_in("provider", PROVIDERS), name="provider"),
        CheckConstraint(_in("operation", OPERATIONS), name="operation"),
        CheckConstraint(_in("status", CALL_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # The reconciliation job's scan for calls begun but never answered (a crash between steps).
        Index("ix_provider_calls_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(80), index=True)
    step: Mapped[str] = mapped_column(String(60))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    target: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="started")
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
