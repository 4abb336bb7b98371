"""Ledger tables: accounts (balance cache), journal entries (hash chain) and their postings.

Entries and postings are append-only: database triggers (migration 0004_ledger) refuse UPDATE and
DELETE on both engines; accounts may only change `balance`, `version` and `updated_at`.
Only `exchange.ledger.engine` (post_entry, post_entries, reverse_entry: one code path) writes these tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db import Base, IdColumn, UTCDateTime, check_in, utcnow
from exchange.money import CURRENCIES, MAX_AMOUNT


class EntryKind(StrEnum):
    PAYMENT = "payment"        # escrow funded
    SETTLEMENT = "settlement"  # escrow released to the seller's payable and the exchange's fees
    REFUND = "refund"          # escrow back to the buyer
    PAYOUT = "payout"          # seller payable paid out
    REVERSAL = "reversal"      # the mirror of an earlier entry (history is never edited)
    USAGE = "usage"            # a metered drawdown of a per_call escrow: escrow -> seller payable + fee


ENTRY_KINDS = tuple(k.value for k in EntryKind)


@dataclass(frozen=True, slots=True)
class Purpose:
    """What an account is for: who owns it and whether its balance may go below zero.

    Sign convention (API.md): a posting's amount is positive for a debit (value flows INTO the
    account) and negative for a credit (value flows OUT of it); an account's balance is the sum of
    its postings. Accounts that hold money for someone (escrow, payable, fees) are `non_negative`;
    accounts that stand for the outside world (funding, clearing) go negative as money enters.
    """

    name: str
    owner: str  # what owner_id names: "organization", "trade", "exchange" or "provider"
    non_negative: bool
    description: str


# The ledger's own purposes: what any market on the exchange needs. A layer registers the purposes
# of its own accounts from its init_app (`engine.register_purposes`; trading: buyer_funding,
# trade_escrow, seller_payable).
LEDGER_PURPOSES: tuple[Purpose, ...] = (
    Purpose("exchange_fees", "exchange", True,
            "fees earned by the exchange (owner: \"exchange\")"),
    Purpose("provider_clearing", "provider", False,
            "money in transit at a payment provider (owner: provider name, e.g. \"manual\", \"stripe\")"),
    Purpose("payouts_clearing", "provider", False,
            "money paid out to sellers through a provider (owner: provider name)"),
)
EXCHANGE_OWNER = "exchange"
GENESIS_HASH = "0" * 64


class Account(Base):
    """One balance per (owner, purpose, currency); `balance` is a cache of the sum of its postings."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("owner_id", "purpose", "currency", name="uq_ledger_accounts_owner_purpose_currency"),
        # ck_ledger_accounts_purpose (migration 0004) lists the purposes every layer registers. A CHECK
        # is fixed by migrations while purposes are registered per app, so it is not declared here:
        # tests/integration/test_registries.py fails when the database's CHECK and the registry differ
        # (a layer that adds a purpose adds it to that CHECK in a migration).
        CheckConstraint(check_in("currency", CURRENCIES), name="currency"),
        CheckConstraint("NOT non_negative OR balance >= 0", name="non_negative"),
        CheckConstraint(f"balance BETWEEN {-MAX_AMOUNT} AND {MAX_AMOUNT}", name="balance_range"),
    )

    id: Mapped[str] = IdColumn("acc")
    owner_id: Mapped[str] = mapped_column(String(80), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    non_negative: Mapped[bool] = mapped_column(Boolean)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def name(self) -> str:
        return account_name(self.purpose, self.owner_id, self.currency)


def account_name(purpose: str, owner_id: str, currency: str) -> str:
    """The readable account name shown in postings: `trade_escrow:trd_123:CNY`."""
    return f"{purpose}:{owner_id}:{currency}"


class JournalEntry(Base):
    """One balanced, hash-chained journal entry (see `exchange.ledger.engine` for what is hashed)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(check_in("kind", ENTRY_KINDS), name="kind"),
        CheckConstraint("seq >= 1", name="seq_positive"),
    )

    id: Mapped[str] = IdColumn("jnl")
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    # The entry's subject: the id of the higher layer's object it is about (trading posts a trade's
    # id), or none. The ledger gives it no meaning beyond an indexed id; the name `trade_id` is the
    # column's, the API's and the hashed body's, kept without a migration (docs/decisions.md).
    trade_id: Mapped[str | None] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    # Unique: two entries can never claim the same predecessor, so the chain cannot fork.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # At most one reversal per entry, even under racing requests.
    reverses_entry_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)

    postings: Mapped[list[JournalPosting]] = relationship(
        order_by="JournalPosting.position", lazy="selectin", back_populates="entry")


class JournalPosting(Base):
    """A signed amount on one account within an entry (debit positive, credit negative)."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        CheckConstraint(f"amount BETWEEN {-MAX_AMOUNT} AND {MAX_AMOUNT}", name="amount_range"),
        CheckConstraint(check_in("currency", CURRENCIES), name="currency"),
    )

    entry_id: Mapped[str] = mapped_column(ForeignKey("ledger_entries.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)

    entry: Mapped[JournalEntry] = relationship(back_populates="postings", lazy="raise")
    account: Mapped[Account] = relationship(lazy="joined", innerjoin=True)


def _refuse(mapper: Any, connection: Any, target: Any) -> None:
    raise RuntimeError(f"{type(target).__name__} rows are append-only; post a reversing entry instead")


# The triggers refuse these at the database; failing in the ORM first gives a clearer traceback.
for _cls in (JournalEntry, JournalPosting):
    event.listen(_cls, "before_update", _refuse)
    event.listen(_cls, "before_delete", _refuse)
