"""Trading tables: procurements, offers, contracts, signatures and trades."""

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
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db import Base, IdColumn, TimestampMixin, UTCDateTime, check_in, utcnow
from exchange.payments import PROVIDER_NAMES
from trading.states import (
    ContractStatus,
    DisputeStatus,
    DossierStatus,
    OfferStatus,
    PaymentStatus,
    PayoutStatus,
    ProcurementStatus,
    SignatureMethod,
    SubscriptionStatus,
    TradeStatus,
)


class Procurement(TimestampMixin, Base):
    """An enterprise's demand on the procurement board."""

    __tablename__ = "procurements"
    __table_args__ = (
        CheckConstraint(check_in("status", ProcurementStatus), name="status"),
        CheckConstraint("visibility IN ('public', 'invited')", name="visibility"),
        CheckConstraint("budget_max_amount > 0", name="budget"),
        Index("ix_procurements_board", "status", "visibility", "deadline"),
        Index("ix_procurements_buyer", "buyer_org_id", "created_at"),
    )

    id: Mapped[str] = IdColumn("prc")
    buyer_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(30), index=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    budget_max_amount: Mapped[int] = mapped_column(BigInteger)
    budget_currency: Mapped[str] = mapped_column(String(3))
    delivery_mode: Mapped[str | None] = mapped_column(String(30))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    visibility: Mapped[str] = mapped_column(String(10))
    invited_org_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default=ProcurementStatus.OPEN)
    status_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ProcurementInvitation(Base):
    """An organization invited to an `invited` procurement (the index behind `?invited=true`)."""

    __tablename__ = "procurement_invitations"

    procurement_id: Mapped[str] = mapped_column(ForeignKey("procurements.id"), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True, index=True)


class Offer(TimestampMixin, Base):
    """A bid (buyer -> vendor) or a quote (vendor -> buyer); counters chain into one thread."""

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint(check_in("status", OfferStatus), name="status"),
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("from_org_id <> to_org_id", name="parties"),
        CheckConstraint("buyer_org_id <> seller_org_id", name="buyer_seller"),
        Index("ix_offers_thread", "thread_id", "created_at"),
        Index("ix_offers_to", "to_org_id", "status"),
        Index("ix_offers_from", "from_org_id", "status"),
    )

    id: Mapped[str] = IdColumn("ofr")
    thread_id: Mapped[str] = mapped_column(String(40))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("offers.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    product_version: Mapped[int] = mapped_column(Integer)
    procurement_id: Mapped[str | None] = mapped_column(ForeignKey("procurements.id"), index=True)
    from_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    to_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    buyer_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    seller_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default=OfferStatus.PENDING)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(40))


class Contract(TimestampMixin, Base):
    """The frozen terms of an accepted offer, awaiting (then carrying) both parties' signatures."""

    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint(check_in("status", ContractStatus), name="status"),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_contracts_buyer", "buyer_org_id", "created_at"),
        Index("ix_contracts_seller", "seller_org_id", "created_at"),
        # The regulator's trade report: contracts signed in a window, in signing order.
        Index("ix_contracts_signed_at", "signed_at", "number"),
        # The matcher's vendor track record: signed contracts per seller, counted from the index.
        Index("ix_contracts_seller_status", "seller_org_id", "status"),
    )

    id: Mapped[str] = IdColumn("ctr")
    number: Mapped[str] = mapped_column(String(32), unique=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), unique=True)
    procurement_id: Mapped[str | None] = mapped_column(ForeignKey("procurements.id"))
    buyer_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    seller_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    product_version: Mapped[int] = mapped_column(Integer)
    certificate_number: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(30))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=ContractStatus.PENDING_SIGNATURES, index=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    on_site: Mapped[bool] = mapped_column(Boolean, default=False)
    fair_id: Mapped[str | None] = mapped_column(ForeignKey("fairs.id"))


class Signature(Base):
    """One party's signature of a contract, with the evidence of how and where it was made."""

    __tablename__ = "contract_signatures"
    __table_args__ = (
        UniqueConstraint("contract_id", "org_id", name="uq_signature_contract_org"),
        CheckConstraint(check_in("method", SignatureMethod), name="method"),
        CheckConstraint("NOT on_site OR (fair_id IS NOT NULL AND stall_code IS NOT NULL)", name="on_site"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    on_site: Mapped[bool] = mapped_column(Boolean, default=False)
    fair_id: Mapped[str | None] = mapped_column(ForeignKey("fairs.id"))
    stall_code: Mapped[str | None] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(10))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class Trade(TimestampMixin, Base):
    """The deal made by a signed contract; the ledger issue moves its money."""

    __tablename__ = "trades"
    __table_args__ = (
        CheckConstraint(check_in("status", TradeStatus), name="status"),
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("fee >= 0 AND fee <= amount", name="fee"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refunded"),
        Index("ix_trades_buyer", "buyer_org_id", "created_at"),
        Index("ix_trades_seller", "seller_org_id", "created_at"),
        Index("ix_trades_status", "status", "updated_at"),
        # One trade per contract, one per period for a subscription (period 1 for any other trade).
        UniqueConstraint("contract_id", "period_index", name="uq_trades_contract_period"),
        CheckConstraint("period_index >= 1", name="period_index"),
        CheckConstraint("(period_start IS NULL) = (period_end IS NULL)", name="period_bounds"),
        # The sweep's unpaid periods: awaiting payment, by the period's start.
        Index("ix_trades_unpaid_period", "status", "period_start"),
    )

    id: Mapped[str] = IdColumn("trd")
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), index=True)
    buyer_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    seller_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    category: Mapped[str] = mapped_column(String(30))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    fee_bps: Mapped[int] = mapped_column(Integer)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), default=TradeStatus.AWAITING_PAYMENT)
    on_site: Mapped[bool] = mapped_column(Boolean, default=False)
    fair_id: Mapped[str | None] = mapped_column(ForeignKey("fairs.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # The money flow (each step is one transaction with its ledger entry).
    paid_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    escrowed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivery_reference: Mapped[str | None] = mapped_column(String(500))
    delivery_sha256: Mapped[str | None] = mapped_column(String(64))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # release | declared | api_call | query (API.md, Delivery and use).
    delivery_evidence: Mapped[str | None] = mapped_column(String(20))
    # What usage drawdowns released from escrow so far (per_call trades), gross; settlements add to
    # `settled_amount` on read.
    drawn_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The acceptance period runs from here: set at delivery, moved when a suspended entitlement resumes.
    acceptance_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settlement: Mapped[str | None] = mapped_column(String(20))
    # A subscription's period (API.md, Subscriptions): [period_start, period_end); null otherwise.
    period_index: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    # Read only (GET /trades shows them, oldest first): payments are written by trading.payments alone.
    payments: Mapped[list[Payment]] = relationship(
        viewonly=True, order_by=lambda: (Payment.created_at, Payment.id))


class Subscription(Base):
    """The renewal state of a subscription contract: one row per contract, locked by every change of
    its status (renewal, lapse, cancellation, end), before any of its trades."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(check_in("status", SubscriptionStatus), name="status"),
        CheckConstraint("unit IN ('month', 'year')", name="unit"),
        CheckConstraint("periods BETWEEN 1 AND 36", name="periods"),
        CheckConstraint("latest_period >= 1", name="latest_period"),
        # The renewal sweep's and the end sweep's due rows.
        Index("ix_subscriptions_renewal", "status", "renews_at"),
        Index("ix_subscriptions_end", "status", "ends_at"),
    )

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default=SubscriptionStatus.ACTIVE)
    unit: Mapped[str] = mapped_column(String(10))
    # Period 1's start: the contract's second signature; every period is computed from it.
    anchor: Mapped[datetime] = mapped_column(UTCDateTime())
    periods: Mapped[int] = mapped_column(Integer)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last period that has a trade, the end of that period, and when the next one's trade is due
    # to be created (null: no renewal ahead).
    latest_period: Mapped[int] = mapped_column(Integer, default=1)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    renews_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Payment(TimestampMixin, Base):
    """A buyer's payment of a trade through a provider (manual bank transfer or Stripe)."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(check_in("status", PaymentStatus), name="status"),
        CheckConstraint(check_in("provider", PROVIDER_NAMES), name="provider"),
        CheckConstraint("amount > 0", name="amount"),
        UniqueConstraint("provider", "provider_ref", name="uq_payments_provider_ref"),
        Index("ix_payments_trade", "trade_id", "status"),
        # At most one payment in flight per trade, whatever races: a second pending row cannot exist.
        Index("uq_payments_one_pending", "trade_id", unique=True,
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
        CheckConstraint("refund_reason IS NULL OR refund_reason IN ('duplicate')", name="refund_reason"),
    )

    id: Mapped[str] = IdColumn("pay")
    trade_id: Mapped[str] = mapped_column(ForeignKey("trades.id"))
    provider: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=PaymentStatus.PENDING)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    client_secret: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(40))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_by: Mapped[str | None] = mapped_column(String(40))
    # Why a payment's money went back to the buyer outside any dispute (`duplicate`: it succeeded
    # when the trade no longer awaited it), and when the provider's refund was made.
    refund_reason: Mapped[str | None] = mapped_column(String(20))
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Dispute(TimestampMixin, Base):
    """A buyer's dispute of a trade, resolved by an operator with a refund of part or all."""

    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint(check_in("status", DisputeStatus), name="status"),
        CheckConstraint("refund_amount IS NULL OR refund_amount >= 0", name="refund"),
    )

    id: Mapped[str] = IdColumn("dsp")
    trade_id: Mapped[str] = mapped_column(ForeignKey("trades.id"), index=True)
    opened_by: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=DisputeStatus.OPEN)
    refund_amount: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(40))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    comment: Mapped[str | None] = mapped_column(Text)


class Payout(TimestampMixin, Base):
    """Money paid to a seller out of its payable balance."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint(check_in("status", PayoutStatus), name="status"),
    )

    id: Mapped[str] = IdColumn("pyo")
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(40))
    entry_id: Mapped[str | None] = mapped_column(String(40))


class Dossier(TimestampMixin, Base):
    """The cross-border filing dossier of a contract whose data leaves the mainland (API.md
    Compliance): the legal path decided at the second signature, with the facts and the rule-table
    version it was decided on, and the filing with its deadline."""

    __tablename__ = "dossiers"
    __table_args__ = (
        CheckConstraint(check_in("status", DossierStatus), name="status"),
        CheckConstraint("subjects >= 0 AND cumulative_subjects >= subjects", name="subjects"),
        CheckConstraint("cumulative_sensitive_subjects >= 0", name="sensitive_subjects"),
        # The overdue sweep's rows: awaiting filing, by due date.
        Index("ix_dossiers_due", "status", "due_at"),
    )

    id: Mapped[str] = IdColumn("dos")
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), unique=True)
    exporter_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    importer_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    path: Mapped[str] = mapped_column(String(30))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    rule_ids: Mapped[list[str]] = mapped_column(JSON)
    rule_version: Mapped[str] = mapped_column(String(60))
    # The facts the path was decided on (what `decide` was given), kept to explain it later.
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    subjects: Mapped[int] = mapped_column(BigInteger)
    cumulative_subjects: Mapped[int] = mapped_column(BigInteger)
    cumulative_sensitive_subjects: Mapped[int] = mapped_column(BigInteger)
    filing_required: Mapped[bool] = mapped_column(Boolean)
    approval_required: Mapped[bool] = mapped_column(Boolean)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provisional_due_date: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str | None] = mapped_column(String(100))
    filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    filed_by: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(40))
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CrossBorderVolume(Base):
    """An exporter's personal-information individuals sent abroad in one year of China Standard
    Time (API.md Compliance): bumped in the transaction of each signature, under this row's lock,
    so concurrent signatures count exactly."""

    __tablename__ = "crossborder_volumes"
    __table_args__ = (
        CheckConstraint("subjects >= 0 AND sensitive_subjects >= 0", name="subjects"),
    )

    exporter_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    subjects: Mapped[int] = mapped_column(BigInteger, default=0)
    sensitive_subjects: Mapped[int] = mapped_column(BigInteger, default=0)
    contracts: Mapped[int] = mapped_column(Integer, default=0)
