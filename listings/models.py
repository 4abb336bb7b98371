"""Tables of the catalog and the exhibition: products, their revisions and history, fairs and stalls.

The full-text index is `listings.search`'s: on PostgreSQL the `products.search_document` tsvector
column with a GIN index; on SQLite the FTS5 table `product_fts` (hand-written DDL in the migration,
not mapped here) whose rowids are `products.search_rowid`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, IdColumn, TimestampMixin, UTCDateTime, check_in, utcnow
from exchange.fields import iso_z
from listings.states import (
    CATEGORIES,
    CLASSIFICATIONS,
    DATA_FORMATS,
    DELIVERY_MODES,
    ORIGIN_REGIONS,
    PRICE_CURRENCIES,
    PRICE_MODELS,
    UPDATE_FREQUENCIES,
    ProductStatus,
    VersionStatus,
)

# Every field of the product creation body, in API.md's order: what a revision stores and what a
# certificate's digest covers.
BODY_FIELDS = (
    "title", "summary", "description", "category", "keywords", "data_format", "delivery_mode",
    "classification", "contains_personal_info", "origin_region", "update_frequency", "price", "sample",
    "license", "scenarios", "data_source", "coverage", "volume",
)
OPTIONAL_BODY_FIELDS = frozenset({"sample", "coverage", "volume"})
# Part of a revision's body only when stated (API.md Compliance): a version certified before the
# field existed keeps the body, and so the digest, it was certified with.
STATED_BODY_FIELDS = ("personal_info",)


class Product(TimestampMixin, Base):
    """A data product. Its catalog columns copy the version shown: the listed one, else the newest."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint(check_in("status", ProductStatus), name="status"),
        CheckConstraint("status NOT IN ('listed', 'suspended') OR listed_version IS NOT NULL",
                        name="listed_has_version"),
        CheckConstraint("listed_version IS NULL OR (listed_version >= 1 AND listed_version <= latest_version)",
                        name="listed_version_range"),
        CheckConstraint("latest_version >= 1", name="latest_version"),
        CheckConstraint("price_amount > 0", name="price_amount"),
        CheckConstraint(check_in("category", CATEGORIES), name="category"),
        CheckConstraint(check_in("price_currency", PRICE_CURRENCIES), name="price_currency"),
        CheckConstraint(check_in("price_model", PRICE_MODELS), name="price_model"),
        # The catalog's access paths: listed products by recency, by category, by price.
        Index("ix_products_status_listed_at", "status", "listed_at", "id"),
        Index("ix_products_status_category_listed_at", "status", "category", "listed_at", "id"),
        Index("ix_products_status_price", "status", "price_amount", "id"),
        # Counting a filtered catalog without reading wide rows (PostgreSQL keeps the tsvector inline).
        Index("ix_products_status_region", "status", "origin_region"),
        Index("ix_products_status_delivery", "status", "delivery_mode"),
        Index("ix_products_status_classification", "status", "classification"),
        Index("ix_products_status_price_model", "status", "price_model"),
        Index("ix_products_status_currency_price", "status", "price_currency", "price_amount"),
        Index("ix_products_owner_status", "owner_org_id", "status"),
        # Every facet in one narrow index: a count over any combination of them is an index-only
        # scan, where two low-selectivity facets together read thousands of heap rows.
        Index("ix_products_status_facets", "status", "delivery_mode", "classification", "origin_region",
              "price_model", "category", "price_currency"),
        Index("ix_products_search_document", "search_document", postgresql_using="gin"),
    )

    id: Mapped[str] = IdColumn("prd")
    owner_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    status: Mapped[str] = mapped_column(String(20), default=ProductStatus.DRAFT)
    listed_version: Mapped[int | None] = mapped_column(Integer)
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    certificate_number: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Catalog columns (filters and sorts without a join), copied from the version shown.
    category: Mapped[str] = mapped_column(String(30))
    origin_region: Mapped[str] = mapped_column(String(8))
    delivery_mode: Mapped[str] = mapped_column(String(30))
    classification: Mapped[str] = mapped_column(String(20))
    price_model: Mapped[str] = mapped_column(String(20))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    price_currency: Mapped[str] = mapped_column(String(3))
    # The full-text index, listed products only (null otherwise). PostgreSQL: the segmented text as a
    # weighted tsvector, never loaded by the ORM. SQLite: the rowid of the product's FTS5 row.
    search_document: Mapped[Any] = mapped_column(TSVECTOR().with_variant(Text(), "sqlite"), nullable=True,
                                                 deferred=True)
    search_rowid: Mapped[int | None] = mapped_column(Integer, unique=True)

    @property
    def shown_version(self) -> int:
        """The revision the product page shows: the listed one, else the newest."""
        return self.listed_version if self.listed_version is not None else self.latest_version


class ProductVersion(TimestampMixin, Base):
    """One revision of a product: every field of the creation body as the vendor wrote it."""

    __tablename__ = "product_versions"
    __table_args__ = (
        CheckConstraint(check_in("status", VersionStatus), name="status"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint(check_in("category", CATEGORIES), name="category"),
        CheckConstraint(check_in("data_format", DATA_FORMATS), name="data_format"),
        CheckConstraint(check_in("delivery_mode", DELIVERY_MODES), name="delivery_mode"),
        CheckConstraint(check_in("classification", CLASSIFICATIONS), name="classification"),
        CheckConstraint(check_in("origin_region", ORIGIN_REGIONS), name="origin_region"),
        CheckConstraint(check_in("update_frequency", UPDATE_FREQUENCIES), name="update_frequency"),
    )

    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default=VersionStatus.DRAFT)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(30))
    keywords: Mapped[list[str]] = mapped_column(JSON)
    data_format: Mapped[str] = mapped_column(String(20))
    delivery_mode: Mapped[str] = mapped_column(String(30))
    classification: Mapped[str] = mapped_column(String(20))
    contains_personal_info: Mapped[bool] = mapped_column(Boolean)
    origin_region: Mapped[str] = mapped_column(String(8))
    update_frequency: Mapped[str] = mapped_column(String(20))
    price: Mapped[dict[str, Any]] = mapped_column(JSON)
    sample: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    license: Mapped[dict[str, Any]] = mapped_column(JSON)
    scenarios: Mapped[list[str]] = mapped_column(JSON)
    data_source: Mapped[dict[str, Any]] = mapped_column(JSON)
    coverage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    volume: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # {"subjects": N, "sensitive": bool}: required with contains_personal_info for new revisions.
    # None is SQL NULL (as on the versions migrated without it), never the JSON `null`.
    personal_info: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    def body(self) -> dict[str, Any]:
        """Every field of the creation body as stored, JSON-able (what a certificate digest covers);
        a stated-only field (`personal_info`) only when it is stated."""
        body = {name: _jsonable(getattr(self, name)) for name in BODY_FIELDS}
        for name in STATED_BODY_FIELDS:
            if getattr(self, name) is not None:
                body[name] = _jsonable(getattr(self, name))
        return body


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class ProductTransition(Base):
    """Append-only history of a product's and its revisions' status changes: who, when, why."""

    __tablename__ = "product_transitions"
    __table_args__ = (
        CheckConstraint("subject IN ('product', 'version')", name="subject"),
        Index("ix_product_transitions_product", "product_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    subject: Mapped[str] = mapped_column(String(10))
    version: Mapped[int | None] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_user_id: Mapped[str | None] = mapped_column(String(40))
    actor_org_id: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Fair(TimestampMixin, Base):
    """An on-site exhibition with a time window; trading pushes its signing figures down here."""

    __tablename__ = "fairs"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint("contracts_signed_on_site >= 0", name="contracts_signed"),
        Index("ix_fairs_starts_at", "starts_at"),
    )

    id: Mapped[str] = IdColumn("fair")
    name: Mapped[str] = mapped_column(String(200))
    venue: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(40))
    contracts_signed_on_site: Mapped[int] = mapped_column(Integer, default=0)


class FairSale(Base):
    """What one trade made at a fair brought in, per trade: the money that reached escrow less its
    refunds (0 until paid). Kept per trade, never as a running total: a total of amounts each within
    2^53-1 can pass any integer column, so the fair's volume is summed on read (`exchange.db.exact_sum`).
    `ref` is trading's trade id (listings does not know trades)."""

    __tablename__ = "fair_sales"
    __table_args__ = (
        CheckConstraint(check_in("currency", PRICE_CURRENCIES), name="currency"),
        CheckConstraint("amount >= 0", name="amount"),
        Index("ix_fair_sales_fair_currency", "fair_id", "currency"),
    )

    ref: Mapped[str] = mapped_column(String(40), primary_key=True)
    fair_id: Mapped[str] = mapped_column(ForeignKey("fairs.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)


class Stall(TimestampMixin, Base):
    """A vendor's stand at a fair, showing some of its listed products."""

    __tablename__ = "stalls"
    __table_args__ = (UniqueConstraint("fair_id", "code", name="uq_stalls_fair_code"),)

    id: Mapped[str] = IdColumn("stl")
    fair_id: Mapped[str] = mapped_column(ForeignKey("fairs.id"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    code: Mapped[str] = mapped_column(String(20))


class StallProduct(Base):
    """A product on show at a stall."""

    __tablename__ = "stall_products"

    stall_id: Mapped[str] = mapped_column(ForeignKey("stalls.id"), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
