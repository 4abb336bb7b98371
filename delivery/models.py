"""Delivery tables: entitlements, releases with their files, and the access log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
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
    # A subscription's entitlement: its window follows the periods paid (trading.subscriptions).
    subscription: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
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


class SandboxPolicy(TimestampMixin, Base):
    """The vendor's rules for computing on a privacy-computing product (API.md, Privacy computing):
    k, blocked columns, allowed aggregates, the group cap and, where people are in the data, the
    differential-privacy budget (micro-epsilon, an integer, so debits are exact) with the bounds of
    summed columns and the rows one person may contribute."""

    __tablename__ = "sandbox_policies"
    __table_args__ = (
        CheckConstraint("min_group_size BETWEEN 5 AND 10000", name="min_group_size"),
        CheckConstraint("max_groups BETWEEN 1 AND 10000", name="max_groups"),
        CheckConstraint("rows_per_person >= 1", name="rows_per_person"),
        CheckConstraint("epsilon_budget_micro IS NULL OR epsilon_budget_micro > 0", name="epsilon_budget"),
    )

    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True)
    min_group_size: Mapped[int] = mapped_column(Integer, default=10)
    blocked_columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_aggregates: Mapped[list[str]] = mapped_column(JSON)
    max_groups: Mapped[int] = mapped_column(Integer, default=1000)
    epsilon_budget_micro: Mapped[int | None] = mapped_column(BigInteger)
    bounds: Mapped[dict[str, list[float]]] = mapped_column(JSON, default=dict)
    rows_per_person: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PrivacyBudget(Base):
    """Epsilon spent by one buyer organization on one product, across all its trades and periods:
    debited by a conditional UPDATE before a query runs, never given back."""

    __tablename__ = "privacy_budgets"
    __table_args__ = (CheckConstraint("spent_micro >= 0", name="spent_micro"),)

    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True)
    buyer_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    spent_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    queries: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxQuery(Base):
    """One buyer query and its outcome — succeeded, refused or failed — with the signed receipt of a
    succeeded one. Written once, when the outcome is known."""

    __tablename__ = "sandbox_queries"
    __table_args__ = (
        CheckConstraint("status IN ('succeeded', 'refused', 'failed')", name="status"),
        Index("ix_sandbox_queries_entitlement", "entitlement_id", "at"),
    )

    id: Mapped[str] = IdColumn("qry")
    entitlement_id: Mapped[str] = mapped_column(ForeignKey("entitlements.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    buyer_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(String(40))
    release_id: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sql: Mapped[str] = mapped_column(Text)
    executed_sql: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    refused_reason: Mapped[str | None] = mapped_column(Text)
    columns: Mapped[list[str] | None] = mapped_column(JSON)
    rows: Mapped[list[list[Any]] | None] = mapped_column(JSON)
    suppressed_groups: Mapped[int | None] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    epsilon_micro: Mapped[int | None] = mapped_column(BigInteger)
    elapsed_ms: Mapped[int | None] = mapped_column(Integer)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    receipt_key_id: Mapped[str | None] = mapped_column(String(64))
    receipt_signature: Mapped[str | None] = mapped_column(String(128))
