"""Procurement demand: post, read (board or own), cancel, expire (lazily on read, persisted by the sweep)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, true
from sqlalchemy.orm import Session

from exchange.db import utcnow
from exchange.errors import Forbidden, NotFound, field_error
from exchange.expiry import Expiry
from exchange.fields import Facts
from exchange.identity import services as identity
from exchange.principal import Principal
from exchange.states import load_for_update, transition
from trading.models import Procurement, ProcurementInvitation
from trading.rules import organization
from trading.states import PROCUREMENT_TRANSITIONS, ProcurementStatus

P = ProcurementStatus


# An open procurement expires at its deadline.
EXPIRY = Expiry(Procurement, PROCUREMENT_TRANSITIONS, P.EXPIRED, live=(P.OPEN,), deadline="deadline",
                what="Procurement")


def effective_status(proc: Procurement, now: datetime | None = None) -> str:
    """`expired` once the deadline passed while still open (reads never write)."""
    return EXPIRY.effective_status(proc, now)


def check_may_procure(_session: Session, actor: Principal, **_ids: Any) -> None:
    """Whether the actor may post procurements (a verified enterprise or vendor): Forbidden."""
    actor.require_type("enterprise", "vendor", action="procurements")


def create(session: Session, *, title: str, description: str, category: str, budget: Mapping[str, Any],
           deadline: datetime, keywords: list[str] | None = None, delivery_mode: str | None = None,
           visibility: str = "public", invited_org_ids: list[str] | None = None, actor: Principal) -> Procurement:
    """A verified enterprise or vendor posts demand (`budget`: `{max_amount, currency}`). Raises
    Forbidden or ValidationFailed."""
    check_may_procure(session, actor)
    if deadline <= utcnow():
        raise field_error("deadline", "must be in the future")
    invited = list(dict.fromkeys(invited_org_ids or []))
    if visibility == "invited":
        if not invited:
            raise field_error("invited_org_ids", "an invited procurement needs at least one invited organization")
        for org_id in invited:
            if org_id == actor.org_id:
                raise field_error("invited_org_ids", "cannot invite yourself")
            organization(session, org_id, field="invited_org_ids", role="invited")
    elif invited:
        raise field_error("invited_org_ids", "only for visibility 'invited'")
    proc = Procurement(
        buyer_org_id=actor.org_id, created_by=actor.user_id, title=title, description=description,
        category=category, keywords=keywords or [], budget_max_amount=budget["max_amount"],
        budget_currency=budget["currency"], delivery_mode=delivery_mode, deadline=deadline,
        visibility=visibility, invited_org_ids=invited, status=P.OPEN,
    )
    session.add(proc)
    session.flush()
    session.add_all(ProcurementInvitation(procurement_id=proc.id, org_id=org_id) for org_id in invited)
    session.flush()
    return proc


def can_see(proc: Procurement, principal: Principal | None) -> bool:
    if principal is None:
        return False
    if principal.is_operator or principal.org_id == proc.buyer_org_id:
        return True
    if proc.visibility == "public":
        return principal.org_type in ("vendor", "enterprise")
    return principal.org_id in (proc.invited_org_ids or [])


def get(session: Session, *, procurement_id: str, principal: Principal | None,
        for_update: bool = False) -> Procurement:
    proc = (load_for_update(session, Procurement, procurement_id) if for_update
            else session.get(Procurement, procurement_id))
    if proc is None or not can_see(proc, principal):
        raise NotFound("No such procurement.")
    return proc


def not_suspended(session: Session) -> ColumnElement[bool]:
    """Demand whose buyer is not suspended: what the board and matching show vendors (a suspended
    buyer's procurements come back with its reinstatement). No filter at all while none is."""
    suspended = identity.suspended_org_ids(session)
    return Procurement.buyer_org_id.not_in(suspended) if suspended else true()


def list_query(session: Session, *, principal: Principal, board: bool, invited: bool, status: str | None,
               category: str | None) -> Select:
    """Own procurements; or the board (open public demand of others, before its deadline, its buyer
    not suspended); or the procurements the caller's organization was invited to."""
    stmt = select(Procurement)
    now = utcnow()
    if board:
        stmt = stmt.where(Procurement.status == P.OPEN, Procurement.deadline > now,
                          Procurement.visibility == "public", Procurement.buyer_org_id != principal.org_id,
                          not_suspended(session))
    elif invited:
        stmt = stmt.where(Procurement.id.in_(
            select(ProcurementInvitation.procurement_id).where(ProcurementInvitation.org_id == principal.org_id)))
    elif not principal.is_operator:
        stmt = stmt.where(Procurement.buyer_org_id == principal.org_id)
    if status == P.EXPIRED:
        stmt = stmt.where(or_(Procurement.status == P.EXPIRED,
                              (Procurement.status == P.OPEN) & (Procurement.deadline <= now)))
    elif status == P.OPEN:
        stmt = stmt.where(Procurement.status == P.OPEN, Procurement.deadline > now)
    elif status:
        stmt = stmt.where(Procurement.status == status)
    if category:
        stmt = stmt.where(Procurement.category == category)
    return stmt.order_by(Procurement.created_at.desc(), Procurement.id)


def _require_buyer(proc: Procurement, actor: Principal) -> None:
    if proc.buyer_org_id != actor.org_id:
        raise Forbidden("Only the buyer may cancel its procurement.",
                        next_step="sign in as a member of the buying organization")


def check_may_cancel(session: Session, actor: Principal, *, procurement_id: str, **_ids: Any) -> None:
    """Whether the actor may cancel the procurement (its buyer): Forbidden, NotFound. Reads only."""
    _require_buyer(get(session, procurement_id=procurement_id, principal=actor), actor)


def cancel(session: Session, *, procurement_id: str, reason: str | None, actor: Principal) -> Procurement:
    """The buyer cancels its open procurement (409 once contracted, cancelled or expired)."""
    proc = get(session, procurement_id=procurement_id, principal=actor, for_update=True)
    _require_buyer(proc, actor)
    EXPIRY.expire_if_due(session, proc)
    transition(proc, PROCUREMENT_TRANSITIONS, P.CANCELLED, actor=actor, what="Procurement")
    proc.status_reason = reason
    session.flush()
    return proc


def mark_contracted(session: Session, procurement_id: str | None) -> None:
    """A contract from this procurement was signed."""
    if not procurement_id:
        return
    proc = load_for_update(session, Procurement, procurement_id)
    if proc is not None and proc.status == P.OPEN:
        transition(proc, PROCUREMENT_TRANSITIONS, P.CONTRACTED, actor=None, what="Procurement")


def shown(proc: Procurement) -> Facts:
    """A procurement with its status as reads see it (`ProcurementSchema` dumps it for the caller)."""
    return Facts(proc, status=effective_status(proc))
