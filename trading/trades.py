"""Trades: reads for the two parties and operators (the ledger issue adds the money flow)."""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from exchange.principal import Principal
from trading.models import Trade
from trading.rules import for_parties


def visible(session: Session, trade_id: str, principal: Principal, *, lock: bool = False) -> Trade:
    """A trade for its two parties and operators (404 for anyone else)."""
    return for_parties(session, Trade, trade_id, principal, parties=("buyer_org_id", "seller_org_id"),
                       what="trade", lock=lock)


def list_query(*, principal: Principal, status: str | None) -> Select:
    stmt = select(Trade)
    if not principal.is_operator:
        stmt = stmt.where(or_(Trade.buyer_org_id == principal.org_id, Trade.seller_org_id == principal.org_id))
    if status:
        stmt = stmt.where(Trade.status == status)
    return stmt.order_by(Trade.created_at.desc(), Trade.id)

