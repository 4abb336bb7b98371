"""Product and revision statuses with their transition tables, and the enumerations of a product.

The product's status is what the catalog and trading look at; each revision (version) has its own
status. Every change goes through `exchange.states.transition` with one of the tables below
(`listings.services` records each one in the product's history).
"""

from __future__ import annotations

from enum import StrEnum

from exchange.identity.states import REGIONS
from exchange.money import CURRENCIES
from exchange.states import TransitionTable


class ProductStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    LISTED = "listed"
    SUSPENDED = "suspended"
    DELISTED = "delisted"


PRODUCT_TRANSITIONS: TransitionTable[ProductStatus] = TransitionTable({
    # A draft goes to review when certification starts, or is withdrawn from sale by its owner.
    ProductStatus.DRAFT: frozenset({ProductStatus.IN_REVIEW, ProductStatus.DELISTED}),
    # Certification ends: approved -> listed; changes requested, rejected or withdrawn -> draft.
    ProductStatus.IN_REVIEW: frozenset({ProductStatus.DRAFT, ProductStatus.LISTED}),
    ProductStatus.LISTED: frozenset({ProductStatus.SUSPENDED, ProductStatus.DELISTED}),
    # Reinstated, or re-listed by certifying a new revision; or taken off sale for good.
    ProductStatus.SUSPENDED: frozenset({ProductStatus.LISTED, ProductStatus.DELISTED}),
    ProductStatus.DELISTED: frozenset(),
}, next_steps={
    ProductStatus.DRAFT: "submit the product for certification",
    ProductStatus.IN_REVIEW: "wait for the certification to end (approved, changes requested, rejected or withdrawn)",
    ProductStatus.LISTED: "the product is listed; only a suspension or a delisting changes it",
    ProductStatus.SUSPENDED: "an operator must reinstate the product, or certify a new revision of it",
    ProductStatus.DELISTED: "the product was delisted and cannot change any more; create a new product",
})


class VersionStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    CERTIFIED = "certified"
    SUPERSEDED = "superseded"
    REJECTED = "rejected"


VERSION_TRANSITIONS: TransitionTable[VersionStatus] = TransitionTable({
    VersionStatus.DRAFT: frozenset({VersionStatus.IN_REVIEW}),
    VersionStatus.IN_REVIEW: frozenset({VersionStatus.DRAFT, VersionStatus.CERTIFIED, VersionStatus.REJECTED}),
    VersionStatus.CERTIFIED: frozenset({VersionStatus.SUPERSEDED}),
    VersionStatus.SUPERSEDED: frozenset(),
    VersionStatus.REJECTED: frozenset(),
}, next_steps={
    VersionStatus.DRAFT: "submit the revision for certification",
    VersionStatus.IN_REVIEW: "wait for the revision's certification to end",
    VersionStatus.CERTIFIED: "the revision is certified; a newer certified revision supersedes it",
    VersionStatus.SUPERSEDED: (
        "the revision was superseded and cannot change any more; edit the product's open revision"
    ),
    VersionStatus.REJECTED: "the revision was rejected and cannot change any more; edit the product for a new revision",
})

# Statuses in which a product is shown to everyone (the public catalog and search index).
PUBLIC_STATUSES = frozenset({ProductStatus.LISTED})
# Statuses of a product that has been certified at least once (it keeps a `listed_version`).
ONCE_LISTED_STATUSES = frozenset({ProductStatus.LISTED, ProductStatus.SUSPENDED})
# A revision in one of these is the product's open revision: at most one, always the newest.
OPEN_VERSION_STATUSES = frozenset({VersionStatus.DRAFT, VersionStatus.IN_REVIEW})

# How a certification that did not approve a revision ends (`services.return_to_draft`).
RETURN_OUTCOMES = ("changes_requested", "withdrawn", "rejected")

CATEGORIES = (
    "finance", "transport", "healthcare", "geospatial", "commerce", "energy", "public_services",
    "telecom", "manufacturing", "agriculture", "education", "other",
)
DATA_FORMATS = ("csv", "json", "parquet", "api", "other")
DELIVERY_MODES = ("file", "api", "privacy_computing")
CLASSIFICATIONS = ("general", "important", "core")
UPDATE_FREQUENCIES = ("once", "daily", "weekly", "monthly", "realtime")
PRICE_MODELS = ("one_time", "subscription", "per_call", "negotiable")
PRICE_PERIODS = ("month", "year")
LICENSE_SCOPES = ("internal_use", "commercial", "research")
DATA_SOURCE_TYPES = ("self_collected", "licensed", "public", "derived")
ORIGIN_REGIONS = REGIONS
PRICE_CURRENCIES = CURRENCIES
SORTS = ("relevance", "newest", "price_asc", "price_desc")


class FairPhase(StrEnum):
    """Where a fair stands against the clock (computed on read, never stored)."""

    UPCOMING = "upcoming"
    LIVE = "live"
    ENDED = "ended"
