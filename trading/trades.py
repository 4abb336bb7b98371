"""Trades: reads for the two parties and operators (the ledger issue adds the money flow)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session, selectinload

from exchange.money import fee_for
from exchange.principal import Principal
from trading import rules
from trading.models import Contract, Trade
from trading.periods import Period
from trading.rules import for_parties
from trading.states import TradeStatus


def visible(session: Session, trade_id: str, principal: Principal, *, lock: bool = False) -> Trade:
    """A trade for its two parties and operators (404 for anyone else)."""
    return for_parties(session, Trade, trade_id, principal, parties=("buyer_org_id", "seller_org_id"),
                       what="trade", lock=lock)


def of_party(principal: Principal) -> ColumnElement[bool]:
    """The trades `principal`'s organization is a party to (buyer or seller)."""
    return or_(Trade.buyer_org_id == principal.org_id, Trade.seller_org_id == principal.org_id)


def list_query(*, principal: Principal, status: str | None, contract_id: str | None = None) -> Select:
    """Trades the caller may read, newest first; a contract's (its periods) in period order. Their
    payments come in one more query for the whole page."""
    stmt = select(Trade).options(selectinload(Trade.payments))
    if not principal.is_operator:
        stmt = stmt.where(of_party(principal))
    if status:
        stmt = stmt.where(Trade.status == status)
    if contract_id:
        return stmt.where(Trade.contract_id == contract_id).order_by(Trade.period_index, Trade.id)
    return stmt.order_by(Trade.created_at.desc(), Trade.id)


def new_trade(session: Session, contract: Contract, *, fee_bps: int, period: Period | None = None) -> Trade:
    """The trade of a signed contract (or of one period of a subscription), `awaiting_payment` at the
    contract's price: its amount is the contract's for the whole life of a subscription."""
    # A per_call trade's fee is what its drawdowns took so far (each adds its share); any other
    # trade shows the fee its settlement will take.
    fee = 0 if rules.contract_is_per_call(session, contract.id) else fee_for(contract.amount, fee_bps)
    trade = Trade(
        contract_id=contract.id, buyer_org_id=contract.buyer_org_id, seller_org_id=contract.seller_org_id,
        product_id=contract.product_id, category=contract.category, amount=contract.amount,
        fee=fee, fee_bps=fee_bps, refunded_amount=0, currency=contract.currency,
        status=TradeStatus.AWAITING_PAYMENT, on_site=contract.on_site, fair_id=contract.fair_id,
        period_index=period.index if period else 1,
        period_start=period.start if period else None, period_end=period.end if period else None,
    )
    session.add(trade)
    session.flush()
    return trade

