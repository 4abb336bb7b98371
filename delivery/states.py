"""Entitlement and release state machines."""

from __future__ import annotations

from enum import StrEnum


class EntitlementStatus(StrEnum):
    # The order is the CHECK constraint's (built from this enum).
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


E = EntitlementStatus
ENTITLEMENT_TRANSITIONS: dict[EntitlementStatus, frozenset[EntitlementStatus]] = {
    # Suspension lasts while any cause does (dispute, certificate, an organization, the white list);
    # revocation and expiry are final.
    E.ACTIVE: frozenset({E.SUSPENDED, E.REVOKED, E.EXPIRED}),
    E.SUSPENDED: frozenset({E.ACTIVE, E.REVOKED, E.EXPIRED}),
    E.REVOKED: frozenset(),
    E.EXPIRED: frozenset(),
}
LIVE = (E.ACTIVE, E.SUSPENDED)


class ReleaseStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


R = ReleaseStatus
RELEASE_TRANSITIONS: dict[ReleaseStatus, frozenset[ReleaseStatus]] = {
    # Publishing freezes the files; a withdrawn release serves no more downloads.
    R.DRAFT: frozenset({R.PUBLISHED}),
    R.PUBLISHED: frozenset({R.WITHDRAWN}),
    R.WITHDRAWN: frozenset(),
}


class AccessKind(StrEnum):
    DOWNLOAD_LINK = "download_link"
    DOWNLOAD = "download"
    API_CALL = "api_call"
    QUERY = "query"


class AccessStatus(StrEnum):
    ALLOWED = "allowed"
    REFUSED = "refused"
    FAILED = "failed"  # a sandbox query the engine could not answer (a timeout, an engine error)
