"""Identity tables: organizations, users, refresh tokens, organizations' signing keys, the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db import Base, IdColumn, TimestampMixin, UTCDateTime, check_in, utcnow
from exchange.identity.states import GD_CITIES, ORG_TYPES, REGIONS, ROLES, ZONES, OrgStatus


class Organization(TimestampMixin, Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint(check_in("type", ORG_TYPES), name="type"),
        CheckConstraint(check_in("region", REGIONS), name="region"),
        CheckConstraint(check_in("status", tuple(s.value for s in OrgStatus)), name="status"),
        CheckConstraint(check_in("city", GD_CITIES), name="city"),
        CheckConstraint(check_in("zone", tuple(ZONES)), name="zone"),
        CheckConstraint("city IS NULL OR region = 'GD'", name="city_region"),
        CheckConstraint("zone IS NULL OR city IS NOT NULL", name="zone_city"),
    )

    id: Mapped[str] = IdColumn("org")
    name: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20), index=True)
    region: Mapped[str] = mapped_column(String(8))
    city: Mapped[str | None] = mapped_column(String(20))
    zone: Mapped[str | None] = mapped_column(String(20))
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
