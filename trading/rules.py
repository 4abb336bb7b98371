"""The checks every trading step repeats: the product is tradable (listed with a valid certificate),
neither party is suspended and the deal is lawful (cross-border rules), at offer, counter,
acceptance and signature alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import certificates, crossborder, whitelist
from certification.models import Certificate
from exchange.errors import Conflict, NotFound, field_error
from exchange.identity import services as identity
from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from exchange.money import MAX_AMOUNT
from listings import services as listings
from listings.models import Product, ProductVersion
from trading.models import Contract


def organization(session: Session, org_id: str, *, field: str = "to_org_id", role: str = "buyer") -> Organization:
    """A verified organization that can be a counterparty; 422 naming `field` otherwise, 409 naming
    `role` while it is suspended ("The buyer organization is suspended.")."""
    org = session.get(Organization, org_id) if org_id else None
    if org is not None and org.status == OrgStatus.SUSPENDED and org.type in ("vendor", "enterprise"):
        raise Conflict(f"The {role} organization is suspended.",
                       next_step=f"an operator must reinstate the {role} organization first")
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
        raise Conflict(f"Product {product.id} is not listed, so it cannot be traded now.",
                       next_step="wait until the product is listed again (its vendor certifies it, or an operator "
                                 "reinstates it)")
    cert = certificates.valid_certificate_for(session, product.id, product.listed_version)
    if cert is None:
        raise Conflict(f"Product {product.id} has no valid certificate, so it cannot be traded now.",
                       next_step="wait until the product's certificate is valid again (an operator reinstates it, or "
                                 "its vendor certifies it again)")
    return listings.get_version(session, product_id=product.id, version=product.listed_version), cert


MAINLAND = ("GD", "CN")
ABROAD = ("HK", "MO", "INTL")


def leaves_mainland(seller_region: str, buyer_region: str) -> bool:
    """A deal's data leaves the mainland (API.md Compliance): the seller, the exporter, in GD or CN and
    the buyer in HK, MO or INTL; such a contract gets a cross-border dossier."""
    return seller_region in MAINLAND and buyer_region in ABROAD


def lawful(session: Session, revision: Any, buyer: Organization) -> None:
    """422 naming the cross-border rule unless `buyer` may lawfully receive the revision's data; 409
    naming `personal_info` when personal data would cross a border from a version certified before
    that field existed (its path cannot be decided without the individuals it covers)."""
    whitelist.require_lawful(session, product=revision, buyer_org=buyer)
    if revision.contains_personal_info and getattr(revision, "personal_info", None) is None and (
            crossborder.is_cross_border(revision.origin_region, buyer.region)
            or leaves_mainland(_seller_region(session, revision), buyer.region)):
        raise Conflict(f"Version {revision.version} of this product contains personal information but does not "
                       "state personal_info (the individuals it covers and whether it is sensitive), so its "
                       "cross-border path cannot be decided: the vendor must certify a revision with "
                       "personal_info first.", errors={"personal_info": ["missing on the certified version"]},
                       next_step="the vendor must certify a revision that states personal_info first")


def _seller_region(session: Session, revision: Any) -> str:
    product = session.get(Product, revision.product_id)
    return session.get(Organization, product.owner_org_id).region


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


# -- per_call products (API.md, Delivery and use, Metering) ----------------------------------------
PER_CALL = "per_call"
MAX_CALLS = 10**9


def check_calls(revision: Any, price: dict[str, Any], terms: dict[str, Any]) -> None:
    """`terms.calls` is the quantity a per_call deal buys (its `price.amount` the unit price) and has
    no meaning for any other price model: 422 naming `terms.calls` when missing, misplaced, or when
    the total would not fit an exact JSON integer."""
    calls = terms.get("calls")
    if revision.price.get("model") != PER_CALL:
        if calls is not None:
            raise field_error("terms.calls", "only for per_call products")
        return
    if calls is None:
        raise field_error("terms.calls", "required for a per_call product (the calls bought up front)")
    if calls * price["amount"] > MAX_AMOUNT:
        raise field_error("terms.calls", f"calls x unit price must not exceed {MAX_AMOUNT}")


def deal_amount(price_amount: int, terms: dict[str, Any]) -> int:
    """The contract's total: the unit price times the calls bought for a per_call deal, else the price."""
    calls = terms.get("calls")
    return price_amount * calls if calls is not None else price_amount


def contract_is_per_call(session: Session, contract_id: str) -> bool:
    """Whether the product version a contract was made on is priced per call."""
    return bool(session.execute(select(per_call_contract(contract_id))).scalar())


def per_call_contract(contract_id: Any) -> Any:
    """An EXISTS clause: the contract `contract_id` (a column or a value) was made on a per_call version."""
    return (select(Contract.id)
            .join(ProductVersion, (Contract.product_id == ProductVersion.product_id)
                  & (Contract.product_version == ProductVersion.version))
            .where(Contract.id == contract_id, ProductVersion.price["model"].as_string() == PER_CALL)
            .exists())


def calls_bought(session: Session, contract_id: str) -> tuple[int, int]:
    """A per_call contract's (calls, unit price)."""
    contract = session.get(Contract, contract_id)
    calls = int(contract.terms["calls"])
    return calls, contract.amount // calls
