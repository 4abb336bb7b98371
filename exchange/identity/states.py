"""Organizations' types, regions, member roles and the organization status machine."""

from __future__ import annotations

from enum import StrEnum

from exchange.states import TransitionTable

ORG_TYPES = ("vendor", "enterprise", "operator", "assessor")
SELF_REGISTERED_TYPES = ("vendor", "enterprise", "assessor")
REGIONS = ("GD", "HK", "MO", "CN", "INTL")
ROLES = ("admin", "member")
# Where a GD organization is (API.md, Compliance): the 21 prefecture-level cities of Guangdong, the
# nine mainland cities of the Greater Bay Area first, and the cooperation zones with the city each
# lies in (Hengqin in Zhuhai; Qianhai and Hetao in Shenzhen; Nansha in Guangzhou).
GBA_CITIES = ("guangzhou", "shenzhen", "zhuhai", "foshan", "huizhou", "dongguan", "zhongshan", "jiangmen",
              "zhaoqing")
GD_CITIES = (*GBA_CITIES, "shantou", "shaoguan", "heyuan", "meizhou", "shanwei", "yangjiang", "zhanjiang",
             "maoming", "qingyuan", "chaozhou", "jieyang", "yunfu")
ZONES = {"hengqin": "zhuhai", "qianhai": "shenzhen", "nansha": "guangzhou", "hetao": "shenzhen"}


class OrgStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


ORG_TRANSITIONS: TransitionTable[OrgStatus] = TransitionTable({
    OrgStatus.PENDING: frozenset({OrgStatus.VERIFIED, OrgStatus.REJECTED}),
    OrgStatus.VERIFIED: frozenset({OrgStatus.SUSPENDED}),
    OrgStatus.SUSPENDED: frozenset({OrgStatus.VERIFIED}),
    OrgStatus.REJECTED: frozenset(),
}, next_steps={
    OrgStatus.PENDING: "an operator must verify the organization first",
    OrgStatus.VERIFIED: "the organization is verified; an operator may only suspend it",
    OrgStatus.REJECTED: (
        "the organization was rejected and cannot change any more; contact the exchange's operators to register "
        "again"
    ),
    OrgStatus.SUSPENDED: "the organization is suspended; an operator may only reinstate it",
})
