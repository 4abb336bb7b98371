"""The exchange's own signing keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Index,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime, utcnow


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
