"""Delivery evidence: the exchange, not the seller's word, makes a trade `delivered`.

For a `file` product, whenever its entitlement is active (at escrow, at a publication, and each time
it becomes active again) the first covered published release delivers the trade
(`delivery_evidence: "release"`, the release id and its manifest digest). When access resumes after
a suspension, a trade already delivered starts its acceptance period again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from delivery.models import ApiUpstream, Entitlement, Release
from delivery.states import EntitlementStatus, ReleaseStatus
from exchange.errors import field_error
from trading import settlement, subscriptions
from trading.models import Trade


def covered_releases(ent: Entitlement) -> Select:
    """The published releases an entitlement covers: of its product, published before its end."""
    return published_before(ent.product_id, ent.ends_at)


def published_before(product_id: str, ends: Any) -> Select:
    """A product's published releases, published before `ends` (a datetime or a scalar subquery)."""
    return (select(Release).where(Release.product_id == product_id, Release.status == ReleaseStatus.PUBLISHED,
                                  Release.published_at < ends)
            .order_by(Release.published_at, Release.id))


def covered(session: Session, ent: Entitlement, release_id: str) -> Release:
    """The release `release_id` if the entitlement covers it (its product's, published before its
    end; withdrawn or not: the caller refuses a withdrawn one as an access); a 422 naming the field."""
    release = session.get(Release, release_id) if isinstance(release_id, str) and len(release_id) <= 40 else None
    if (release is None or release.product_id != ent.product_id or release.published_at is None
            or release.published_at >= ent.ends_at):
        raise field_error("release_id", "no release of this entitlement's product that it covers")
    return release


def period_trade(session: Session, ent: Entitlement, now: datetime | None = None) -> Trade:
    """The trade the entitlement's access rests on now: a subscription's period running at `now`
    (a period's trade is delivered no earlier than its start), else the entitlement's own trade."""
    if ent.subscription:
        current = subscriptions.current_trade(session, ent.contract_id, now)
        if current is not None:
            return current
    return session.get(Trade, ent.trade_id)


def locked_trade(session: Session, trade_id: str) -> Trade:
    return session.execute(select(Trade).where(Trade.id == trade_id).with_for_update()).scalar_one()


def on_active(session: Session, ent: Entitlement, *, resumed: bool) -> None:
    """`ent` is active now: deliver its escrowed trade from the first covered release, or (when
    access resumed) restart a delivered trade's acceptance period."""
    if ent.status != EntitlementStatus.ACTIVE:
        return
    trade = locked_trade(session, period_trade(session, ent).id)
    if resumed:
        settlement.restart_acceptance(session, trade=trade)
    if ent.delivery_mode != "file":
        return
    release = session.execute(covered_releases(ent).limit(1)).scalar_one_or_none()
    if release is not None:
        settlement.deliver_by_exchange(session, trade=trade, reference=release.id, sha256=release.manifest_sha256,
                                       evidence="release")


def declared_delivery_refusal(session: Session, *, trade: Trade) -> str | None:
    """Trading asks before a seller declares a delivery: refused where the exchange delivers itself."""
    ent = session.execute(select(Entitlement).where(Entitlement.contract_id == trade.contract_id)).scalar_one_or_none()
    if ent is not None and ent.delivery_mode == "api" and session.get(ApiUpstream, ent.product_id) is not None:
        return ("The exchange delivers this trade itself through its API gateway (the first counted call); a "
                "declared delivery is only for products the exchange does not deliver.")
    if ent is None or ent.delivery_mode not in ("file", "privacy_computing"):
        return None
    if session.execute(covered_releases(ent).limit(1)).first() is not None:
        return ("The exchange delivers this trade itself from its published release; a declared delivery "
                "is only for products the exchange does not deliver.")
    return None
