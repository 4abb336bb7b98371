"""Read side of the ledger for the HTTP API: what each caller may see, and how entries look."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from exchange.api import LogOrder
from exchange.errors import NotFound, field_error
from exchange.ledger import engine
from exchange.ledger.models import Account, JournalEntry
from exchange.ledger.verify import verify
from exchange.principal import Principal

# The journal's append order: `seq` (one chain, appended under its lock).
ENTRY_ORDER = LogOrder(id=JournalEntry.id, keys=(JournalEntry.seq,))


def list_accounts(*, principal: Principal, currency: str | None = None,
                  purpose: str | None = None, owner_id: str | None = None) -> Select:
    """Accounts the caller may see (its organization's; operators all), filtered (a select)."""
    stmt = select(Account).order_by(Account.owner_id, Account.purpose, Account.currency)
    if not principal.is_operator:
        stmt = stmt.where(Account.owner_id == principal.org_id)
    if owner_id:
        stmt = stmt.where(Account.owner_id == owner_id)
    if currency:
        stmt = stmt.where(Account.currency == currency)
    if purpose:
        stmt = stmt.where(Account.purpose == purpose)
    return stmt


def list_entries(session: Session, *, principal: Principal, trade_id: str | None = None,
                 kind: str | None = None) -> Select:
    """Journal entries in `seq` order: operators all; others only a trade they may see (a select).

    Raises ValidationFailed (a non-operator without trade_id) and NotFound (a trade the caller
    may not see, or any trade while no access checker is registered).
    """
    if not principal.is_operator:
        if not trade_id:
            raise field_error("trade_id", "required: name the trade whose entries you want")
        if not engine.may_read_trade_entries(session, principal, trade_id):
            raise NotFound("No such trade, or it is not visible to you.")
    stmt = select(JournalEntry).order_by(JournalEntry.seq)
    if trade_id:
        stmt = stmt.where(JournalEntry.trade_id == trade_id)
    if kind:
        stmt = stmt.where(JournalEntry.kind == kind)
    return stmt


def verify_as(session: Session, *, principal: Principal) -> dict[str, Any]:
    """`verify` for the HTTP API. Raises Forbidden for anyone but operators."""
    principal.require_operator()
    return verify(session)
