"""Kernel tables: organizations, users, refresh tokens, signing keys (organizations' and the exchange's),
audit, idempotency, rate limits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db import Base, IdColumn, TimestampMixin, UTCDateTime, check_in, utcnow
from exchange.states import ORG_TYPES, REGIONS, ROLES, OrgStatus


class Organization(TimestampMixin, Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint(check_in("type", ORG_TYPES), name="type"),
        CheckConstraint(check_in("region", REGIONS), name="region"),
        CheckConstraint(check_in("status", tuple(s.value for s in OrgStatus)), name="status"),
    )

    id: Mapped[str] = IdColumn("org")
    name: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20), index=True)
    region: Mapped[str] = mapped_column(String(8))
    registration_number: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=OrgStatus.PENDING, index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contact_email: Mapped[str | None] = mapped_column(String(254))
    website: Mapped[str | None] = mapped_column(String(500))
    stripe_account_id: Mapped[str | None] = mapped_column(String(100))

    users: Mapped[list[User]] = relationship(back_populates="organization", lazy="raise")


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(check_in("role", ROLES), name="role"),)

    id: Mapped[str] = IdColumn("usr")
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    organization: Mapped[Organization] = relationship(back_populates="users", lazy="joined")


class RefreshToken(TimestampMixin, Base):
    """Opaque refresh tokens, stored as sha256; single use; a family shares one login."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = IdColumn("rt")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OrganizationKey(TimestampMixin, Base):
    """An Ed25519 public key an organization signs contracts with."""

    __tablename__ = "organization_keys"

    key_id: Mapped[str] = IdColumn("key")
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExchangeKey(Base):
    """The exchange's own Ed25519 signing keys (certificates, contracts), owned by exchange.signing.

    The private key is stored only encrypted (AES-GCM under a key derived from DATAFAIR_SECRET_KEY).
    At most one key is active (a partial unique index, so two workers creating the first key at once
    cannot both win); retired keys stay published so old signatures keep verifying.
    """

    __tablename__ = "exchange_keys"
    __table_args__ = (
        CheckConstraint("active = (retired_at IS NULL)", name="active_not_retired"),
        Index("uq_exchange_keys_one_active", "active", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Append-only trail of privileged actions."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_user_id: Mapped[str | None] = mapped_column(String(40))
    actor_org_id: Mapped[str | None] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(80))
    detail: Mapped[dict] = mapped_column(default=dict, type_=JSON)


class IdempotencyRecord(Base):
    """A POST's Idempotency-Key: in flight, then its stored response (replayed for 24 h)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(60))
    key: Mapped[str] = mapped_column(String(255))
    method_path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict | None] = mapped_column(type_=JSON)


class RateLimitCounter(Base):
    """Fixed-window counters shared by every worker through the database (Redis when configured)."""

    __tablename__ = "rate_limit_counters"

    bucket: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
