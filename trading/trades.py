"""Trades: reads for the two parties and operators (the ledger issue adds the money flow)."""

from __future__ import annotations

from typing import Any

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


def view(trade: Trade) -> dict[str, Any]:
    return {
        "id": trade.id, "contract_id": trade.contract_id, "buyer_org_id": trade.buyer_org_id,
        "seller_org_id": trade.seller_org_id, "product_id": trade.product_id, "amount": trade.amount,
        "fee": trade.fee, "refunded_amount": trade.refunded_amount, "currency": trade.currency,
        "status": trade.status, "on_site": trade.on_site, "fair_id": trade.fair_id,
        "created_at": trade.created_at, "updated_at": trade.updated_at, "paid_amount": trade.paid_amount,
        "delivery_reference": trade.delivery_reference, "delivery_sha256": trade.delivery_sha256,
        "delivered_at": trade.delivered_at, "settled_at": trade.settled_at, "settlement": trade.settlement,
    }
