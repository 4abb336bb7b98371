"""Organizations' types, regions, member roles and the organization status machine."""

from __future__ import annotations

from enum import StrEnum

ORG_TYPES = ("vendor", "enterprise", "operator", "assessor")
SELF_REGISTERED_TYPES = ("vendor", "enterprise", "assessor")
REGIONS = ("GD", "HK", "MO", "CN", "INTL")
ROLES = ("admin", "member")


class OrgStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


ORG_TRANSITIONS: dict[OrgStatus, frozenset[OrgStatus]] = {
    OrgStatus.PENDING: frozenset({OrgStatus.VERIFIED, OrgStatus.REJECTED}),
    OrgStatus.VERIFIED: frozenset({OrgStatus.SUSPENDED}),
    OrgStatus.SUSPENDED: frozenset({OrgStatus.VERIFIED}),
    OrgStatus.REJECTED: frozenset(),
}
