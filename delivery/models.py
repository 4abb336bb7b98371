"""Delivery tables: entitlements, releases with their files, and the access log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from delivery.states import AccessKind, AccessStatus, EntitlementStatus, ReleaseStatus
from exchange.db import Base, IdColumn, TimestampMixin, UTCDateTime, check_in, utcnow


class Entitlement(TimestampMixin, Base):
    """The buyer's right to use a product's data, one per contract, re-checked at every access.

    `status` is what was last persisted (at a state change, or by the sweep); reads compute the
    status from the facts of that moment (`delivery.entitlements.evaluate`)."""

    __tablename__ = "entitlements"
    __table_args__ = (
        CheckConstraint(check_in("status", EntitlementStatus), name="status"),
        CheckConstraint("calls_used >= 0", name="calls_used"),
        Index("ix_entitlements_buyer", "buyer_org_id", "created_at"),
        Index("ix_entitlements_seller", "seller_org_id", "created_at"),
        Index("ix_entitlements_product", "product_id", "status"),
        Index("ix_entitlements_checked", "status", "checked_at"),
    )

    id: Mapped[str] = IdColumn("ent")
    trade_id: Mapped[str] = mapped_column(ForeignKey("trades.id"), unique=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), unique=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    product_version: Mapped[int] = mapped_column(Integer)
    certificate_number: Mapped[str] = mapped_column(String(32))
    buyer_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    seller_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    delivery_mode: Mapped[str] = mapped_column(String(30))
    scope: Mapped[str | None] = mapped_column(String(100))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default=EntitlementStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)
    calls_included: Mapped[int | None] = mapped_column(BigInteger)
    calls_used: Mapped[int] = mapped_column(BigInteger, default=0)
    # When the sweep last re-evaluated it: the sweep takes the least recently checked first.
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Release(TimestampMixin, Base):
    """A vendor's data for a product: files while a draft, frozen and signed once published."""

    __tablename__ = "releases"
    __table_args__ = (
        CheckConstraint(check_in("status", ReleaseStatus), name="status"),
        CheckConstraint("status = 'draft' OR manifest_sha256 IS NOT NULL", name="published_has_manifest"),
        Index("ix_releases_product", "product_id", "status", "published_at"),
    )

    id: Mapped[str] = IdColumn("rel")
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    label: Mapped[str] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ReleaseStatus.DRAFT)
    created_by: Mapped[str] = mapped_column(String(40))
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    receipt_key_id: Mapped[str | None] = mapped_column(String(64))
    receipt_signature: Mapped[str | None] = mapped_column(String(128))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ReleaseFile(TimestampMixin, Base):
    """One named file of a release; the bytes are the storage object named by `sha256`."""

    __tablename__ = "release_files"
    __table_args__ = (
        UniqueConstraint("release_id", "name"),
        CheckConstraint("bytes >= 0", name="bytes"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id"))
    name: Mapped[str] = mapped_column(String(200))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    uploaded_by: Mapped[str] = mapped_column(String(40))


class Access(Base):
    """The access log: every link issued, download served and refusal, append-only (triggers).

    Refusals are written in their own transaction, so the refused request's rollback keeps them."""

    __tablename__ = "accesses"
    __table_args__ = (
        CheckConstraint(check_in("kind", AccessKind), name="kind"),
        CheckConstraint(check_in("status", AccessStatus), name="status"),
        Index("ix_accesses_entitlement", "entitlement_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entitlement_id: Mapped[str] = mapped_column(ForeignKey("entitlements.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str | None] = mapped_column(String(40))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    release_id: Mapped[str | None] = mapped_column(String(40))
    object: Mapped[str | None] = mapped_column(String(300))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    refused_reason: Mapped[str | None] = mapped_column(Text)
    # What else a reader of the log needs (a byte range, the link an access came through).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ApiUpstream(TimestampMixin, Base):
    """The vendor's API behind the gateway for one `api` product: its base URL and, encrypted at rest,
    the header the exchange adds to every forwarded call (never shown again)."""

    __tablename__ = "api_upstreams"
    __table_args__ = (CheckConstraint("timeout_ms BETWEEN 100 AND 25000", name="timeout_ms"),)

    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(2000))
    auth_header_name: Mapped[str | None] = mapped_column(String(100))
    auth_header_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    timeout_ms: Mapped[int] = mapped_column(Integer, default=10000)
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ApiKey(TimestampMixin, Base):
    """A buyer's gateway key for one entitlement: shown once, stored as its sha256, revocable."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_entitlement", "entitlement_id", "revoked_at"),)

    id: Mapped[str] = IdColumn("key")
    entitlement_id: Mapped[str] = mapped_column(ForeignKey("entitlements.id"))
    label: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UsagePeriod(Base):
    """Counted calls of one entitlement in one usage period; the sweep closes a period once it has
    ended, with its `usage` ledger entry (per_call) — `entry_id` then set, never changed again."""

    __tablename__ = "usage_periods"
    __table_args__ = (CheckConstraint("calls >= 0", name="calls"),)

    entitlement_id: Mapped[str] = mapped_column(ForeignKey("entitlements.id"), primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    fee: Mapped[int | None] = mapped_column(BigInteger)
    entry_id: Mapped[str | None] = mapped_column(String(40))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
