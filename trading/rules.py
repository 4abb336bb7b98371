"""The checks every trading step repeats: the product is tradable (listed with a valid certificate),
neither party is suspended and the deal is lawful (cross-border rules), at offer, counter,
acceptance and signature alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import certificates, whitelist
from certification.models import Certificate
from exchange.errors import Conflict, NotFound, field_error
from exchange.identity import services as identity
from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from listings import services as listings
from listings.models import Product, ProductVersion


def organization(session: Session, org_id: str, *, field: str = "to_org_id", role: str = "buyer") -> Organization:
    """A verified organization that can be a counterparty; 422 naming `field` otherwise, 409 naming
    `role` while it is suspended ("The buyer organization is suspended.")."""
    org = session.get(Organization, org_id) if org_id else None
    if org is not None and org.status == OrgStatus.SUSPENDED and org.type in ("vendor", "enterprise"):
        raise Conflict(f"The {role} organization is suspended.")
    if org is None or org.status != OrgStatus.VERIFIED or org.type not in ("vendor", "enterprise"):
        raise field_error(field, "must be a verified vendor or enterprise organization")
    return org


def active_parties(session: Session, *, buyer_org_id: str, seller_org_id: str, actor: Any) -> None:
    """Refuse a new step of a deal (offer, counter, acceptance, signature) while either side is
    suspended: 409 "The seller organization is suspended." for the counterparty (403 for a member
    of the suspended side itself, should its token still be in flight).

    Both rows are read FOR KEY SHARE, in id order, and held to the end of the transaction: the step and
    a concurrent suspension of either party serialize (see `identity.active_counterparty`).
    """
    for org_id, role in sorted({buyer_org_id: "buyer", seller_org_id: "seller"}.items()):
        identity.active_counterparty(session, org_id=org_id, role=role, actor=actor)


def tradable(session: Session, product: Product) -> tuple[ProductVersion, Certificate]:
    """The listed revision and its valid certificate; 409 when the product cannot be traded now."""
    if not listings.is_tradable(product) or product.listed_version is None:
        raise Conflict(f"Product {product.id} is not listed, so it cannot be traded now.")
    cert = certificates.valid_certificate_for(session, product.id, product.listed_version)
    if cert is None:
        raise Conflict(f"Product {product.id} has no valid certificate, so it cannot be traded now.")
    return listings.get_version(session, product_id=product.id, version=product.listed_version), cert


def lawful(session: Session, revision: Any, buyer: Organization) -> None:
    """422 naming the cross-border rule unless `buyer` may lawfully receive the revision's data."""
    whitelist.require_lawful(session, product=revision, buyer_org=buyer)


def visible_product(session: Session, product_id: str, principal: Any) -> Product:
    try:
        return listings.get_product(session, product_id=product_id, principal=principal)
    except NotFound:
        raise NotFound("No such product.") from None


def for_parties(session: Session, model: Any, object_id: str, principal: Any, *, parties: tuple[str, str],
                what: str, lock: bool = False) -> Any:
    """The row `object_id` of `model` if the caller is one of its two parties or an operator; else 404
    (never 403: others must not learn that it exists). `lock` takes the row lock for a state change."""
    stmt = select(model).where(model.id == object_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or not (principal.is_operator or principal.org_id in {getattr(row, p) for p in parties}):
        raise NotFound(f"No such {what}.")
    return row
