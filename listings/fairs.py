"""The on-site exhibition: fairs with a time window, vendors' stalls, the products on show, stats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from exchange.db import exact_sum, exact_total, utcnow
from exchange.errors import Conflict, NotFound, ValidationFailed, field_error
from exchange.fields import Facts
from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from exchange.principal import Principal
from exchange.states import load_for_update
from listings import services as listings
from listings.models import Fair, FairSale, Product, Stall, StallProduct
from listings.states import FairPhase, ProductStatus

MAX_PRODUCTS_PER_STALL = 100


def fair_phase(fair: Fair, now: datetime | None = None) -> FairPhase:
    """Upcoming, live or ended, from the clock (computed on read)."""
    now = now or utcnow()
    if now < fair.starts_at:
        return FairPhase.UPCOMING
    return FairPhase.LIVE if now < fair.ends_at else FairPhase.ENDED


def create_fair(session: Session, *, name: str, venue: str, starts_at: datetime, ends_at: datetime,
                actor: Principal) -> Fair:
    """Operators schedule a fair. Raises Forbidden, ValidationFailed (`ends_at` not after `starts_at`)."""
    actor.require_operator()
    if ends_at <= starts_at:
        raise field_error("ends_at", "must be after starts_at")
    fair = Fair(name=name, venue=venue, starts_at=starts_at, ends_at=ends_at, created_by=actor.user_id)
    session.add(fair)
    session.flush()
    return fair


def get_fair(session: Session, *, fair_id: str) -> Fair:
    """A fair (public). Raises NotFound."""
    fair = session.get(Fair, fair_id) if isinstance(fair_id, str) and len(fair_id) <= 40 else None
    if fair is None:
        raise NotFound("No such fair.")
    return fair


def list_fairs(*, phase: str | None = None) -> Select:
    """Fairs, soonest first; `phase` keeps upcoming, live or ended ones."""
    now = utcnow()
    stmt = select(Fair).order_by(Fair.starts_at, Fair.id)
    if phase == FairPhase.UPCOMING:
        stmt = stmt.where(Fair.starts_at > now)
    elif phase == FairPhase.LIVE:
        stmt = stmt.where(Fair.starts_at <= now, Fair.ends_at > now)
    elif phase == FairPhase.ENDED:
        stmt = stmt.where(Fair.ends_at <= now)
    return stmt


def _volumes(session: Session, fair_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per fair, per currency (never mixed), the exact sum of what its trades brought in (money that
    reached escrow, less refunds), as Python integers (a sum may pass 2^53 and even 2^63)."""
    high, low = exact_sum(FairSale.amount)
    out: dict[str, list[dict[str, Any]]] = {}
    for fair_id, currency, h, lo in session.execute(
        select(FairSale.fair_id, FairSale.currency, high, low)
        .where(FairSale.fair_id.in_(fair_ids), FairSale.amount > 0)
        .group_by(FairSale.fair_id, FairSale.currency).order_by(FairSale.fair_id, FairSale.currency)
    ):
        out.setdefault(fair_id, []).append({"currency": currency, "amount": exact_total(h, lo)})
    return out


def fair_stats(session: Session, fair: Fair) -> dict[str, Any]:
    """Stalls, distinct listed products on show, the contracts signed on site and the money their
    trades brought in (the figures trading recorded)."""
    stalls = session.execute(select(func.count()).select_from(Stall).where(Stall.fair_id == fair.id)).scalar_one()
    on_show = session.execute(
        select(func.count(func.distinct(StallProduct.product_id)))
        .join(Stall, Stall.id == StallProduct.stall_id)
        .join(Product, Product.id == StallProduct.product_id)
        .where(Stall.fair_id == fair.id, listings.in_catalog(session))
    ).scalar_one()
    # Read the counters as columns: trading increments them with UPDATEs the identity map never sees.
    signed = session.execute(select(Fair.contracts_signed_on_site).where(Fair.id == fair.id)).scalar_one()
    volume = _volumes(session, [fair.id]).get(fair.id, [])
    return {
        "stalls": stalls,
        "products_on_show": on_show,
        "contracts_signed_on_site": signed,
        "volume": volume,
    }


def fairs_stats(session: Session, fairs: Sequence[Fair]) -> dict[str, dict[str, Any]]:
    """`fair_stats` for a page of fairs in four queries, whatever the page size."""
    ids = [f.id for f in fairs]
    if not ids:
        return {}
    stalls = dict(session.execute(
        select(Stall.fair_id, func.count()).where(Stall.fair_id.in_(ids)).group_by(Stall.fair_id)).all())
    on_show = dict(session.execute(
        select(Stall.fair_id, func.count(func.distinct(StallProduct.product_id)))
        .join(Stall, Stall.id == StallProduct.stall_id)
        .join(Product, Product.id == StallProduct.product_id)
        .where(Stall.fair_id.in_(ids), listings.in_catalog(session))
        .group_by(Stall.fair_id)).all())
    signed = dict(session.execute(select(Fair.id, Fair.contracts_signed_on_site).where(Fair.id.in_(ids))).all())
    volume = _volumes(session, ids)
    return {i: {"stalls": stalls.get(i, 0), "products_on_show": on_show.get(i, 0),
                "contracts_signed_on_site": signed.get(i, 0), "volume": volume.get(i, [])} for i in ids}


def shown_page(session: Session, fairs: Sequence[Fair]) -> list[Facts]:
    """`shown` of a page of fairs, with their stats, in a constant number of queries."""
    stats = fairs_stats(session, fairs)
    return [Facts(f, phase=fair_phase(f), stats=stats[f.id]) for f in fairs]


def shown(session: Session, fair: Fair) -> Facts:
    """A fair with its phase (from the clock) and its figures."""
    return Facts(fair, phase=fair_phase(fair), stats=fair_stats(session, fair))


def _check_exhibitor(session: Session, org_id: str) -> Organization:
    org = session.get(Organization, org_id) if len(org_id) <= 40 else None
    if org is None:
        raise field_error("org_id", "no such organization")
    if org.type != "vendor" or org.status != OrgStatus.VERIFIED:
        raise field_error("org_id", "stalls are assigned to verified vendor organizations only")
    return org


def _check_products(session: Session, org_id: str, product_ids: Sequence[str]) -> None:
    if len(set(product_ids)) != len(product_ids):
        raise field_error("product_ids", "lists a product twice")
    if len(product_ids) > MAX_PRODUCTS_PER_STALL:
        raise field_error("product_ids", f"at most {MAX_PRODUCTS_PER_STALL} products per stall")
    if not product_ids:
        return
    rows = dict(session.execute(
        select(Product.id, Product.status).where(Product.id.in_(product_ids), Product.owner_org_id == org_id)
    ).all())
    bad = [pid for pid in product_ids if rows.get(pid) != ProductStatus.LISTED]
    if bad:
        raise ValidationFailed(
            "A stall shows only listed products of its organization: " + ", ".join(bad[:10]),
            errors={"product_ids": [f"{pid} is not a listed product of organization {org_id}" for pid in bad[:10]]},
        )


def _set_products(session: Session, stall: Stall, product_ids: Sequence[str]) -> None:
    session.execute(delete(StallProduct).where(StallProduct.stall_id == stall.id))
    session.add_all(StallProduct(stall_id=stall.id, product_id=pid, position=i) for i, pid in enumerate(product_ids))


def create_stall(session: Session, *, fair_id: str, org_id: str, code: str, product_ids: Sequence[str],
                 actor: Principal) -> Stall:
    """Operators give a verified vendor a stall showing some of its listed products.

    Raises Forbidden, NotFound (fair), ValidationFailed (organization or products), Conflict (code
    already used at this fair).
    """
    actor.require_operator()
    fair = get_fair(session, fair_id=fair_id)
    _check_exhibitor(session, org_id)
    _check_products(session, org_id, product_ids)
    taken = session.execute(select(Stall.id).where(Stall.fair_id == fair.id, Stall.code == code)).first()
    if taken is not None:
        raise Conflict(f"Stall code {code} is already used at this fair.", errors={"code": ["already used"]},
                       next_step="choose another stall code for this fair")
    stall = Stall(fair_id=fair.id, org_id=org_id, code=code)
    session.add(stall)
    session.flush()
    _set_products(session, stall, product_ids)
    session.flush()
    return stall


def set_stall_products(session: Session, *, fair_id: str, stall_id: str, product_ids: Sequence[str],
                       actor: Principal) -> Stall:
    """Operators replace the products a stall shows. Raises Forbidden, NotFound, ValidationFailed."""
    actor.require_operator()
    # Locked: two concurrent replacements of the list run one after the other (each deletes the
    # rows the other inserted) instead of colliding on the same (stall, product) rows.
    stall = load_for_update(session, Stall, stall_id) if len(stall_id) <= 40 else None
    if stall is None or stall.fair_id != fair_id:
        raise NotFound("No such stall at this fair.")
    _check_products(session, stall.org_id, product_ids)
    _set_products(session, stall, product_ids)
    session.flush()
    return stall


def list_stalls(session: Session, *, fair_id: str) -> Select:
    """The stalls of a fair by code (public). Raises NotFound."""
    fair = get_fair(session, fair_id=fair_id)
    return select(Stall).where(Stall.fair_id == fair.id).order_by(Stall.code)


def stall_views(session: Session, stalls: Sequence[Stall]) -> list[dict[str, Any]]:
    """Stalls with the ids of their products that are listed now (a suspended one leaves the show)."""
    shown: dict[str, list[str]] = {s.id: [] for s in stalls}
    if stalls:
        rows = session.execute(
            select(StallProduct.stall_id, StallProduct.product_id)
            .join(Product, Product.id == StallProduct.product_id)
            .where(StallProduct.stall_id.in_(list(shown)), listings.in_catalog(session))
            .order_by(StallProduct.stall_id, StallProduct.position)
        ).all()
        for stall_id, product_id in rows:
            shown[stall_id].append(product_id)
    return [{"id": s.id, "fair_id": s.fair_id, "org_id": s.org_id, "code": s.code, "product_ids": shown[s.id],
             "created_at": s.created_at} for s in stalls]
