"""The Greater Bay Area cross-border rules, as a table of cases over the pure function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from certification.crossborder import is_cross_border, may_transfer, region_covers

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


@dataclass
class Entry:
    id: str = "wl_1"
    category: str = "finance"
    from_region: str = "HK"
    to_region: str = "GD"
    max_classification: str = "important"
    personal_info_allowed: bool = False
    recipient_org_id: str | None = None
    expires_at: datetime = NOW + timedelta(days=30)


def product(classification="general", personal=False, origin="HK", category="finance"):
    return {"classification": classification, "contains_personal_info": personal, "origin_region": origin,
            "category": category}


CASES = [
    # (product, buyer region, white list, buyer org, allowed, rule)
    (product("core", origin="GD"), "GD", [], None, True, "domestic"),
    (product("core", origin="GD"), "CN", [], None, True, "domestic"),
    (product("important", True, origin="CN"), "GD", [], None, True, "domestic"),
    (product("core", origin="HK"), "GD", [Entry(max_classification="important")], None, False, "core_never_crosses"),
    (product("core", origin="GD"), "INTL", [], None, False, "core_never_crosses"),
    (product("general"), "GD", [], None, True, "general_non_personal"),
    (product("general", origin="MO"), "HK", [], None, True, "general_non_personal"),
    (product("general", personal=True), "GD", [], None, False, "whitelist_required"),
    (product("important"), "GD", [], None, False, "whitelist_required"),
    (product("important"), "GD", [Entry()], None, True, "whitelist"),
    (product("important"), "MO", [Entry()], None, False, "whitelist_required"),
    (product("important", category="energy"), "GD", [Entry()], None, False, "whitelist_required"),
    (product("important"), "GD", [Entry(max_classification="general")], None, False, "whitelist_required"),
    (product("general", personal=True), "GD", [Entry(max_classification="general")], None, False,
     "whitelist_required"),
    (product("general", personal=True), "GD", [Entry(personal_info_allowed=True)], None, True, "whitelist"),
    (product("important"), "GD", [Entry(expires_at=NOW)], None, False, "whitelist_required"),
    (product("important"), "GD", [Entry(expires_at=NOW - timedelta(seconds=1))], None, False, "whitelist_required"),
    (product("important"), "GD", [Entry(recipient_org_id="org_a")], "org_a", True, "whitelist"),
    (product("important"), "GD", [Entry(recipient_org_id="org_a")], "org_b", False, "whitelist_required"),
    (product("important"), "GD", [Entry(recipient_org_id="org_a")], None, False, "whitelist_required"),
    # An entry to CN covers a buyer in GD; an entry to GD does not cover the rest of the mainland.
    (product("important"), "GD", [Entry(to_region="CN")], None, True, "whitelist"),
    (product("important"), "CN", [Entry(to_region="GD")], None, False, "whitelist_required"),
    # From the mainland out: an entry from CN covers a GD origin.
    (product("important", origin="GD"), "HK", [Entry(from_region="CN", to_region="HK")], None, True, "whitelist"),
    (product("important", origin="CN"), "HK", [Entry(from_region="GD", to_region="HK")], None, False,
     "whitelist_required"),
    (product("important", origin="GD"), "INTL", [Entry(from_region="GD", to_region="INTL")], None, True,
     "whitelist"),
    # The first covering entry wins even if others do not cover.
    (product("important"), "GD", [Entry(id="wl_x", category="energy"), Entry(id="wl_y")], None, True,
     "whitelist"),
]


@pytest.mark.parametrize(("prod", "buyer", "entries", "buyer_org", "allowed", "rule"), CASES)
def test_cross_border_table(prod, buyer, entries, buyer_org, allowed, rule):
    decision = may_transfer(prod, buyer, entries, NOW, buyer_org_id=buyer_org)
    assert decision.allowed is allowed
    assert decision.rule == rule
    assert decision.reason
    if rule == "whitelist":
        assert decision.whitelist_entry_id is not None


def test_jurisdictions():
    assert not is_cross_border("GD", "CN")
    assert is_cross_border("GD", "HK")
    assert is_cross_border("HK", "MO")
    assert is_cross_border("MO", "INTL")
    assert region_covers("CN", "GD") and region_covers("GD", "GD") and not region_covers("GD", "CN")


def test_denial_names_the_rule_and_route():
    decision = may_transfer(product("important", True), "GD", [], NOW)
    assert "HK" in decision.reason and "GD" in decision.reason
    assert "personal information" in decision.reason
