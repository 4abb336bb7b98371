"""The catalog: one page of listed products (or the caller's own), full text, filters and sorts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, or_, select
from sqlalchemy.orm import Session

from exchange.api import paginate
from exchange.db import dialect_name
from exchange.errors import Forbidden, field_error
from exchange.principal import Principal
from listings import search
from listings import services as listings
from listings.models import Product, ProductVersion, Stall, StallProduct


def search_catalog(session: Session, *, principal: Principal | None, q: str | None = None,
                   mine: bool = False, sort: str | None = None, page: int = 1, per_page: int = 20,
                   category: str | None = None, origin_region: str | None = None,
                   delivery_mode: str | None = None, classification: str | None = None,
                   price_model: str | None = None, currency: str | None = None,
                   min_amount: int | None = None, max_amount: int | None = None,
                   vendor_id: str | None = None, fair_id: str | None = None) -> dict[str, Any]:
    """One page of the catalog: listed products (or, with `mine`, the caller's own in any status),
    filtered, full-text searched and sorted. Items are `(product, version shown, relevance)`.

    Raises Unauthorized via the route for `mine` without a token; ValidationFailed for bad combinations.
    """
    q = (q or "").strip()
    if sort == "relevance" and not q:
        raise field_error("sort", "relevance needs a search query q")
    if min_amount is not None and max_amount is not None and min_amount > max_amount:
        raise field_error("max_amount", "must not be below min_amount")
    stmt = select(Product)
    score = None
    if mine:
        if principal is None:
            raise Forbidden("`mine` lists the caller's own products: send a token.",
                            next_step="sign in and send the access token, or leave out `mine`")
        stmt = stmt.where(Product.owner_org_id == principal.org_id)
        if q:
            stmt = stmt.where(_own_text_filter(q))
    else:
        stmt = stmt.where(listings.in_catalog(session))
        if q:
            terms = search.query_terms(q)
            if not terms:
                return {"items": [], "total": 0, "page": page, "per_page": per_page}
            stmt, score = search.match(session, stmt, terms)
    filters = {"category": category, "origin_region": origin_region, "delivery_mode": delivery_mode,
               "classification": classification, "price_model": price_model, "price_currency": currency,
               "owner_org_id": vendor_id}
    for name, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(Product, name) == value)
    if min_amount is not None:
        stmt = stmt.where(Product.price_amount >= min_amount)
    if max_amount is not None:
        stmt = stmt.where(Product.price_amount <= max_amount)
    if fair_id is not None:
        on_show = select(StallProduct.product_id).join(Stall, Stall.id == StallProduct.stall_id).where(
            Stall.fair_id == fair_id)
        stmt = stmt.where(Product.id.in_(on_show))
    sort = sort or ("relevance" if score is not None else "newest")
    if score is not None and dialect_name(session) == "postgresql":
        result = _ranked_page(session, stmt, score, sort=sort, page=page, per_page=per_page)
    else:
        relevance = (score if score is not None else literal_column("NULL")).label("relevance")
        stmt = stmt.add_columns(relevance).order_by(*_order(sort, Product, relevance, mine=mine))
        result = paginate(session, stmt, page=page, per_page=per_page, scalars=False)
    products = [row[0] for row in result["items"]]
    versions = shown_versions(session, products)
    result["items"] = [(p, versions[p.id], None if r is None else float(r)) for p, r in result["items"]]
    return result


def _ranked_page(session: Session, stmt: Select, score: ColumnElement[float], *, sort: str, page: int,
                 per_page: int) -> dict[str, Any]:
    """`exchange.api.paginate` for full-text results on PostgreSQL: rank, count and page in one pass.

    Ranking reads every match anyway, so a window count over narrow rows (id, sort keys, rank) is
    nearly free, where a second query would match everything again; the page's 20 products are
    joined at the end. OFFSET 0 keeps the ranked subquery from being flattened (the window would
    then carry every match's tsvector). Past the last page, count apart. (SQLite refuses FTS5's
    bm25() next to a window function; it takes the plain path, its separate count is cheap.)
    """
    keys = (Product.id, Product.listed_at, Product.price_amount, Product.created_at)
    ranked = stmt.with_only_columns(*keys, score.label("relevance")).offset(0).subquery("ranked")
    order = _order(sort, ranked.c, ranked.c.relevance, mine=False)
    window = (select(ranked.c.id, ranked.c.relevance, func.count().over().label("total_matches"),
                     *(ranked.c[k.key] for k in keys[1:]))
              .order_by(*order).limit(per_page).offset((page - 1) * per_page).subquery("page"))
    rows = session.execute(
        select(Product, window.c.relevance, window.c.total_matches).join(window, window.c.id == Product.id)
        .order_by(*_order(sort, window.c, window.c.relevance, mine=False))
    ).all()
    if rows:
        total = rows[0].total_matches
    elif page == 1:
        total = 0
    else:
        total = session.execute(select(func.count()).select_from(ranked)).scalar_one()
    return {"items": [(row[0], row[1]) for row in rows], "total": total, "page": page, "per_page": per_page}


def _order(sort: str, cols: Any, relevance: Any, *, mine: bool) -> list[Any]:
    """ORDER BY for a sort, over Product or a subquery's columns of the same names."""
    if mine:
        # The caller's own products include never-listed drafts (no listed_at).
        newest = [cols.listed_at.desc().nulls_last(), cols.created_at.desc(), cols.id.desc()]
    else:
        newest = [cols.listed_at.desc(), cols.id.desc()]
    if sort == "relevance" and relevance is not None:
        return [relevance.desc(), *newest]
    if sort == "price_asc":
        return [cols.price_amount.asc(), cols.id.asc()]
    if sort == "price_desc":
        return [cols.price_amount.desc(), cols.id.desc()]
    return newest


def _own_text_filter(q: str) -> Any:
    """`mine` is a small set: a plain substring match over the shown revision's text."""
    needle = q.lower()
    shown = func.coalesce(Product.listed_version, Product.latest_version)
    texts = select(ProductVersion.product_id).where(
        ProductVersion.product_id == Product.id, ProductVersion.version == shown,
        or_(*(func.lower(col).contains(needle, autoescape=True)
              for col in (ProductVersion.title, ProductVersion.summary, ProductVersion.description))),
    )
    return texts.exists()


def shown_versions(session: Session, products: Sequence[Product]) -> dict[str, ProductVersion]:
    """The shown revision of each product, in one query (by primary-key prefix: a product has few)."""
    if not products:
        return {}
    wanted = {p.id: p.shown_version for p in products}
    rows = session.execute(select(ProductVersion).where(ProductVersion.product_id.in_(list(wanted)))).scalars()
    return {v.product_id: v for v in rows if wanted[v.product_id] == v.version}
