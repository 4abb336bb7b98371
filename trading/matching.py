"""Docking supply with demand, explained.

Two stages. Retrieval is index-backed and bounded: the newest listed products in the
procurement's category, those of them matching any keyword or the title, and any matching every
keyword, through the catalog's full-text index (both engines), at most a few hundred candidates.
Ranking is `score()`, a pure function over plain values: text relevance, category, keyword
overlap, price against budget (over budget ranks lower, never hidden), delivery mode, data
freshness and the vendor's track record. Only products in the catalog (listed, their vendor not
suspended) with a valid certificate that the buyer may lawfully buy (cross-border rules) are
returned; a vendor's view of the demand its product answers leaves out suspended buyers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from certification.crossborder import may_transfer
from certification.models import Certificate
from certification.states import CertificateStatus
from certification.whitelist import live_entries
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden
from exchange.events import outbox
from exchange.fields import Facts
from exchange.identity.models import Organization
from exchange.principal import Principal
from listings import search
from listings import services as listings
from listings.models import Product, ProductVersion
from listings.states import ProductStatus
from trading import procurements
from trading.models import Contract, Procurement
from trading.states import ContractStatus, ProcurementStatus

CANDIDATES_PER_SOURCE = 60
WEIGHTS = {"category": 0.30, "keywords": 0.30, "text": 0.10, "price": 0.15, "delivery": 0.05,
           "freshness": 0.05, "track_record": 0.05}
FRESHNESS = {"realtime": 1.0, "daily": 0.8, "weekly": 0.5, "monthly": 0.3, "once": 0.0}


@dataclass(frozen=True)
class Demand:
    category: str
    keywords: tuple[str, ...]
    budget_amount: int
    budget_currency: str
    delivery_mode: str | None = None


@dataclass(frozen=True)
class Supply:
    product_id: str
    category: str
    keywords: tuple[str, ...]
    title: str
    price_amount: int
    price_currency: str
    price_model: str
    delivery_mode: str
    update_frequency: str
    text_relevance: float = 0.0  # 0..1: share of the demand's queries that found this product
    vendor_contracts: int = 0


@dataclass(frozen=True)
class Match:
    product_id: str
    score: float
    reasons: list[str] = field(default_factory=list)


@lru_cache(maxsize=65536)
def _norm(word: str) -> str:
    # Pure and called for every keyword of every candidate: catalog words repeat, so cache them.
    return search.normalize(word).strip()


def score(demand: Demand, supply: Supply) -> tuple[float, list[str]]:
    """How well `supply` answers `demand`: a score in [0, 1] and the reasons, human-readable. Pure."""
    total, reasons = 0.0, []
    if supply.category == demand.category:
        total += WEIGHTS["category"]
        reasons.append("category")
    wanted = [k for k in dict.fromkeys(_norm(k) for k in demand.keywords) if k]
    if wanted:
        have = {_norm(k) for k in supply.keywords}
        title = _norm(supply.title)
        hits = [k for k in wanted if k in have or k in title]
        if hits:
            total += WEIGHTS["keywords"] * len(hits) / len(wanted)
            reasons.append("keywords: " + ", ".join(hits))
    relevance = min(max(supply.text_relevance, 0.0), 1.0)
    if relevance > 0:
        total += WEIGHTS["text"] * relevance
        reasons.append("text match")
    if supply.price_currency != demand.budget_currency:
        reasons.append(f"priced in {supply.price_currency} (budget in {demand.budget_currency})")
    elif supply.price_model == "negotiable":
        total += WEIGHTS["price"] * 0.7
        reasons.append("negotiable price")
    elif supply.price_amount <= demand.budget_amount:
        total += WEIGHTS["price"]
        reasons.append("within budget")
    else:
        over = (supply.price_amount - demand.budget_amount) * 100 // demand.budget_amount
        total += WEIGHTS["price"] * 0.5 * demand.budget_amount / supply.price_amount
        reasons.append(f"over budget by {over}%")
    if demand.delivery_mode is None or demand.delivery_mode == supply.delivery_mode:
        total += WEIGHTS["delivery"]
        if demand.delivery_mode:
            reasons.append(f"delivery: {supply.delivery_mode}")
    else:
        reasons.append(f"delivery is {supply.delivery_mode}, not {demand.delivery_mode}")
    fresh = FRESHNESS.get(supply.update_frequency, 0.0)
    if fresh:
        total += WEIGHTS["freshness"] * fresh
        if fresh >= 0.8:
            reasons.append(f"fresh data ({supply.update_frequency})")
    if supply.vendor_contracts > 0:
        total += WEIGHTS["track_record"] * min(supply.vendor_contracts, 10) / 10
        reasons.append(f"vendor track record: {supply.vendor_contracts} contract(s)")
    return round(min(total, 1.0), 4), reasons


def rank(demand: Demand, supplies: Iterable[Supply], limit: int) -> list[Match]:
    scored = [Match(s.product_id, *score(demand, s)) for s in supplies]
    scored.sort(key=lambda m: (-m.score, m.product_id))
    return scored[:limit]


def _queries(proc: Procurement) -> list[str]:
    return [q for q in dict.fromkeys([*(proc.keywords or []), proc.title]) if q and q.strip()][:21]


def _supplies(session: Session, proc: Procurement, buyer: Organization, now: datetime) -> list[Supply]:
    """Stage one: candidates from the catalog's index, kept when they have a valid certificate and
    the buyer may lawfully buy them.

    Three bounded parts, each newest first and cut at CANDIDATES_PER_SOURCE: the procurement's
    category; the category's products matching any of the demand's queries (its keywords and its
    title); any product matching every keyword. Text relevance is the share of the queries whose
    every word the product's indexed text holds. Each part walks an index and stops, so the work
    does not grow with the catalog.
    """
    queries = _queries(proc)
    keywords = [k for k in dict.fromkeys(proc.keywords or []) if k and k.strip()][:20]
    text = search.text_match(session, queries=queries, required=keywords)
    # Each part is cut on products alone (an index walk that stops); the candidates it keeps are
    # then joined to their revision and certificate, and only then counted against each query.
    part = (select(Product.id)
            .where(listings.in_catalog(session), Product.owner_org_id != buyer.id)
            .order_by(Product.listed_at.desc(), Product.id.desc()).limit(CANDIDATES_PER_SOURCE))
    parts = [part.where(Product.category == proc.category)]
    if text.any_query is not None:
        parts.append(part.where(Product.category == proc.category, text.any_query))
    if text.every_required is not None:
        parts.append(part.where(text.every_required))
    found = union(*(select(p.c.id) for p in (q.subquery() for q in parts))).subquery("candidates")
    # Only the columns scoring and the cross-border rules read.
    rows = session.execute(
        select(Product.id, Product.owner_org_id, Product.price_amount, Product.price_currency, Product.price_model,
               ProductVersion.category, ProductVersion.keywords, ProductVersion.title, ProductVersion.delivery_mode,
               ProductVersion.update_frequency, ProductVersion.classification,
               ProductVersion.contains_personal_info, ProductVersion.origin_region, text.hits.label("hits"))
        .select_from(found)
        .join(Product, Product.id == found.c.id)
        .join(ProductVersion, (ProductVersion.product_id == Product.id)
              & (ProductVersion.version == Product.listed_version))
        .join(Certificate, Certificate.number == Product.certificate_number)
        .where(Certificate.product_version == Product.listed_version,
               Certificate.status == CertificateStatus.VALID, Certificate.expires_at > now)
    ).all()
    sellers = {row.owner_org_id for row in rows}
    track = dict(session.execute(
        select(Contract.seller_org_id, func.count()).where(Contract.seller_org_id.in_(sellers),
                                                           Contract.status == ContractStatus.SIGNED)
        .group_by(Contract.seller_org_id)
    ).all()) if sellers else {}
    entries_by_category: dict[str, list[Any]] = {}
    out = []
    for row in rows:
        if row.category not in entries_by_category:
            entries_by_category[row.category] = live_entries(session, category=row.category, now=now)
        if not may_transfer(row, buyer.region, entries_by_category[row.category], now, buyer_org_id=buyer.id).allowed:
            continue
        out.append(Supply(
            product_id=row.id, category=row.category, keywords=tuple(row.keywords or ()),
            title=row.title, price_amount=row.price_amount, price_currency=row.price_currency,
            price_model=row.price_model, delivery_mode=row.delivery_mode,
            update_frequency=row.update_frequency, text_relevance=int(row.hits) / max(len(queries), 1),
            vendor_contracts=int(track.get(row.owner_org_id, 0)),
        ))
    return out


def demand_of(proc: Procurement) -> Demand:
    return Demand(category=proc.category, keywords=tuple(proc.keywords or ()), budget_amount=proc.budget_max_amount,
                  budget_currency=proc.budget_currency, delivery_mode=proc.delivery_mode)


def matches_for_procurement(session: Session, *, procurement_id: str, principal: Principal,
                            limit: int) -> list[Facts]:
    """Ranked lawful supply for a procurement (its buyer or an operator), each match with its product's
    facts (`shown_matches`). Raises NotFound/Forbidden."""
    proc = procurements.get(session, procurement_id=procurement_id, principal=principal)
    if not (principal.is_operator or principal.org_id == proc.buyer_org_id):
        raise Forbidden("Only the buyer and operators see a procurement's matches.",
                        next_step="sign in as a member of the procurement's buying organization")
    buyer = session.get(Organization, proc.buyer_org_id)
    now = utcnow()
    supplies = _supplies(session, proc, buyer, now)
    return shown_matches(session, rank(demand_of(proc), supplies, limit))


def shown_matches(session: Session, found: list[Match]) -> list[Facts]:
    """Each match with what a buyer decides on, as the catalog shows it (the listed revision's title,
    price and delivery mode, the certificate, the vendor), loaded for all of them in one query."""
    if not found:
        return []
    rows = {row.id: row for row in session.execute(
        select(Product.id, Product.owner_org_id, Product.certificate_number, ProductVersion.title,
               ProductVersion.price, ProductVersion.delivery_mode, Organization.name, Organization.display_name)
        .join(ProductVersion, (ProductVersion.product_id == Product.id)
              & (ProductVersion.version == Product.listed_version))
        .join(Organization, Organization.id == Product.owner_org_id)
        .where(Product.id.in_([m.product_id for m in found]))
    ).all()}
    return [Facts(m, title=row.title, price=row.price, delivery_mode=row.delivery_mode,
                  certificate_number=row.certificate_number, vendor_org_id=row.owner_org_id,
                  vendor=row.display_name or row.name)
            for m, row in ((m, rows[m.product_id]) for m in found)]


def product_for_matching(session: Session, *, product_id: str, principal: Principal) -> tuple[Product, ProductVersion]:
    """The listed revision of the caller's own product (operators: any). Raises NotFound/Forbidden/Conflict."""
    product = listings.get_product(session, product_id=product_id, principal=principal)
    if not (principal.is_operator or principal.org_id == product.owner_org_id):
        raise Forbidden("Only the product's vendor sees which procurements it matches.",
                        next_step="sign in as a member of the vendor that owns the product")
    if product.status != ProductStatus.LISTED or product.listed_version is None:
        raise Conflict("Only listed products are matched against procurements.",
                       next_step="certify the product so that it is listed first")
    return product, listings.get_version(session, product_id=product.id, version=product.listed_version)


def procurements_for_product(session: Session, *, product: Product, version: ProductVersion,
                             limit: int) -> list[tuple[Procurement, float, list[str]]]:
    """Open public procurements this listed product answers, best first (its vendor's view)."""
    now = utcnow()
    procs: Sequence[Procurement] = session.execute(
        select(Procurement).where(Procurement.status == ProcurementStatus.OPEN, Procurement.deadline > now,
                                  Procurement.visibility == "public", Procurement.category == version.category,
                                  Procurement.buyer_org_id != product.owner_org_id,
                                  procurements.not_suspended(session))
        .order_by(Procurement.deadline, Procurement.id).limit(500)
    ).scalars().all()
    if not procs:
        return []
    buyers = {o.id: o for o in session.execute(
        select(Organization).where(Organization.id.in_({p.buyer_org_id for p in procs}))).scalars()}
    entries = live_entries(session, category=version.category, now=now)
    supply = Supply(product_id=product.id, category=version.category, keywords=tuple(version.keywords or ()),
                    title=version.title, price_amount=product.price_amount, price_currency=product.price_currency,
                    price_model=product.price_model, delivery_mode=version.delivery_mode,
                    update_frequency=version.update_frequency)
    out = []
    for proc in procs:
        buyer = buyers[proc.buyer_org_id]
        if not may_transfer(version, buyer.region, entries, now, buyer_org_id=buyer.id).allowed:
            continue
        value, reasons = score(demand_of(proc), supply)
        out.append((proc, value, reasons))
    out.sort(key=lambda t: (-t[1], t[0].id))
    return out[:limit]


def post_procurement(session: Session, *, actor: Principal, **procurement: Any) -> Procurement:
    """Post demand (`procurement`: the keyword arguments of `procurements.create`) and tell the vendors
    of its best lawful matches (`procurement.matched`) — public only."""
    proc = procurements.create(session, **procurement, actor=actor)
    if proc.visibility != "public":
        return proc
    buyer = session.get(Organization, proc.buyer_org_id)
    found = rank(demand_of(proc), _supplies(session, proc, buyer, utcnow()), 10)
    if not found:
        return proc
    owners = dict(session.execute(
        select(Product.id, Product.owner_org_id).where(Product.id.in_([m.product_id for m in found]))).all())
    by_vendor: dict[str, list[str]] = {}
    for m in found:
        by_vendor.setdefault(owners[m.product_id], []).append(m.product_id)
    for vendor_id, product_ids in by_vendor.items():
        outbox.emit(session, event_type="procurement.matched", org_ids=[vendor_id], payload={
            "procurement_id": proc.id, "title": proc.title, "category": proc.category, "product_ids": product_ids})
    return proc
