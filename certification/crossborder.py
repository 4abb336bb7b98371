"""Cross-border data rules of the Greater Bay Area, as one pure function.

A deal is cross-border when the product's origin region and the buyer's region lie in different
jurisdictions: mainland (GD, CN) vs Hong Kong vs Macao vs international. Then: `core` data never
crosses; `general` data without personal information may cross; anything else crosses only if an
unexpired white-list entry covers it (category, regions — an entry's CN also covers GD —
classification ceiling, personal-information flag and, when set, the recipient organization).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

JURISDICTION = {"GD": "mainland", "CN": "mainland", "HK": "HK", "MO": "MO", "INTL": "INTL"}
CLASSIFICATION_RANK = {"general": 0, "important": 1, "core": 2}


class WhitelistLike(Protocol):
    id: str
    category: str
    from_region: str
    to_region: str
    max_classification: str
    personal_info_allowed: bool
    recipient_org_id: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str
    reason: str
    whitelist_entry_id: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


def _get(product: Any, name: str) -> Any:
    return product[name] if isinstance(product, dict) else getattr(product, name)


def region_covers(entry_region: str, region: str) -> bool:
    """A white-list region covers itself; `CN` (the whole mainland) also covers `GD`."""
    return entry_region == region or (entry_region == "CN" and region == "GD")


def is_cross_border(origin_region: str, buyer_region: str) -> bool:
    return JURISDICTION[origin_region] != JURISDICTION[buyer_region]


def may_transfer(product: Any, buyer_region: str, whitelist: Iterable[WhitelistLike], now: datetime,
                 *, buyer_org_id: str | None = None) -> Decision:
    """May a buyer in `buyer_region` lawfully receive `product` now?

    `product` is anything with `category`, `classification`, `contains_personal_info` and
    `origin_region` (a mapping or an object). Pure: no database, no clock but `now`.
    """
    origin = _get(product, "origin_region")
    classification = _get(product, "classification")
    personal = bool(_get(product, "contains_personal_info"))
    category = _get(product, "category")
    if not is_cross_border(origin, buyer_region):
        return Decision(True, "domestic", f"{origin} -> {buyer_region} stays within one jurisdiction")
    route = f"{origin} ({JURISDICTION[origin]}) -> {buyer_region} ({JURISDICTION[buyer_region]})"
    if classification == "core":
        return Decision(False, "core_never_crosses", f"core data never leaves its jurisdiction: {route}")
    if classification == "general" and not personal:
        return Decision(True, "general_non_personal", f"general data without personal information: {route}")
    for entry in whitelist:
        if entry.expires_at <= now:
            continue
        if entry.category != category:
            continue
        if not (region_covers(entry.from_region, origin) and region_covers(entry.to_region, buyer_region)):
            continue
        if CLASSIFICATION_RANK[classification] > CLASSIFICATION_RANK[entry.max_classification]:
            continue
        if personal and not entry.personal_info_allowed:
            continue
        if entry.recipient_org_id is not None and entry.recipient_org_id != buyer_org_id:
            continue
        return Decision(True, "whitelist", f"covered by white-list entry {entry.id}: {route}", entry.id)
    what = f"{classification} data" + (" with personal information" if personal else "")
    return Decision(False, "whitelist_required",
                    f"{what} in category {category} crosses a border ({route}) only under a live white-list "
                    "entry, and none covers it")
