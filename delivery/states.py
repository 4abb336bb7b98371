"""Entitlement and release state machines."""

from __future__ import annotations

from enum import StrEnum

from exchange.states import TransitionTable


class EntitlementStatus(StrEnum):
    # The order is the CHECK constraint's (built from this enum).
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


E = EntitlementStatus
ENTITLEMENT_TRANSITIONS: TransitionTable[EntitlementStatus] = TransitionTable({
    # Suspension lasts while any cause does (dispute, certificate, an organization, the white list);
    # revocation and expiry are final.
    E.ACTIVE: frozenset({E.SUSPENDED, E.REVOKED, E.EXPIRED}),
    E.SUSPENDED: frozenset({E.ACTIVE, E.REVOKED, E.EXPIRED}),
    E.REVOKED: frozenset(),
    E.EXPIRED: frozenset(),
}, next_steps={
    E.ACTIVE: "the entitlement is active; an operator, a dispute or the end of its term changes it",
    E.SUSPENDED: (
        "the entitlement comes back once what suspended it is cleared (a dispute resolved, a certificate or "
        "organization reinstated)"
    ),
    E.REVOKED: "the entitlement was revoked and cannot change any more; buy the product again for new access",
    E.EXPIRED: "the entitlement has expired and cannot change any more; buy the product again for new access",
})
LIVE = (E.ACTIVE, E.SUSPENDED)


class ReleaseStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


R = ReleaseStatus
RELEASE_TRANSITIONS: TransitionTable[ReleaseStatus] = TransitionTable({
    # Publishing freezes the files; a withdrawn release serves no more downloads.
    R.DRAFT: frozenset({R.PUBLISHED}),
    R.PUBLISHED: frozenset({R.WITHDRAWN}),
    R.WITHDRAWN: frozenset(),
}, next_steps={
    R.DRAFT: "upload the release's files and publish it",
    R.PUBLISHED: "the release is published; its vendor may only withdraw it",
    R.WITHDRAWN: "the release was withdrawn and cannot change any more; publish a new release",
})


class AccessKind(StrEnum):
    DOWNLOAD_LINK = "download_link"
    DOWNLOAD = "download"
    API_CALL = "api_call"
    QUERY = "query"


class AccessStatus(StrEnum):
    ALLOWED = "allowed"
    REFUSED = "refused"
    FAILED = "failed"  # a sandbox query the engine could not answer (a timeout, an engine error)
