"""The lists operators act on (API.md, Trades, payments and the ledger): payments (the manual
transfers to confirm), disputes (to resolve) and payouts. Operators see every row; anyone else only
the rows of its own organization: the payments and disputes of trades it is a party to, its own
payouts. Each is a select for `exchange.api.paginate`; nothing here writes.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from exchange.principal import Principal
from trading import trades
from trading.models import Dispute, Payment, Payout, Trade


def payments(session: Session, *, principal: Principal, trade_id: str | None = None,
             status: str | None = None) -> Select:
    """Payments the caller may read, oldest first (the operators' queue: `status=pending`).

    Raises NotFound for a `trade_id` the caller cannot see, exactly as for an unknown trade."""
    stmt = select(Payment)
    if trade_id is not None:
        stmt = stmt.where(Payment.trade_id == trades.visible(session, trade_id, principal).id)
    elif not principal.is_operator:
        stmt = stmt.join(Trade, Trade.id == Payment.trade_id).where(trades.of_party(principal))
    if status:
        stmt = stmt.where(Payment.status == status)
    return stmt.order_by(Payment.created_at, Payment.id)


def disputes(*, principal: Principal, status: str | None = None) -> Select:
    """Disputes the caller may read, oldest first: operators all (their queue with `status=open`),
    the parties those of their own trades."""
    stmt = select(Dispute)
    if not principal.is_operator:
        stmt = stmt.join(Trade, Trade.id == Dispute.trade_id).where(trades.of_party(principal))
    if status:
        stmt = stmt.where(Dispute.status == status)
    return stmt.order_by(Dispute.created_at, Dispute.id)


def payouts(*, principal: Principal, org_id: str | None = None, currency: str | None = None) -> Select:
    """Payouts the caller may read, newest first: operators all (`org_id` filters), any other
    organization only its own (another organization's `org_id` finds nothing)."""
    stmt = select(Payout)
    if not principal.is_operator:
        stmt = stmt.where(Payout.org_id == principal.org_id)
    if org_id:
        stmt = stmt.where(Payout.org_id == org_id)
    if currency:
        stmt = stmt.where(Payout.currency == currency)
    return stmt.order_by(Payout.created_at.desc(), Payout.id.desc())
