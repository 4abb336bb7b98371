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


def create(session: Session, *, category: str, from_region: str, to_region: str, max_classification: str,
           expires_at: datetime, personal_info_allowed: bool = False, recipient_org_id: str | None = None,
           note: str | None = None, actor: Principal) -> WhitelistEntry:
    """Operator: add an entry. `core` can never be white-listed (422); past expiry -> 422."""
    actor.require_operator()
    if max_classification == "core":
        raise ValidationFailed("core data can never be white-listed", rule="core_never_crosses",
                               errors={"max_classification": ["core data can never be white-listed"]})
    if expires_at <= utcnow():
        raise field_error("expires_at", "must be in the future")
    if from_region == to_region:
        raise field_error("to_region", "must differ from from_region (a white list is for crossing borders)")
    if recipient_org_id is not None and session.get(Organization, recipient_org_id) is None:
        raise field_error("recipient_org_id", "no such organization")
    fields = dict(category=category, from_region=from_region, to_region=to_region,
                  max_classification=max_classification, personal_info_allowed=personal_info_allowed,
                  recipient_org_id=recipient_org_id, expires_at=expires_at, note=note)
    entry = WhitelistEntry(**fields, created_by=actor.user_id)
    session.add(entry)
    session.flush()
    # What the operator set (audit.record leaves out the fields left empty).
    audit.record(session, actor, "whitelist.created", "whitelist_entry", entry.id,
                 **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()})
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
