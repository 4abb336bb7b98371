"""The operator-run cross-border white list, and the lawful-deal check trading calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from certification.crossborder import Decision, may_transfer
from certification.models import WhitelistEntry
from exchange.db import utcnow
from exchange.errors import NotFound, ValidationFailed, field_error
from exchange.identity import audit
from exchange.identity.models import Organization
from exchange.principal import Principal
from exchange.states import load_for_update


def create(session: Session, *, data: dict[str, Any], actor: Principal) -> WhitelistEntry:
    """Operator: add an entry. `core` can never be white-listed (422); past expiry -> 422."""
    actor.require_operator()
    if data["max_classification"] == "core":
        raise ValidationFailed("core data can never be white-listed", rule="core_never_crosses",
                               errors={"max_classification": ["core data can never be white-listed"]})
    if data["expires_at"] <= utcnow():
        raise field_error("expires_at", "must be in the future")
    if data["from_region"] == data["to_region"]:
        raise field_error("to_region", "must differ from from_region (a white list is for crossing borders)")
    recipient = data.get("recipient_org_id")
    if recipient is not None and session.get(Organization, recipient) is None:
        raise field_error("recipient_org_id", "no such organization")
    entry = WhitelistEntry(**data, created_by=actor.user_id)
    session.add(entry)
    session.flush()
    audit.record(session, actor, "whitelist.created", "whitelist_entry", entry.id,
                 **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()})
    return entry


def query(*, principal: Principal, include_expired: bool = False) -> Select:
    """Live entries (any signed-in organization may read what crosses lawfully)."""
    stmt = select(WhitelistEntry).where(WhitelistEntry.deleted_at.is_(None))
    if not include_expired:
        stmt = stmt.where(WhitelistEntry.expires_at > utcnow())
    return stmt.order_by(WhitelistEntry.created_at.desc(), WhitelistEntry.id)


def delete(session: Session, *, entry_id: str, actor: Principal) -> WhitelistEntry:
    """Operator: withdraw an entry (kept, marked deleted, for the audit trail)."""
    actor.require_operator()
    # Locked and re-read: of two concurrent deletions the second finds the entry gone (404).
    entry = load_for_update(session, WhitelistEntry, entry_id)
    if entry is None or entry.deleted_at is not None:
        raise NotFound("No such white-list entry.")
    entry.deleted_at = utcnow()
    entry.deleted_by = actor.user_id
    audit.record(session, actor, "whitelist.deleted", "whitelist_entry", entry.id)
    session.flush()
    return entry


def live_entries(session: Session, *, category: str, now: datetime | None = None) -> list[WhitelistEntry]:
    now = now or utcnow()
    return list(session.execute(
        select(WhitelistEntry).where(
            WhitelistEntry.category == category,
            WhitelistEntry.deleted_at.is_(None),
            WhitelistEntry.expires_at > now,
        )
    ).scalars())


def check_transfer(session: Session, *, product: Any, buyer_org: Organization,
                   now: datetime | None = None) -> Decision:
    """The cross-border decision for selling `product` (a listed revision's fields) to `buyer_org`."""
    now = now or utcnow()
    category = product["category"] if isinstance(product, dict) else product.category
    return may_transfer(product, buyer_org.region, live_entries(session, category=category, now=now), now,
                        buyer_org_id=buyer_org.id)


def require_lawful(session: Session, *, product: Any, buyer_org: Organization) -> Decision:
    """Raise 422 naming the rule unless the deal is lawful."""
    decision = check_transfer(session, product=product, buyer_org=buyer_org)
    if not decision.allowed:
        raise ValidationFailed(f"Cross-border rule {decision.rule}: {decision.reason}", rule=decision.rule,
                               errors={"cross_border": [decision.reason]})
    return decision
