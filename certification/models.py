"""Certification tables: certifications, stages, history, objections, certificates, white list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from certification.states import (
    CertificateStatus,
    CertificationStatus,
    ObjectionStatus,
    StageStatus,
)
from exchange.db import Base, IdColumn, TimestampMixin, UTCDateTime, check_in, utcnow


class Certification(TimestampMixin, Base):
    __tablename__ = "certifications"
    __table_args__ = (
        CheckConstraint(check_in("status", CertificationStatus), name="status"),
        CheckConstraint("status <> 'public_notice' OR notice_ends_at IS NOT NULL", name="notice_end"),
        CheckConstraint("status <> 'approved' OR certificate_number IS NOT NULL", name="approved_cert"),
        Index("ix_certifications_product_status", "product_id", "status"),
    )

    id: Mapped[str] = IdColumn("cer")
    product_id: Mapped[str] = mapped_column(String(40), ForeignKey("products.id"))
    product_version: Mapped[int] = mapped_column(Integer)
    owner_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=CertificationStatus.SUBMITTED, index=True)
    documents: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    round: Mapped[int] = mapped_column(Integer, default=1)
    notice_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    certificate_number: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    stages: Mapped[list[CertificationStage]] = relationship(
        back_populates="certification", order_by="CertificationStage.position", lazy="selectin")


class CertificationStage(Base):
    __tablename__ = "certification_stages"
    __table_args__ = (
        UniqueConstraint("certification_id", "name", name="uq_certification_stage"),
        CheckConstraint(check_in("status", StageStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certification_id: Mapped[str] = mapped_column(ForeignKey("certifications.id"), index=True)
    name: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=StageStatus.PENDING)
    assessor_org_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    # User ids that approved this stage in the current round (four-eyes needs two distinct ones).
    approvals: Mapped[list[str]] = mapped_column(JSON, default=list)
    # sha256 of the fields this stage examined, taken when it was approved (see STAGE_SUBJECTS).
    subject_digest: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    certification: Mapped[Certification] = relationship(back_populates="stages")


class CertificationEvent(Base):
    """The full history of a certification: every submission, assignment, review and decision."""

    __tablename__ = "certification_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certification_id: Mapped[str] = mapped_column(ForeignKey("certifications.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_user_id: Mapped[str | None] = mapped_column(String(40))
    actor_org_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str | None] = mapped_column(String(20))
    decision: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    checklist: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    product_version: Mapped[int | None] = mapped_column(Integer)


class Objection(TimestampMixin, Base):
    __tablename__ = "objections"
    __table_args__ = (CheckConstraint(check_in("status", ObjectionStatus), name="status"),)

    id: Mapped[str] = IdColumn("obj")
    certification_id: Mapped[str] = mapped_column(ForeignKey("certifications.id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ObjectionStatus.OPEN)
    resolution_comment: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(40))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Certificate(Base):
    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint(check_in("status", CertificateStatus), name="status"),
        Index("ix_certificates_product_status", "product_id", "status"),
    )

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    certification_id: Mapped[str] = mapped_column(ForeignKey("certifications.id"), unique=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    product_version: Mapped[int] = mapped_column(Integer)
    vendor_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(20), default=CertificateStatus.VALID)
    digest: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    status_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WhitelistEntry(TimestampMixin, Base):
    __tablename__ = "whitelist_entries"
    __table_args__ = (
        CheckConstraint("max_classification IN ('general', 'important')", name="max_classification"),
    )

    id: Mapped[str] = IdColumn("wl")
    category: Mapped[str] = mapped_column(String(40), index=True)
    from_region: Mapped[str] = mapped_column(String(8))
    to_region: Mapped[str] = mapped_column(String(8))
    max_classification: Mapped[str] = mapped_column(String(20))
    personal_info_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    recipient_org_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(40))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_by: Mapped[str | None] = mapped_column(String(40))


class Registration(Base):
    """A rights registration (数据资产登记, API.md Compliance): append-only, signed, numbered per UTC
    year with no gaps. `initial`/`change` register the vendor's holding, processing and operation
    rights to a certified version; `licence` the buyer's processing right under a contract;
    `cancellation` ends the registration named by `cancels`."""

    __tablename__ = "registrations"
    __table_args__ = (
        CheckConstraint("type IN ('initial', 'licence', 'change', 'cancellation')", name="type"),
        CheckConstraint("seq >= 1", name="seq"),
        UniqueConstraint("year", "seq", name="uq_registrations_year_seq"),
        Index("ix_registrations_product", "product_id", "registered_at"),
        Index("ix_registrations_contract", "contract_id"),
        Index("ix_registrations_cancels", "cancels"),
    )

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(20))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    product_version: Mapped[int] = mapped_column(Integer)
    holder_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    rights: Mapped[list[str]] = mapped_column(JSON)
    scope: Mapped[str | None] = mapped_column(String(40))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The contract of a licence (and of its cancellation): an id, not a foreign key, since contracts
    # belong to trading, a layer above certification.
    contract_id: Mapped[str | None] = mapped_column(String(40))
    cancels: Mapped[str | None] = mapped_column(String(20))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    digest: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
