"""The audit trail of privileged actions: append-only, written in the same transaction as the action."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from exchange.api import LogOrder
from exchange.errors import Forbidden
from exchange.identity.models import AuditEvent
from exchange.principal import Principal

# The trail's append order: its autoincrement id.
AUDIT_ORDER = LogOrder(id=AuditEvent.id, keys=(AuditEvent.id,))


def record(session: Session, actor: Principal | None, action: str, object_type: str, object_id: str,
           **detail: Any) -> AuditEvent:
    """Append one audit event (flushed with the caller's transaction)."""
    event = AuditEvent(
        actor_user_id=actor.user_id if actor else None,
        actor_org_id=actor.org_id if actor else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        detail={k: v for k, v in detail.items() if v is not None},
    )
    session.add(event)
    return event


def list_events(*, principal: Principal, actor_org_id: str | None = None, object_id: str | None = None,
                action: str | None = None) -> Select:
    """Operators' view of the trail, newest first, filtered. Raises Forbidden for anyone else."""
    if not principal.is_operator:
        raise Forbidden("Only exchange operators may read the audit trail.",
                        next_step="ask the exchange's operators, who keep the audit trail")
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if actor_org_id:
        stmt = stmt.where(AuditEvent.actor_org_id == actor_org_id)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return stmt
