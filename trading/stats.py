"""Market statistics (public): what is listed, who sells, what was signed, and what was paid for it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.db import exact_sum, exact_total, utcnow
from listings import services as listings
from listings.models import Product
from trading.models import Contract, Trade
from trading.states import ContractStatus


def market(session: Session) -> dict[str, Any]:
    """`GET /stats`: four grouped queries, whatever the size of the market."""
    # What the public catalog shows: a suspended vendor's listed products (and the vendor) are out.
    listed = listings.in_catalog(session)
    products_listed, vendors = session.execute(
        select(func.count(), func.count(func.distinct(Product.owner_org_id))).where(listed)
    ).one()
    signed = Contract.status == ContractStatus.SIGNED
    contracts_signed = session.execute(select(func.count()).where(signed)).scalar_one()
    # Volume: money that reached escrow, less refunds: a signed contract nobody paid moves nothing.
    # Summed exactly (amounts are within 2^53-1, a sum is not; see exchange.db.exact_sum).
    net = Trade.paid_amount - Trade.refunded_amount
    high, low = exact_sum(net)
    volume = [
        {"currency": c, "amount": total}
        for c, total in ((c, exact_total(h, lo)) for c, h, lo in session.execute(
            select(Trade.currency, high, low).where(Trade.escrowed_at.is_not(None))
            .group_by(Trade.currency).order_by(Trade.currency)
        ).all())
        if total > 0
    ]
    products_by = dict(session.execute(
        select(Product.category, func.count()).where(listed).group_by(Product.category)).all())
    contracts_by = dict(session.execute(
        select(Contract.category, func.count()).where(signed).group_by(Contract.category)).all())
    by_category = [
        {"category": c, "products": int(products_by.get(c, 0)), "contracts": int(contracts_by.get(c, 0))}
        for c in sorted(set(products_by) | set(contracts_by))
    ]
    return {"products_listed": int(products_listed), "vendors": int(vendors), "contracts_signed": int(contracts_signed),
            "volume": volume, "by_category": by_category}


def signed_per_day(session: Session, *, days: int = 14) -> list[dict[str, Any]]:
    """Contracts signed on each of the last `days` days (UTC), zero-filled, oldest first (the console's chart)."""
    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    counts: dict[str, int] = {}
    rows = session.execute(
        select(Contract.signed_at).where(Contract.status == ContractStatus.SIGNED,
                                         Contract.signed_at >= datetime.combine(first, time.min, UTC))
    ).scalars()
    for signed_at in rows:
        day = signed_at.date().isoformat()
        counts[day] = counts.get(day, 0) + 1
    days_shown = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    return [{"day": d, "count": counts.get(d, 0)} for d in days_shown]
