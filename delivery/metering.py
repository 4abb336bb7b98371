"""Usage settled as it is used, never per call: the sweep closes each ended usage period with one
`usage` ledger entry per per_call entitlement that had calls in it (trading posts it: escrow -> the
seller's payable and the fee, by the cumulative fee rule), none while the trade is disputed; when a
per_call entitlement ends (expired, revoked, calls used up) its open periods are drawn and the unused
calls refunded (`trading.settlement.end_per_call`).

Locks: the trade first, then the entitlement and the period (the order of every trading path).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery import entitlements, evidence, gateway
from delivery.models import Entitlement, UsagePeriod
from delivery.states import EntitlementStatus
from exchange.fields import iso_z
from listings import services as listings
from trading import settlement
from trading.models import Trade

OPEN_TRADES = ("escrowed", "delivered", "disputed")


def unit_price(session: Session, ent: Entitlement) -> int:
    version = listings.get_version(session, product_id=ent.product_id, version=ent.product_version)
    return int(version.price["amount"])


def _close(session: Session, ent: Entitlement, period: UsagePeriod, now: datetime) -> bool:
    """Close one period (its rows locked by the caller); False when it must wait (a dispute)."""
    if period.closed_at is not None:
        return False
    if ent.calls_included is None or period.calls == 0:
        # Not metered for money (a fixed-price api product), or nothing counted: closed, no entry.
        period.amount, period.fee, period.closed_at = (0 if ent.calls_included is not None else None), None, now
        return True
    trade = session.get(Trade, ent.trade_id)
    amount = period.calls * unit_price(session, ent)
    fees_before = trade.fee
    entry_id = settlement.draw_usage(session, trade_id=trade.id, amount=amount,
                                     period=f"{iso_z(period.start)}/{iso_z(period.end)}")
    if entry_id is None:
        return False  # disputed: no drawdown now; the next sweep after the resolution takes it
    period.amount, period.fee, period.entry_id, period.closed_at = amount, trade.fee - fees_before, entry_id, now
    session.flush()
    gateway.PERIODS_CLOSED.inc()
    return True


def periods_due(session: Session, now: datetime, limit: int) -> list[tuple[str, datetime]]:
    """Ended usage periods not yet closed, the oldest first."""
    return [tuple(r) for r in session.execute(
        select(UsagePeriod.entitlement_id, UsagePeriod.start)
        .where(UsagePeriod.closed_at.is_(None), UsagePeriod.end <= now)
        .order_by(UsagePeriod.end, UsagePeriod.entitlement_id).limit(limit)).all()]


def close_period(session: Session, ident: Any, now: datetime) -> bool:
    """One sweep item: lock the trade, the entitlement and the period, draw it."""
    ent_id, start = ident
    trade_id = session.execute(select(Entitlement.trade_id).where(Entitlement.id == ent_id)).scalar_one()
    evidence.locked_trade(session, trade_id)
    ent = session.execute(select(Entitlement).where(Entitlement.id == ent_id).with_for_update()).scalar_one()
    period = session.execute(select(UsagePeriod).where(UsagePeriod.entitlement_id == ent_id, UsagePeriod.start == start)
                             .with_for_update()).scalar_one()
    return _close(session, ent, period, now)


def draw_open_periods(session: Session, ent: Entitlement, now: datetime) -> bool:
    """Draw every open period of `ent` now (before a resolution or at the end); False if one waits."""
    periods = list(session.execute(select(UsagePeriod).where(UsagePeriod.entitlement_id == ent.id,
                                                             UsagePeriod.closed_at.is_(None))
                                   .order_by(UsagePeriod.start).with_for_update()).scalars())
    return all([_close(session, ent, p, now) for p in periods])


def endings_due(session: Session, now: datetime, limit: int) -> list[str]:
    """per_call entitlements whose trade is still open: each is checked (ended ones are settled)."""
    return list(session.execute(
        select(Entitlement.id).join(Trade, Trade.id == Entitlement.trade_id)
        .where(Entitlement.calls_included.is_not(None), Trade.status.in_(["escrowed", "delivered"]))
        .order_by(Entitlement.checked_at.is_(None).desc(), Entitlement.checked_at, Entitlement.id).limit(limit)
    ).scalars())


def settle_ending(session: Session, ent_id: str, now: datetime) -> bool:
    """An ended per_call entitlement: draw what is open, refund the unused calls, settle the trade."""
    trade_id = session.execute(select(Entitlement.trade_id).where(Entitlement.id == ent_id)).scalar_one()
    trade = evidence.locked_trade(session, trade_id)
    ent = session.execute(select(Entitlement).where(Entitlement.id == ent_id).with_for_update()).scalar_one()
    verdict = entitlements.evaluate(session, ent, now)
    entitlements.persist(session, ent, verdict)
    if verdict.status not in (EntitlementStatus.EXPIRED, EntitlementStatus.REVOKED) or trade.status not in (
            "escrowed", "delivered"):
        return False
    if not draw_open_periods(session, ent, now):
        return False
    return settlement.end_per_call(session, trade_id=trade.id)


# -- trading's hooks -------------------------------------------------------------------------------
def on_per_call_resolving(session: Session, *, trade: Trade, **_facts: Any) -> None:
    """Before a per_call resolution: counted calls not yet drawn are drawn first."""
    ent = session.execute(select(Entitlement).where(Entitlement.contract_id == trade.contract_id)
                          .with_for_update()).scalar_one_or_none()
    if ent is not None and ent.calls_included is not None:
        from exchange.db import utcnow

        draw_open_periods(session, ent, utcnow())


def on_per_call_refunded_calls(session: Session, *, trade: Trade, calls: int, **_facts: Any) -> None:
    """A resolution refunded `calls` and kept access: the entitlement's calls shrink by them."""
    ent = session.execute(select(Entitlement).where(Entitlement.contract_id == trade.contract_id)
                          .with_for_update()).scalar_one_or_none()
    if ent is not None and ent.calls_included is not None:
        ent.calls_included = max(ent.calls_used, ent.calls_included - calls)
        session.flush()
