"""HTTP routes of the catalog (products, revisions, search) and the exhibition (fairs, stalls)."""

from __future__ import annotations

from typing import Any

from exchange.api import AUTH, OPTIONAL_AUTH, Blueprint, paginate
from exchange.db import db, read_session
from exchange.fields import PaginationArgsSchema
from exchange.principal import current_principal
from listings import catalog, fairs, services
from listings.models import Product
from listings.schemas import (
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
@blp.arguments(ProductCreateSchema)
@blp.response(201, ProductSchema)
@blp.doc(security=AUTH)
@blp.problems(400, 401, 403, 409, 413, 415, 422)
def create_product(data: dict[str, Any]) -> Any:
    """Verified vendors register a data product (version 1, `draft`)."""
    principal = current_principal()
    product = services.create_product(db.session, data=data, actor=principal)
    return _product(product)


@blp.route("/products", methods=["GET"])
@blp.arguments(ProductQueryArgsSchema, location="query")
@blp.response(200, ProductPageSchema)
@blp.doc(security=OPTIONAL_AUTH)
@blp.problems(401, 403, 422)
def search_products(args: dict[str, Any]) -> Any:
    """The public catalog of listed products: full text (`q`, Chinese and English), filters, sorts.
    A suspended vendor's products are out of it until the vendor is reinstated.

    `?mine=true` (with a token) lists the caller's own products in every status instead.
    """
    principal = current_principal(required=bool(args.get("mine")))
    # The public catalog tolerates a replica's lag; a vendor's own list (`mine`) reads its writes.
    session = db.session if args.get("mine") else read_session()
    page = catalog.search_catalog(session, principal=principal, **args)
    page["items"] = [services.product_shown(p, v, relevance=r) for p, v, r in page["items"]]
    return page


@blp.route("/products/<product_id>", methods=["GET"])
@blp.response(200, ProductSchema)
@blp.doc(security=OPTIONAL_AUTH)
@blp.problems(401, 404)
def get_product(product_id: str) -> Any:
    """A product: listed ones for anyone (the certified version); others for the owner and operators."""
    principal = current_principal(required=False)
    return _product(services.get_product(db.session, product_id=product_id, principal=principal))


@blp.route("/products/<product_id>", methods=["PATCH"])
@blp.arguments(ProductUpdateSchema)
@blp.response(200, ProductPatchResultSchema)
@blp.doc(security=AUTH)
@blp.problems(400, 401, 403, 404, 409, 413, 415, 422)
def update_product(data: dict[str, Any], product_id: str) -> Any:
    """The owner edits a product: a draft in place (answers the product); a listed one through its
    draft revision `version+1` (answers the revision). A revision under review is frozen (409).
    """
    principal = current_principal()
    result = services.update_product(db.session, product_id=product_id, changes=data, actor=principal)
    if isinstance(result, Product):
        return _product(result)
    return services.version_shown(result)


@blp.route("/products/<product_id>", methods=["DELETE"])
@blp.response(200, ProductSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 404, 409)
def delist_product(product_id: str) -> Any:
    """The owner withdraws a product from sale: `delisted` (never a hard delete)."""
    principal = current_principal()
    product = services.delist(db.session, product_id=product_id, reason="delisted by its owner", actor=principal)
    return _product(product)


@blp.route("/products/<product_id>/versions", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, ProductVersionPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404, 422)
def list_versions(args: dict[str, Any], product_id: str) -> Any:
    """Every revision of a product, newest first (owner and operators)."""
    stmt = services.list_versions(db.session, product_id=product_id, principal=current_principal())
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = [services.version_shown(v) for v in page["items"]]
    return page


@blp.route("/products/<product_id>/history", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, ProductTransitionPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404, 422)
def product_history(args: dict[str, Any], product_id: str) -> Any:
    """The status history of a product and its revisions: who, when, why (owner and operators)."""
    stmt = services.history(db.session, product_id=product_id, principal=current_principal())
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


# -- fairs and stalls ------------------------------------------------------------------------------

@fairs_blp.route("/fairs", methods=["GET"])
@fairs_blp.arguments(FairListArgsSchema, location="query")
@fairs_blp.response(200, FairPageSchema)
@fairs_blp.problems(422)
def list_fairs(args: dict[str, Any]) -> Any:
    """Fairs, soonest first (public); `?phase=upcoming|live|ended`."""
    stmt = fairs.list_fairs(phase=args.get("phase"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = fairs.shown_page(db.session, page["items"])
    return page


@fairs_blp.route("/fairs", methods=["POST"])
@fairs_blp.arguments(FairCreateSchema)
@fairs_blp.response(201, FairSchema)
@fairs_blp.doc(security=AUTH)
@fairs_blp.problems(400, 401, 403, 415, 422)
def create_fair(data: dict[str, Any]) -> Any:
    """Operators schedule a fair (`ends_at` after `starts_at`)."""
    fair = fairs.create_fair(db.session, actor=current_principal(), **data)
    return fairs.shown(db.session, fair)


@fairs_blp.route("/fairs/<fair_id>", methods=["GET"])
@fairs_blp.response(200, FairSchema)
@fairs_blp.problems(404)
def get_fair(fair_id: str) -> Any:
    """A fair with its stats: stalls, products on show, contracts signed on site and their volume."""
    return fairs.shown(db.session, fairs.get_fair(db.session, fair_id=fair_id))


@fairs_blp.route("/fairs/<fair_id>/stalls", methods=["GET"])
@fairs_blp.arguments(PaginationArgsSchema, location="query")
@fairs_blp.response(200, StallPageSchema)
@fairs_blp.problems(404, 422)
def list_stalls(args: dict[str, Any], fair_id: str) -> Any:
    """The stalls of a fair by code, each with its listed products on show (public; a suspended
    vendor's are not on show)."""
    stmt = fairs.list_stalls(db.session, fair_id=fair_id)
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = fairs.stall_views(db.session, page["items"])
    return page


@fairs_blp.route("/fairs/<fair_id>/stalls", methods=["POST"])
@fairs_blp.arguments(StallCreateSchema)
@fairs_blp.response(201, StallSchema)
@fairs_blp.doc(security=AUTH)
@fairs_blp.problems(400, 401, 403, 404, 409, 415, 422)
def create_stall(data: dict[str, Any], fair_id: str) -> Any:
    """Operators give a verified vendor a stall (code unique per fair) showing its listed products."""
    stall = fairs.create_stall(db.session, fair_id=fair_id, actor=current_principal(), **data)
    return fairs.stall_views(db.session, [stall])[0]


@fairs_blp.route("/fairs/<fair_id>/stalls/<stall_id>", methods=["PATCH"])
@fairs_blp.arguments(StallUpdateSchema)
@fairs_blp.response(200, StallSchema)
@fairs_blp.doc(security=AUTH)
@fairs_blp.problems(400, 401, 403, 404, 415, 422)
def update_stall(data: dict[str, Any], fair_id: str, stall_id: str) -> Any:
    """Operators replace the products a stall shows (listed products of its organization only)."""
    stall = fairs.set_stall_products(db.session, fair_id=fair_id, stall_id=stall_id,
                                     product_ids=data["product_ids"], actor=current_principal())
    return fairs.stall_views(db.session, [stall])[0]
