"""Business rules of data products: creation, revisions, visibility, status changes and the catalog.

Certification drives a product's life through `submit_for_review`, `return_to_draft`, `mark_listed`,
`suspend`, `reinstate` (listings never imports certification); trading pushes a fair's signing
figures down through `record_fair_signing`. Every status change goes through the transition tables
of `listings.states` and is written to the product's history (who, when, why).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.orm import Session

from exchange.db import upsert, utcnow
from exchange.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed, field_error
from exchange.fields import Facts
from exchange.identity import services as identity
from exchange.money import CURRENCIES, MAX_AMOUNT
from exchange.principal import Principal
from exchange.states import transition
from listings import search
from listings.models import (
    BODY_FIELDS,
    STATED_BODY_FIELDS,
    Fair,
    FairSale,
    Product,
    ProductTransition,
    ProductVersion,
    _jsonable,
)
from listings.states import (
    ONCE_LISTED_STATUSES,
    PRODUCT_TRANSITIONS,
    RETURN_OUTCOMES,
    VERSION_TRANSITIONS,
    ProductStatus,
    VersionStatus,
)

CATALOG_FILTERS = ("category", "origin_region", "delivery_mode", "classification")


# -- lookups and visibility ------------------------------------------------------------------------

def can_manage(product: Product, principal: Principal | None) -> bool:
    """The owner's members and operators see a product in every status, with its newest revision."""
    return principal is not None and (principal.org_id == product.owner_org_id or principal.is_operator)


def _load(session: Session, product_id: str, *, lock: bool = False) -> Product:
    if not isinstance(product_id, str) or len(product_id) > 40:
        raise NotFound("No such product.")
    stmt = select(Product).where(Product.id == product_id)
    if lock:
        stmt = stmt.with_for_update()
    product = session.execute(stmt).scalar_one_or_none()
    if product is None:
        raise NotFound("No such product.")
    return product


def get_product(session: Session, *, product_id: str, principal: Principal | None) -> Product:
    """A product the caller may see: listed ones to anyone, others to the owner and operators.

    Raises NotFound (404) for unknown ids and for products the caller may not see (never 403).
    """
    if not isinstance(product_id, str) or len(product_id) > 40:
        raise NotFound("No such product.")
    # The shown revision comes in the same statement: `shown_version` then finds it in the
    # session's identity map (a product page is one query, not two).
    row = session.execute(
        select(Product, ProductVersion)
        .outerjoin(ProductVersion, (ProductVersion.product_id == Product.id)
                   & (ProductVersion.version == func.coalesce(Product.listed_version, Product.latest_version)))
        .where(Product.id == product_id)
    ).first()
    if row is None:
        raise NotFound("No such product.")
    product = row[0]
    # A strong reference: the session's identity map alone would let the revision be collected.
    product.__dict__["_loaded_shown_version"] = row[1]
    if product.status == ProductStatus.LISTED or can_manage(product, principal):
        return product
    raise NotFound("No such product.")


def owned_product(session: Session, *, product_id: str, actor: Principal) -> Product:
    """The product if the actor's (verified) organization owns it; NotFound when the actor may not
    see it, Forbidden when it may see it but not change it (for the layers above: releases)."""
    return _owned(session, product_id, actor)


def _owned(session: Session, product_id: str, actor: Principal, *, lock: bool = False) -> Product:
    """The product if the actor's organization owns it: 404 when invisible, 403 for operators."""
    product = _load(session, product_id, lock=lock)
    if actor.org_id == product.owner_org_id:
        actor.require_verified("changes to products")
        return product
    if can_manage(product, actor) or product.status == ProductStatus.LISTED:
        raise Forbidden("Only the product's owner may do this.",
                        next_step="sign in as a member of the organization that owns the product")
    raise NotFound("No such product.")


def check_may_change(session: Session, actor: Principal, *, product_id: str, **_ids: Any) -> None:
    """Whether the actor may change the product (its owner's verified members): Forbidden, NotFound.
    Reads only; the services check again on the locked row."""
    _owned(session, product_id, actor)


def get_version(session: Session, *, product_id: str, version: int) -> ProductVersion:
    """One revision of a product, whatever its status (no visibility check: for certification).

    Raises NotFound.
    """
    found = session.get(ProductVersion, (product_id, version)) if isinstance(version, int) else None
    if found is None:
        raise NotFound(f"Product {product_id} has no version {version}.")
    return found


def version_body(version: ProductVersion) -> dict[str, Any]:
    """Every field of the product creation body as stored, JSON-able (title ... volume)."""
    return version.body()


def shown_version(session: Session, product: Product) -> ProductVersion:
    """The revision a product's page shows: the listed (certified) one, else the newest."""
    loaded = product.__dict__.get("_loaded_shown_version")
    if loaded is not None and loaded.version == product.shown_version and loaded in session:
        return loaded
    return get_version(session, product_id=product.id, version=product.shown_version)


def is_tradable(product: Product) -> bool:
    """Offers and contracts may be made on a product only while it is listed."""
    return product.status == ProductStatus.LISTED


def in_catalog(session: Session) -> ColumnElement[bool]:
    """The public catalog's filter over Product (browse, search, fairs' stalls, matching): listed,
    and its owner not suspended. A suspended vendor's products keep their status and come back with
    its reinstatement; one whose certificate is suspended is not `listed` and stays out.

    The suspended organizations are read first (an index read, usually none) and only then, if any,
    excluded by id: with none, the catalog's queries are the same as before, index-only counts
    included; a join to organizations in every catalog query would read each row's owner instead.
    """
    listed = Product.status == ProductStatus.LISTED
    suspended = identity.suspended_org_ids(session)
    return listed & Product.owner_org_id.not_in(suspended) if suspended else listed


# -- history and transitions -----------------------------------------------------------------------

def _record(session: Session, product: Product, *, subject: str, to_status: str, from_status: str | None,
            version: int | None = None, reason: str | None = None, actor: Principal | None = None) -> None:
    session.add(ProductTransition(
        product_id=product.id, subject=subject, version=version, from_status=from_status,
        to_status=str(to_status), reason=reason, at=utcnow(),
        actor_user_id=actor.user_id if actor else None, actor_org_id=actor.org_id if actor else None,
    ))


def _move_product(session: Session, product: Product, target: ProductStatus, *, reason: str | None,
                  actor: Principal | None) -> None:
    previous = transition(product, PRODUCT_TRANSITIONS, target, actor=actor, what="Product")
    product.updated_at = utcnow()
    _record(session, product, subject="product", from_status=previous, to_status=target, reason=reason,
            actor=actor)


def _move_version(session: Session, product: Product, version: ProductVersion, target: VersionStatus, *,
                  reason: str | None, actor: Principal | None) -> None:
    previous = transition(version, VERSION_TRANSITIONS, target, actor=actor, what=f"Version {version.version}",
                          root=product)
    version.updated_at = utcnow()
    _record(session, product, subject="version", version=version.version, from_status=previous,
            to_status=target, reason=reason, actor=actor)


def history(session: Session, *, product_id: str, principal: Principal) -> Select:
    """The product's status history, oldest first (owner and operators; others 404)."""
    product = _load(session, product_id)
    if not can_manage(product, principal):
        raise NotFound("No such product.")
    return select(ProductTransition).where(ProductTransition.product_id == product.id).order_by(
        ProductTransition.id)


# -- creation and revisions ------------------------------------------------------------------------

def _stored(data: Mapping[str, Any]) -> dict[str, Any]:
    """The body as revisions store it: JSON values only (times as `...Z` strings)."""
    return {k: _jsonable(v) for k, v in data.items() if k in BODY_FIELDS or k in STATED_BODY_FIELDS}


def _copy_catalog_columns(product: Product, body: Mapping[str, Any]) -> None:
    for name in ("category", "origin_region", "delivery_mode", "classification"):
        setattr(product, name, body[name])
    product.price_model = body["price"]["model"]
    product.price_amount = body["price"]["amount"]
    product.price_currency = body["price"]["currency"]


def _check_complete(body: Mapping[str, Any]) -> None:
    missing = [f for f in BODY_FIELDS if f not in body]
    if missing:
        raise ValidationFailed("Missing fields: " + ", ".join(missing),
                               errors={f: ["Missing data for required field."] for f in missing})


def check_personal_info(body: Mapping[str, Any]) -> None:
    """`personal_info` goes with `contains_personal_info` (API.md Compliance): required when it is true,
    refused when it is false. Raises ValidationFailed naming the field."""
    stated = body.get("personal_info") is not None
    if body.get("contains_personal_info") and not stated:
        raise field_error("personal_info", "required when contains_personal_info is true: "
                                           '{"subjects": individuals covered, "sensitive": true|false}')
    if not body.get("contains_personal_info") and stated:
        raise field_error("personal_info", "only for data that contains personal information: set "
                                           "contains_personal_info to true, or personal_info to null")


def check_may_create(_session: Session, actor: Principal, **_ids: Any) -> None:
    """Whether the actor may list data products (a verified vendor): Forbidden."""
    actor.require_type("vendor", action="listing data products")


def create_product(session: Session, *, data: Mapping[str, Any], actor: Principal) -> Product:
    """A verified vendor registers a data product: version 1, a draft.

    `data` is a validated creation body. Raises Forbidden (not a verified vendor), ValidationFailed.
    """
    check_may_create(session, actor)
    body = {"sample": None, "coverage": None, "volume": None, **_stored(data)}
    _check_complete(body)
    check_personal_info(body)
    product = Product(owner_org_id=actor.org_id, status=ProductStatus.DRAFT, latest_version=1,
                      listed_version=None)
    _copy_catalog_columns(product, body)
    session.add(product)
    session.flush()
    session.add(ProductVersion(product_id=product.id, version=1, status=VersionStatus.DRAFT, **body))
    _record(session, product, subject="product", from_status=None, to_status=ProductStatus.DRAFT,
            reason="created", actor=actor)
    _record(session, product, subject="version", version=1, from_status=None, to_status=VersionStatus.DRAFT,
            reason="created", actor=actor)
    session.flush()
    return product


def update_product(session: Session, *, product_id: str, changes: Mapping[str, Any],
                   actor: Principal) -> Product | ProductVersion:
    """The owner edits a product: a never-listed draft in place (answers the product); a listed or
    suspended product through its draft revision `version+1`, created on first edit (answers it).

    Raises NotFound, Forbidden, Conflict (a revision in review is frozen; delisted products).
    """
    product = _owned(session, product_id, actor, lock=True)
    if product.status == ProductStatus.DELISTED:
        raise InvalidTransition("A delisted product cannot be edited.",
                                next_step="a delisted product stays off sale; create a new product instead")
    latest = get_version(session, product_id=product.id, version=product.latest_version)
    if latest.status == VersionStatus.IN_REVIEW:
        raise Conflict(f"Version {latest.version} is under review and frozen; withdraw the certification "
                       "request to edit it.",
                       next_step="withdraw the certification request (POST /certifications/{id}/withdraw), or wait "
                                 "for its decision")
    new_body = {**latest.body(), **_stored(changes)}
    check_personal_info(new_body)
    if latest.status == VersionStatus.DRAFT:
        for name, value in new_body.items():
            setattr(latest, name, value)
        latest.updated_at = utcnow()
        revision = latest
    else:
        revision = ProductVersion(product_id=product.id, version=latest.version + 1,
                                  status=VersionStatus.DRAFT, **new_body)
        session.add(revision)
        product.latest_version = revision.version
        _record(session, product, subject="version", version=revision.version, from_status=None,
                to_status=VersionStatus.DRAFT, reason=f"revision of version {latest.version}", actor=actor)
    product.updated_at = utcnow()
    if product.listed_version is None:
        _copy_catalog_columns(product, new_body)
    session.flush()
    return product if product.listed_version is None else revision


def missing_personal_info(*, principal: Principal) -> Select:
    """Operators: the listed versions that contain personal information but do not state
    `personal_info` (certified before the field existed): their vendors must certify a revision
    with it before any cross-border deal (API.md Compliance). Oldest listed first."""
    principal.require_operator()
    return (select(ProductVersion).join(Product, (Product.id == ProductVersion.product_id)
                                        & (Product.listed_version == ProductVersion.version))
            .where(ProductVersion.contains_personal_info.is_(True), ProductVersion.personal_info.is_(None),
                   Product.status != ProductStatus.DELISTED)
            .order_by(Product.listed_at, Product.id))


def list_versions(session: Session, *, product_id: str, principal: Principal) -> Select:
    """Every revision of a product, newest first (owner and operators; others 404)."""
    product = _load(session, product_id)
    if not can_manage(product, principal):
        raise NotFound("No such product.")
    return select(ProductVersion).where(ProductVersion.product_id == product.id).order_by(
        ProductVersion.version.desc())


# -- the life cycle certification drives ------------------------------------------------------------

def submit_for_review(session: Session, *, product_id: str, actor: Principal) -> ProductVersion:
    """The owner (a verified vendor) sends the newest draft revision to review, which freezes it.

    A never-listed product goes `draft -> in_review`; a listed (or suspended) one keeps its status
    while its next revision is reviewed. Raises NotFound, Forbidden, Conflict (409: no draft
    revision, one already in review, or the product is delisted).
    """
    actor.require_type("vendor", action="certification requests")
    product = _owned(session, product_id, actor, lock=True)
    if product.status == ProductStatus.DELISTED:
        raise InvalidTransition("A delisted product cannot be certified.",
                                next_step="a delisted product stays off sale; create a new product instead")
    latest = get_version(session, product_id=product.id, version=product.latest_version)
    if latest.status == VersionStatus.IN_REVIEW:
        raise Conflict(f"Version {latest.version} is already under review.",
                       next_step="wait for the certification's decision, or withdraw it first")
    if latest.status != VersionStatus.DRAFT:
        raise Conflict("The product has no draft revision to certify; edit it first.",
                       next_step="edit the product (PATCH /products/{id}) to open a draft revision first")
    check_personal_info(latest.body())
    _move_version(session, product, latest, VersionStatus.IN_REVIEW, reason="submitted for certification",
                  actor=actor)
    if product.listed_version is None:
        _move_product(session, product, ProductStatus.IN_REVIEW, reason="submitted for certification",
                      actor=actor)
    session.flush()
    return latest


def return_to_draft(session: Session, *, product_id: str, version: int, outcome: str,
                    reason: str | None = None, actor: Principal | None = None) -> ProductVersion:
    """A certification ended without approval: `changes_requested` or `withdrawn` unfreeze the
    revision (back to `draft`); `rejected` closes it (a fresh draft is made by editing). A product
    never listed goes back `in_review -> draft`.

    Raises ValidationFailed (unknown outcome), NotFound, InvalidTransition (revision not in review).
    """
    if outcome not in RETURN_OUTCOMES:
        raise field_error("outcome", f"must be one of {', '.join(RETURN_OUTCOMES)}")
    product = _load(session, product_id, lock=True)
    revision = get_version(session, product_id=product.id, version=version)
    target = VersionStatus.REJECTED if outcome == "rejected" else VersionStatus.DRAFT
    why = f"certification {outcome}" + (f": {reason}" if reason else "")
    _move_version(session, product, revision, target, reason=why, actor=actor)
    if product.status == ProductStatus.IN_REVIEW:
        _move_product(session, product, ProductStatus.DRAFT, reason=why, actor=actor)
    session.flush()
    return revision


def mark_listed(session: Session, *, product_id: str, version: int, certificate_number: str,
                actor: Principal | None = None) -> Product:
    """A revision was certified: it becomes `certified` (the previously certified one `superseded`)
    and the product `listed` with that version and certificate, back in the catalog and index.

    Allowed while the product is in review, listed or suspended. Raises NotFound, InvalidTransition.
    """
    product = _load(session, product_id, lock=True)
    if product.status not in (ProductStatus.IN_REVIEW, *ONCE_LISTED_STATUSES):
        raise InvalidTransition(f"A {product.status} product cannot be listed.",
                                next_step="submit the product for certification first; only an approved "
                                          "certification lists it")
    if not isinstance(certificate_number, str) or not 1 <= len(certificate_number) <= 40:
        raise field_error("certificate_number", "must be 1..40 characters")
    revision = get_version(session, product_id=product.id, version=version)
    why = f"certified: certificate {certificate_number}"
    _move_version(session, product, revision, VersionStatus.CERTIFIED, reason=why, actor=actor)
    if product.listed_version is not None and product.listed_version != revision.version:
        previous = get_version(session, product_id=product.id, version=product.listed_version)
        if previous.status == VersionStatus.CERTIFIED:
            _move_version(session, product, previous, VersionStatus.SUPERSEDED,
                          reason=f"superseded by version {revision.version}", actor=actor)
    product.listed_version = revision.version
    product.certificate_number = certificate_number
    product.listed_at = utcnow()
    product.updated_at = utcnow()
    _copy_catalog_columns(product, revision.body())
    if product.status != ProductStatus.LISTED:
        _move_product(session, product, ProductStatus.LISTED, reason=why, actor=actor)
    session.flush()
    search.index_product(session, product, revision)
    session.flush()
    return product


def suspend(session: Session, *, product_id: str, reason: str, actor: Principal | None = None) -> Product:
    """Take a listed product out of the catalog and the search index (e.g. certificate suspended).

    Raises NotFound, InvalidTransition.
    """
    product = _load(session, product_id, lock=True)
    _move_product(session, product, ProductStatus.SUSPENDED, reason=reason, actor=actor)
    search.unindex_product(session, product)
    session.flush()
    return product


def reinstate(session: Session, *, product_id: str, reason: str, actor: Principal | None = None) -> Product:
    """Put a suspended product back in the catalog with its listed version. Raises NotFound, InvalidTransition."""
    product = _load(session, product_id, lock=True)
    if product.status != ProductStatus.SUSPENDED:
        # in_review -> listed is certification's path (mark_listed), never a reinstatement.
        raise InvalidTransition(f"Only a suspended product can be reinstated (this one is {product.status}).",
                                next_step=PRODUCT_TRANSITIONS.next_step(product.status))
    _move_product(session, product, ProductStatus.LISTED, reason=reason, actor=actor)
    session.flush()
    search.index_product(session, product, shown_version(session, product))
    session.flush()
    return product


def delist(session: Session, *, product_id: str, reason: str, actor: Principal) -> Product:
    """Withdraw a product from sale for good (never a hard delete): its owner or an operator.

    Raises NotFound, Forbidden, Conflict (a revision is in review: withdraw the certification first),
    InvalidTransition (already delisted, or in review).
    """
    product = _load(session, product_id, lock=True)
    if not can_manage(product, actor):
        if product.status == ProductStatus.LISTED:
            raise Forbidden("Only the product's owner or an operator may delist it.",
                            next_step="ask the product's owner or the exchange's operators to delist it")
        raise NotFound("No such product.")
    if actor.org_id == product.owner_org_id:
        actor.require_verified("changes to products")
    latest = get_version(session, product_id=product.id, version=product.latest_version)
    if latest.status == VersionStatus.IN_REVIEW:
        raise Conflict(f"Version {latest.version} is under review; withdraw the certification request first.",
                       next_step="withdraw the certification request first, or wait for its decision")
    _move_product(session, product, ProductStatus.DELISTED, reason=reason, actor=actor)
    search.unindex_product(session, product)
    session.flush()
    return product


# -- views -----------------------------------------------------------------------------------------

def product_shown(product: Product, version: ProductVersion, relevance: float | None = None) -> Facts:
    """The API's product: the shown revision's fields with the product's status and certificate
    (`ProductSchema` shows `latest_version` to those who manage it)."""
    facts: dict[str, Any] = {**version.body(), "version": version.version, "version_status": version.status}
    if relevance is not None:
        facts["relevance"] = round(relevance, 6)
    return Facts(product, **facts)


def version_shown(version: ProductVersion) -> Facts:
    """A revision: its product, number, status and times with the fields of its body as stored."""
    return Facts(version, **version.body())


# -- fair figures pushed down by trading --------------------------------------------------------------

def record_fair_signing(session: Session, *, fair_id: str) -> None:
    """Count a contract signed on site at a fair (its money counts once paid: `record_fair_sale`).

    Called by trading when a contract made at a fair is signed. Concurrent calls add up (a single
    UPDATE). Raises NotFound (unknown fair).
    """
    counted = session.execute(
        update(Fair).where(Fair.id == fair_id)
        .values(contracts_signed_on_site=Fair.contracts_signed_on_site + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:
        raise NotFound("No such fair.")


def record_fair_sale(session: Session, *, fair_id: str, ref: str, currency: str, amount: int) -> None:
    """Set what the trade `ref` made at a fair brought in: the money that reached escrow less its
    refunds (trading calls it when the trade is escrowed and when a refund changes it; calling it
    again with the same figure changes nothing). One row per trade, summed exactly on read, so no
    number of trades can overflow a stored total. Raises NotFound (unknown fair), ValidationFailed
    (bad money, or a trade moved to another fair or currency)."""
    if currency not in CURRENCIES:
        raise field_error("currency", f"must be one of {', '.join(CURRENCIES)}")
    if type(amount) is not int or not 0 <= amount <= MAX_AMOUNT:
        raise field_error("amount", "must be a non-negative integer of minor units")
    if session.execute(select(Fair.id).where(Fair.id == fair_id)).first() is None:
        raise NotFound("No such fair.")
    kept = session.execute(
        upsert(session, FairSale, dict(ref=ref, fair_id=fair_id, currency=currency, amount=amount),
               index_elements=["ref"], set_={"amount": amount},
               where=(FairSale.fair_id == fair_id) & (FairSale.currency == currency))
        .returning(FairSale.ref)
    ).first()
    if kept is None:
        raise field_error("ref", "this trade was recorded at another fair or in another currency")
