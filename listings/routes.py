"""HTTP routes of the catalog (products, revisions, search) and the exhibition (fairs, stalls)."""

from __future__ import annotations

from typing import Any

from exchange.api import AUTH, OPTIONAL_AUTH, Blueprint, paginate
from exchange.db import db, read_session
from exchange.fields import PaginationArgsSchema
from exchange.principal import current_principal, operators_only
from listings import catalog, fairs, services
from listings.models import Product
from listings.schemas import (
    DELISTED_PRODUCT_EXAMPLE,
    FAIR_CREATE_EXAMPLE,
    FAIR_EXAMPLE,
    FAIR_PAGE_EXAMPLE,
    LISTED_PRODUCT_EXAMPLE,
    LIVE_FAIR_EXAMPLE,
    PRODUCT_CREATE_EXAMPLE,
    PRODUCT_EXAMPLE,
    PRODUCT_PAGE_EXAMPLE,
    PRODUCT_TRANSITION_PAGE_EXAMPLE,
    PRODUCT_UPDATE_EXAMPLE,
    PRODUCT_UPDATE_RESPONSE_EXAMPLES,
    PRODUCT_VERSION_PAGE_EXAMPLE,
    STALL_CREATE_EXAMPLE,
    STALL_EXAMPLE,
    STALL_PAGE_EXAMPLE,
    STALL_UPDATE_EXAMPLE,
    STALL_UPDATED_EXAMPLE,
    FairCreateSchema,
    FairListArgsSchema,
    FairPageSchema,
    FairSchema,
    ProductCreateSchema,
    ProductPageSchema,
    ProductPatchResultSchema,
    ProductQueryArgsSchema,
    ProductSchema,
    ProductTransitionPageSchema,
    ProductUpdateSchema,
    ProductVersionPageSchema,
    StallCreateSchema,
    StallPageSchema,
    StallSchema,
    StallUpdateSchema,
)

blp = Blueprint("products", __name__, url_prefix="/api/v1", description="Data products: catalog, revisions, search")
fairs_blp = Blueprint("fairs", __name__, url_prefix="/api/v1", description="Fairs and stalls (the exhibition)")


def _product(product: Product) -> Any:
    return services.product_shown(product, services.shown_version(db.session, product))


@blp.route("/products", methods=["POST"])
@blp.authorize(services.check_may_create)
@blp.arguments(ProductCreateSchema, example=PRODUCT_CREATE_EXAMPLE)
@blp.response(201, ProductSchema, example=PRODUCT_EXAMPLE)
@blp.doc(security=AUTH, operationId="createProduct")
@blp.problems(400, 401, 403, 409, 413, 415, 422)
def create_product(data: dict[str, Any]) -> Any:
    """Register a data product

    Who: a member of a verified vendor organization (others 403). Creates the product and its first
    revision, both `draft` (version 1), owned by the caller's organization; nothing is public until a
    certification lists it. The body carries every registration field (`sample`, `coverage` and
    `volume` may be left out or null). Errors: 401 without a valid token, 403 not a verified vendor or a
    suspended organization, 422 a field missing, unknown or out of range (each named in `errors`),
    400/413/415 a malformed, oversized or non-JSON body.
    """
    principal = current_principal()
    product = services.create_product(db.session, data=data, actor=principal)
    return _product(product)


@blp.route("/products", methods=["GET"])
@blp.arguments(ProductQueryArgsSchema, location="query")
@blp.response(200, ProductPageSchema, example=PRODUCT_PAGE_EXAMPLE)
@blp.doc(security=OPTIONAL_AUTH, operationId="listProducts")
@blp.problems(401, 403, 422)
def search_products(args: dict[str, Any]) -> Any:
    """Search the catalog of listed products

    Who: anyone (no token needed). Answers the `listed` products, each in its certified version:
    full text (`q`, Chinese and English; `relevance` is set then), filters (category, regions,
    delivery mode, classification, price model, currency and amount range, vendor, fair) and sorts.
    A suspended vendor's products are out of it until the vendor is reinstated. `?mine=true` (with a
    token) lists the caller's own products in every status instead. Changes nothing. Errors: 401
    `mine` without a valid token, 422 an unknown filter value, `max_amount` below `min_amount` or
    `sort=relevance` without `q`.
    """
    principal = current_principal(required=bool(args.get("mine")))
    # The public catalog tolerates a replica's lag; a vendor's own list (`mine`) reads its writes.
    session = db.session if args.get("mine") else read_session()
    page = catalog.search_catalog(session, principal=principal, **args)
    page["items"] = [services.product_shown(p, v, relevance=r) for p, v, r in page["items"]]
    return page


@blp.route("/products/<product_id>", methods=["GET"])
@blp.response(200, ProductSchema, example=LISTED_PRODUCT_EXAMPLE)
@blp.doc(security=OPTIONAL_AUTH, operationId="getProduct")
@blp.problems(401, 404)
def get_product(product_id: str) -> Any:
    """Get a product

    Who: anyone for a `listed` product (shown in its certified version); the owner and operators for
    a product in any status (`draft`, `in_review`, `suspended`, `delisted`; they also see
    `latest_version`, the newest revision). Changes nothing. Errors: 401 an invalid token, 404 no such
    product or not visible to the caller.
    """
    principal = current_principal(required=False)
    return _product(services.get_product(db.session, product_id=product_id, principal=principal))


@blp.route("/products/<product_id>", methods=["PATCH"])
@blp.authorize(services.check_may_change)
@blp.arguments(ProductUpdateSchema, example=PRODUCT_UPDATE_EXAMPLE)
@blp.response(200, ProductPatchResultSchema, examples=PRODUCT_UPDATE_RESPONSE_EXAMPLES)
@blp.doc(security=AUTH, operationId="updateProduct")
@blp.problems(400, 401, 403, 404, 409, 413, 415, 422)
def update_product(data: dict[str, Any], product_id: str) -> Any:
    """Edit a product

    Who: the owner organization's members. Send only the fields to change (at least one). A
    never-listed `draft` is edited in place and the product is answered; a `listed` (or `suspended`)
    product keeps selling its certified version while the edit goes to its draft revision
    `version+1` (created on the first edit), and the revision is answered; certify it to list it.
    Errors: 403 not the owner, 404 no such product, 409 the open revision is `in_review` (frozen
    until its certification ends) or the product is `delisted`, 422 an invalid or empty body.
    """
    principal = current_principal()
    result = services.update_product(db.session, product_id=product_id, changes=data, actor=principal)
    if isinstance(result, Product):
        return _product(result)
    return services.version_shown(result)


@blp.route("/products/<product_id>", methods=["DELETE"])
@blp.response(200, ProductSchema, example=DELISTED_PRODUCT_EXAMPLE)
@blp.doc(security=AUTH, operationId="deleteProduct")
@blp.problems(401, 403, 404, 409)
def delist_product(product_id: str) -> Any:
    """Delist a product

    Who: the owner organization's members, or an operator. Withdraws the product from sale for
    good: its status becomes `delisted` (from `draft`, `listed` or `suspended`); the row and its
    history are kept, never hard-deleted, and the delisted product is answered. Errors: 403 neither
    owner nor operator, 404 no such product, 409 already `delisted`, or a revision is `in_review`
    (withdraw the certification request first).
    """
    principal = current_principal()
    product = services.delist(db.session, product_id=product_id, reason="delisted by its owner", actor=principal)
    return _product(product)


@blp.route("/products/personal-info-missing", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, ProductVersionPageSchema, example=PRODUCT_VERSION_PAGE_EXAMPLE)
@blp.doc(security=AUTH, operationId="listProductsMissingPersonalInfo")
@blp.problems(401, 403, 422)
def missing_personal_info(args: dict[str, Any]) -> Any:
    """List listed versions that must be revised with personal_info

    Who: operators only (others 403). The listed versions that contain personal information but
    were certified before `personal_info` (individuals covered, sensitive) existed: their
    certificates and digests stand, but cross-border offers on them answer 409 until the vendor
    certifies a revision stating it. Oldest listed first. Changes nothing. Errors: 401 no valid
    token, 403 not an operator, 422 bad paging.
    """
    stmt = services.missing_personal_info(principal=current_principal())
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = [services.version_shown(v) for v in page["items"]]
    return page


@blp.route("/products/<product_id>/versions", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, ProductVersionPageSchema, example=PRODUCT_VERSION_PAGE_EXAMPLE)
@blp.doc(security=AUTH, operationId="listProductVersions")
@blp.problems(401, 404, 422)
def list_versions(args: dict[str, Any], product_id: str) -> Any:
    """List a product's revisions

    Who: the owner organization and operators. Every revision, newest first, each with its own
    status (`draft`, `in_review`, `certified`, `superseded`, `rejected`) and full body. Changes
    nothing. Errors: 401 no valid token, 404 no such product or not the caller's, 422 bad paging.
    """
    stmt = services.list_versions(db.session, product_id=product_id, principal=current_principal())
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = [services.version_shown(v) for v in page["items"]]
    return page


@blp.route("/products/<product_id>/history", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, ProductTransitionPageSchema, example=PRODUCT_TRANSITION_PAGE_EXAMPLE)
@blp.doc(security=AUTH, operationId="listProductHistory")
@blp.problems(401, 404, 422)
def product_history(args: dict[str, Any], product_id: str) -> Any:
    """List a product's status history

    Who: the owner organization and operators. Every status change of the product and of its
    revisions, oldest first: from, to, why, who (null for the system, e.g. a certificate issued by
    a notice that ended) and when. Changes nothing. Errors: 401 no valid token, 404 no such product
    or not the caller's, 422 bad paging.
    """
    stmt = services.history(db.session, product_id=product_id, principal=current_principal())
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


# -- fairs and stalls ------------------------------------------------------------------------------

@fairs_blp.route("/fairs", methods=["GET"])
@fairs_blp.arguments(FairListArgsSchema, location="query")
@fairs_blp.response(200, FairPageSchema, example=FAIR_PAGE_EXAMPLE)
@fairs_blp.doc(operationId="listFairs")
@fairs_blp.problems(422)
def list_fairs(args: dict[str, Any]) -> Any:
    """List fairs

    Who: anyone (no token). Fairs soonest first, each with its phase against the clock and its
    stats; `?phase=upcoming|live|ended` keeps one phase. Changes nothing. Errors: 422 an unknown
    phase or bad paging.
    """
    stmt = fairs.list_fairs(phase=args.get("phase"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = fairs.shown_page(db.session, page["items"])
    return page


@fairs_blp.route("/fairs", methods=["POST"])
@fairs_blp.authorize(operators_only)
@fairs_blp.arguments(FairCreateSchema, example=FAIR_CREATE_EXAMPLE)
@fairs_blp.response(201, FairSchema, example=FAIR_EXAMPLE)
@fairs_blp.doc(security=AUTH, operationId="createFair")
@fairs_blp.problems(400, 401, 403, 415, 422)
def create_fair(data: dict[str, Any]) -> Any:
    """Schedule a fair

    Who: operators only. Creates a fair with its venue and time window (UTC); its phase
    (`upcoming`, `live`, `ended`) follows the clock and its stats start at zero. Errors: 401 no
    valid token, 403 not an operator, 422 a missing field or `ends_at` not after `starts_at`.
    """
    fair = fairs.create_fair(db.session, actor=current_principal(), **data)
    return fairs.shown(db.session, fair)


@fairs_blp.route("/fairs/<fair_id>", methods=["GET"])
@fairs_blp.response(200, FairSchema, example=LIVE_FAIR_EXAMPLE)
@fairs_blp.doc(operationId="getFair")
@fairs_blp.problems(404)
def get_fair(fair_id: str) -> Any:
    """Get a fair with its stats

    Who: anyone (no token). The fair with its stats: stalls, listed products on show, contracts
    signed on site and, per currency, the money those trades brought into escrow less refunds.
    Changes nothing. Errors: 404 no such fair.
    """
    return fairs.shown(db.session, fairs.get_fair(db.session, fair_id=fair_id))


@fairs_blp.route("/fairs/<fair_id>/stalls", methods=["GET"])
@fairs_blp.arguments(PaginationArgsSchema, location="query")
@fairs_blp.response(200, StallPageSchema, example=STALL_PAGE_EXAMPLE)
@fairs_blp.doc(operationId="listStalls")
@fairs_blp.problems(404, 422)
def list_stalls(args: dict[str, Any], fair_id: str) -> Any:
    """List a fair's stalls

    Who: anyone (no token). The stalls of a fair ordered by code, each with the products on show:
    only those `listed` now (a suspended vendor's are not on show). Changes nothing. Errors: 404
    no such fair, 422 bad paging.
    """
    stmt = fairs.list_stalls(db.session, fair_id=fair_id)
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = fairs.stall_views(db.session, page["items"])
    return page


@fairs_blp.route("/fairs/<fair_id>/stalls", methods=["POST"])
@fairs_blp.authorize(operators_only)
@fairs_blp.arguments(StallCreateSchema, example=STALL_CREATE_EXAMPLE)
@fairs_blp.response(201, StallSchema, example=STALL_EXAMPLE)
@fairs_blp.doc(security=AUTH, operationId="createStall")
@fairs_blp.problems(400, 401, 403, 404, 409, 415, 422)
def create_stall(data: dict[str, Any], fair_id: str) -> Any:
    """Give a vendor a stall at a fair

    Who: operators only. Creates a stall for a verified vendor organization under a code unique in
    the fair, optionally showing some of that vendor's `listed` products. Errors: 403 not an
    operator, 404 no such fair, 409 the code is taken in this fair, 422 the organization is not a
    verified vendor, a product is not its own or not listed, or the code is malformed.
    """
    stall = fairs.create_stall(db.session, fair_id=fair_id, actor=current_principal(), **data)
    return fairs.stall_views(db.session, [stall])[0]


@fairs_blp.route("/fairs/<fair_id>/stalls/<stall_id>", methods=["PATCH"])
@fairs_blp.authorize(operators_only)
@fairs_blp.arguments(StallUpdateSchema, example=STALL_UPDATE_EXAMPLE)
@fairs_blp.response(200, StallSchema, example=STALL_UPDATED_EXAMPLE)
@fairs_blp.doc(security=AUTH, operationId="updateStall")
@fairs_blp.problems(400, 401, 403, 404, 415, 422)
def update_stall(data: dict[str, Any], fair_id: str, stall_id: str) -> Any:
    """Replace the products a stall shows

    Who: operators only. `product_ids` replaces the stall's whole list (an empty list clears it);
    each must be a `listed` product of the stall's organization. Errors: 403 not an operator, 404
    no such fair or stall, 422 a product that is not the organization's or not listed.
    """
    stall = fairs.set_stall_products(db.session, fair_id=fair_id, stall_id=stall_id,
                                     product_ids=data["product_ids"], actor=current_principal())
    return fairs.stall_views(db.session, [stall])[0]
