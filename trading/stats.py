"""Market statistics (public): what is listed, who sells, what was signed, and for how much."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listings.models import Product
from listings.states import ProductStatus
from trading.models import Contract
from trading.states import ContractStatus


def market(session: Session) -> dict[str, Any]:
    """`GET /stats`: four grouped queries, whatever the size of the market."""
    listed = Product.status == ProductStatus.LISTED
    products_listed, vendors = session.execute(
        select(func.count(), func.count(func.distinct(Product.owner_org_id))).where(listed)
    ).one()
    signed = Contract.status == ContractStatus.SIGNED
    contracts_signed = session.execute(select(func.count()).where(signed)).scalar_one()
    volume = [
        {"currency": c, "amount": int(a)}
        for c, a in session.execute(
            select(Contract.currency, func.sum(Contract.amount)).where(signed)
            .group_by(Contract.currency).order_by(Contract.currency)
        ).all()
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
