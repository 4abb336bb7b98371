"""Cross-border dossiers of the Bay Area (API.md Compliance), through the API.

* One deal per row of the rule table (certification.paths), at, just below and just above each
  threshold, exporter a GD vendor in a GBA city / a non-GBA city / CN, importer HK / MO / INTL: the
  dossier's path, rule ids and version, status, filing flags and documents. Domestic deals have none.
* The exporter's cumulative individuals per CST year add up across its deals; another exporter's
  count is separate.
* Filing deadlines in mainland working days (chinese_calendar), provisional for an unknown year.
* Delivery waits for the dossier: overdue (on read, then persisted by the sweep with
  `dossier.overdue`), a security assessment until approved; filing resumes it.
* The filing's rules, personal_info validation (and the 409 for a version certified before the
  field existed), organizations' city/zone, and escaping of user text in the documents.
"""

from __future__ import annotations

import html as htmllib
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import select, update

from certification.paths import RULE_TABLE_VERSION
from exchange.db import db, utcnow
from exchange.events.outbox import OutboxEvent
from exchange.fields import iso_z
from listings.models import ProductVersion
from tests.certflow import certify
from tests.deliveryflow import bought, entitlement_of, execute, link, sweep
from tests.factories import Actor, ApiHelper, product_body
from tests.subscriptionflow import parse, set_clock
from tests.tradeflow import bid, sign
from trading.models import CrossBorderVolume, Dossier

OVERDUE = "cross-border filing overdue"
ASSESSMENT = "security assessment not filed and approved"
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


# -- helpers (local to this module) ------------------------------------------------------------------

def _now(app: Any) -> datetime:
    with app.app_context():
        return utcnow()


def place(api: ApiHelper, actor: Actor, city: str | None, zone: str | None = None) -> None:
    """An operator states where the organization is (API.md: city/zone set by operators)."""
    if city is None and zone is None:
        return
    r = api.patch(f"organizations/{actor.org_id}", api.operator(), json={"city": city, "zone": zone})
    assert r.status_code == 200, r.get_json()


def exporter(api: ApiHelper, region: str, city: str | None = None, zone: str | None = None, **kw: Any) -> Actor:
    vendor = api.vendor(region=region, **kw)
    place(api, vendor, city, zone)
    return vendor


def whitelist(api: ApiHelper, app: Any, to_region: str, category: str = "transport", days: int = 90) -> dict:
    """A live entry letting personal / important data of `category` leave the mainland for `to_region`
    (CN covers GD), expiring `days` after the domain clock's now."""
    r = api.post("whitelist", api.operator(), json={
        "category": category, "from_region": "CN", "to_region": to_region, "max_classification": "important",
        "personal_info_allowed": True, "expires_at": iso_z(_now(app) + timedelta(days=days))})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def pi(subjects: int, sensitive: bool = False, **extra: Any) -> dict[str, Any]:
    return {"contains_personal_info": True, "personal_info": {"subjects": subjects, "sensitive": sensitive}, **extra}


NO_PI: dict[str, Any] = {}
IMPORTANT = {"classification": "important"}


def deal(api: ApiHelper, vendor: Actor, buyer: Actor, **product: Any) -> dict[str, Any]:
    """A certified product bid on, accepted, signed by the buyer then the seller (the second
    signature opens the dossier). Returns the signed contract."""
    product.setdefault("origin_region", vendor.region)
    listed = certify(api, vendor, **product)
    offer = bid(api, buyer, listed)
    r = api.post(f"offers/{offer['id']}/accept", vendor)
    assert r.status_code == 201, r.get_json()
    contract = r.get_json()
    sign(api, buyer, contract["id"])
    return sign(api, vendor, contract["id"])


def dossier(api: ApiHelper, actor: Actor, contract_id: str, expect: int = 200) -> dict[str, Any]:
    r = api.get(f"contracts/{contract_id}/dossier", actor)
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def filing(api: ApiHelper, actor: Actor, contract_id: str, body: Any, expect: int) -> dict[str, Any]:
    r = api.post(f"contracts/{contract_id}/dossier/filing", actor, json=body)
    assert r.status_code == expect, (r.status_code, r.get_json())
    return r.get_json()


def document(api: ApiHelper, actor: Actor, contract_id: str, kind: str, expect: int = 200) -> str:
    r = api.get(f"contracts/{contract_id}/dossier/documents/{kind}", actor)
    assert r.status_code == expect, r.get_data(as_text=True)[:500]
    if expect == 200:
        assert r.mimetype == "text/markdown"
    return r.get_data(as_text=True)


def events(app: Any, event_type: str) -> list[OutboxEvent]:
    with app.app_context():
        rows = list(db.session.execute(select(OutboxEvent).where(OutboxEvent.event_type == event_type)
                                       .order_by(OutboxEvent.created_at, OutboxEvent.id)).scalars())
        db.session.expunge_all()
    return rows


def ent_of(api: ApiHelper, actor: Actor, ent_id: str) -> dict[str, Any]:
    r = api.get(f"entitlements/{ent_id}", actor)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


# -- 1. the rule table, row by row, at its thresholds -------------------------------------------------

GBA_SZ = ("GD", "shenzhen", None)
ROWS = [
    # exporter (region, city, zone), importer, product, path, rule_ids
    pytest.param(GBA_SZ, "HK", NO_PI, "no_personal_info", ["general-no-pi"], id="general-no-pi"),
    pytest.param(GBA_SZ, "HK", pi(99_999), "exempt_small_volume", ["pi-under-100k"], id="pi-99999-gba-hk"),
    pytest.param(("CN", None, None), "INTL", pi(99_999), "exempt_small_volume", ["pi-under-100k"],
                 id="pi-99999-cn-intl"),
    pytest.param(("GD", "shenzhen", "qianhai"), "HK", pi(100_000), "gba_standard_contract",
                 ["pi-100k-to-1m", "gba-hk"], id="pi-100000-qianhai-hk"),
    pytest.param(("GD", "shantou", None), "HK", pi(100_000), "standard_contract", ["pi-100k-to-1m"],
                 id="pi-100000-shantou-hk"),
    pytest.param(("GD", None, None), "MO", pi(100_000), "standard_contract", ["pi-100k-to-1m"],
                 id="pi-100000-gd-no-city-mo"),
    pytest.param(("GD", "guangzhou", None), "INTL", pi(100_000), "standard_contract", ["pi-100k-to-1m"],
                 id="pi-100000-gba-intl"),
    pytest.param(("CN", None, None), "MO", pi(1_000_000), "standard_contract", ["pi-100k-to-1m"],
                 id="pi-1000000-cn-mo"),
    pytest.param(("CN", None, None), "HK", pi(1_000_001), "security_assessment", ["pi-over-1m"],
                 id="pi-1000001-cn-hk"),
    pytest.param(("GD", "zhuhai", "hengqin"), "MO", pi(1_000_001), "gba_standard_contract",
                 ["pi-over-1m", "gba-mo"], id="pi-1000001-hengqin-mo"),
    pytest.param(("GD", "shantou", None), "MO", pi(1_000_001), "security_assessment", ["pi-over-1m"],
                 id="pi-1000001-shantou-mo"),
    pytest.param(("GD", "shantou", None), "INTL", pi(9_999, sensitive=True), "standard_contract",
                 ["spi-under-10k"], id="spi-9999-shantou-intl"),
    pytest.param(("GD", "dongguan", None), "MO", pi(9_999, sensitive=True), "gba_standard_contract",
                 ["spi-under-10k", "gba-mo"], id="spi-9999-gba-mo"),
    pytest.param(("CN", None, None), "INTL", pi(10_000, sensitive=True), "security_assessment",
                 ["spi-10k-or-more"], id="spi-10000-cn-intl"),
    pytest.param(("GD", "foshan", None), "HK", pi(10_000, sensitive=True), "gba_standard_contract",
                 ["spi-10k-or-more", "gba-hk"], id="spi-10000-gba-hk"),
    pytest.param(GBA_SZ, "HK", IMPORTANT, "security_assessment", ["important-data"], id="important-gba-hk"),
    pytest.param(GBA_SZ, "HK", {**IMPORTANT, **pi(5_000)}, "security_assessment", ["important-data"],
                 id="important-with-pi-gba-hk"),
]
CONTRACT_PATHS = ("gba_standard_contract", "standard_contract")
NOT_REQUIRED = ("no_personal_info", "exempt_small_volume")


@pytest.mark.parametrize(("where", "importer", "product", "path", "rule_ids"), ROWS)
def test_path_per_rule_table_row(app, api, where, importer, product, path, rule_ids):
    region, city, zone = where
    vendor = exporter(api, region, city, zone)
    buyer = api.enterprise(region=importer)
    whitelist(api, app, importer)
    contract = deal(api, vendor, buyer, **product)
    got = dossier(api, buyer, contract["id"])
    assert dossier(api, vendor, contract["id"]) == got
    assert dossier(api, api.operator(), contract["id"]) == got

    assert (got["path"], got["rule_ids"], got["rule_version"]) == (path, rule_ids, RULE_TABLE_VERSION)
    assert len(got["reasons"]) == len(rule_ids) and all(got["reasons"])
    assert (got["contract_id"], got["exporter_org_id"], got["importer_org_id"]) == (
        contract["id"], vendor.org_id, buyer.org_id)
    subjects = product.get("personal_info", {}).get("subjects", 0)
    assert got["subjects"] == got["cumulative_subjects"] == subjects  # a fresh exporter: this deal only
    assert got["cumulative_sensitive_subjects"] == (subjects if product.get("personal_info", {}).get("sensitive")
                                                    else 0)
    required = path not in NOT_REQUIRED
    assert got["status"] == ("awaiting_filing" if required else "not_required")
    f = got["filing"]
    assert f["required"] is required
    assert f["approval_required"] is (path == "security_assessment")
    assert (f["reference"], f["filed_at"], f["approved_at"]) == (None, None, None)
    assert (f["due_at"] is not None) is (path in CONTRACT_PATHS)
    if required:
        assert [d["kind"] for d in got["documents"]] == ["particulars", "undertaking"]
        for d in got["documents"]:
            assert d["url"] == f"/api/v1/contracts/{contract['id']}/dossier/documents/{d['kind']}"
            r = api.get(d["url"], buyer)
            assert r.status_code == 200 and r.mimetype == "text/markdown", r.get_data(as_text=True)[:300]
            text = r.get_data(as_text=True)
            assert text.startswith(f"# {d['title']}\n")
            assert contract["number"] in text
        assert f"{subjects:,}" in document(api, vendor, contract["id"], "particulars")
    else:
        assert got["documents"] == []
        document(api, buyer, contract["id"], "particulars", expect=404)
        document(api, buyer, contract["id"], "undertaking", expect=404)
    document(api, buyer, contract["id"], "nonsense", expect=404)


@pytest.mark.parametrize(("seller_region", "buyer_region", "product"), [
    pytest.param("GD", "GD", pi(200_000), id="gd-gd"),
    pytest.param("GD", "CN", pi(2_000_000), id="gd-cn"),
    pytest.param("HK", "HK", pi(200_000), id="hk-hk"),
    pytest.param("HK", "GD", NO_PI, id="hk-gd-import"),
])
def test_no_dossier_when_data_stays_or_enters_the_mainland(app, api, seller_region, buyer_region, product):
    vendor = exporter(api, seller_region, "shenzhen" if seller_region == "GD" else None)
    buyer = api.enterprise(region=buyer_region)
    contract = deal(api, vendor, buyer, **product)
    for actor in (vendor, buyer, api.operator()):
        r = api.get(f"contracts/{contract['id']}/dossier", actor)
        assert r.status_code == 404, r.get_json()
    r = api.get(f"contracts/{contract['id']}/dossier/documents/particulars", buyer)
    assert r.status_code == 404
    r = api.post(f"contracts/{contract['id']}/dossier/filing", vendor, json={"reference": "X-1"})
    assert r.status_code == 404
    with app.app_context():
        assert db.session.execute(select(CrossBorderVolume)).first() is None  # nothing counted


def test_no_dossier_before_the_second_signature(app, api):
    vendor, buyer = exporter(api, "GD", "shantou"), api.enterprise(region="HK")
    whitelist(api, app, "HK")
    listed = certify(api, vendor, **pi(200_000))
    r = api.post(f"offers/{bid(api, buyer, listed)['id']}/accept", vendor)
    contract = r.get_json()
    dossier(api, buyer, contract["id"], expect=404)
    sign(api, buyer, contract["id"])
    dossier(api, buyer, contract["id"], expect=404)
    sign(api, vendor, contract["id"])
    assert dossier(api, buyer, contract["id"])["path"] == "standard_contract"


# -- 2. the exporter's cumulative count ---------------------------------------------------------------

def test_cumulative_subjects_add_up_per_exporter(app, api):
    vendor, other = exporter(api, "CN"), exporter(api, "CN")
    buyer = api.enterprise(region="INTL")
    whitelist(api, app, "INTL")
    first = dossier(api, buyer, deal(api, vendor, buyer, **pi(60_000))["id"])
    assert (first["path"], first["cumulative_subjects"], first["rule_ids"]) == (
        "exempt_small_volume", 60_000, ["pi-under-100k"])
    # Another exporter's deal counts on its own.
    theirs = dossier(api, buyer, deal(api, other, buyer, **pi(60_000))["id"])
    assert (theirs["path"], theirs["cumulative_subjects"]) == ("exempt_small_volume", 60_000)
    # A domestic deal of the same exporter does not count: its data does not leave the mainland.
    domestic = deal(api, vendor, api.enterprise(region="GD"), **pi(70_000))
    dossier(api, buyer, domestic["id"], expect=404)
    # The exporter's second 60,000: 120,000 this year, a contract path; the first is not re-decided.
    second = dossier(api, buyer, deal(api, vendor, buyer, **pi(60_000))["id"])
    assert (second["path"], second["subjects"], second["cumulative_subjects"], second["rule_ids"]) == (
        "standard_contract", 60_000, 120_000, ["pi-100k-to-1m"])
    assert second["status"] == "awaiting_filing" and second["filing"]["due_at"]
    assert "120,000" in second["reasons"][0]
    assert dossier(api, buyer, first["contract_id"])["path"] == "exempt_small_volume"
    # A general product without personal information does not count either.
    general = dossier(api, buyer, deal(api, vendor, buyer)["id"])
    assert (general["path"], general["cumulative_subjects"]) == ("no_personal_info", 0)
    with app.app_context():
        rows = {(r.exporter_org_id, r.subjects, r.contracts)
                for r in db.session.execute(select(CrossBorderVolume)).scalars()}
    assert rows == {(vendor.org_id, 120_000, 2), (other.org_id, 60_000, 1)}


def test_cumulative_sensitive_subjects_reach_the_assessment(app, api):
    vendor, buyer = exporter(api, "GD", "shantou"), api.enterprise(region="INTL")
    whitelist(api, app, "INTL")
    first = dossier(api, buyer, deal(api, vendor, buyer, **pi(6_000, sensitive=True))["id"])
    assert (first["path"], first["cumulative_sensitive_subjects"]) == ("standard_contract", 6_000)
    second = dossier(api, buyer, deal(api, vendor, buyer, **pi(4_000, sensitive=True))["id"])
    assert (second["path"], second["cumulative_sensitive_subjects"], second["rule_ids"]) == (
        "security_assessment", 10_000, ["spi-10k-or-more"])


def test_count_restarts_on_1_january_cst(app, api):
    # 31 Dec 2026 15:00 UTC is 23:00 CST (still 2026); 31 Dec 2026 17:00 UTC is 1 Jan 2027 01:00 CST.
    set_clock(app, datetime(2026, 12, 31, 15, 0, tzinfo=UTC))
    vendor, buyer = exporter(api, "CN"), api.enterprise(region="INTL")
    whitelist(api, app, "INTL")
    late = dossier(api, buyer, deal(api, vendor, buyer, **pi(90_000))["id"])
    assert (late["path"], late["cumulative_subjects"]) == ("exempt_small_volume", 90_000)
    set_clock(app, datetime(2026, 12, 31, 17, 0, tzinfo=UTC))
    new_year = dossier(api, buyer, deal(api, vendor, buyer, **pi(90_000))["id"])
    assert (new_year["path"], new_year["cumulative_subjects"]) == ("exempt_small_volume", 90_000)
    with app.app_context():
        years = {(r.year, r.subjects) for r in db.session.execute(select(CrossBorderVolume)).scalars()}
    assert years == {(2026, 90_000), (2027, 90_000)}


# -- 3. filing deadlines ------------------------------------------------------------------------------

# Checked by hand against chinese_calendar 1.11.0 (is_workday):
# * signed Fri 13 Feb 2026 CST: day 0 is 13 Feb; Sat 14 Feb is an adjusted working day (1), 15-23 Feb
#   are the Spring Festival holiday, Tue 24 - Fri 27 Feb (2-5), Sat 28 Feb adjusted working day (6),
#   Mon 2 - Thu 5 Mar (7-10) -> Thu 5 Mar 23:59:59 CST = 2026-03-05T15:59:59Z.
# * signed at 16:30Z on 13 Feb = Sat 14 Feb 00:30 CST: day 0 is 14 Feb; 24-27 Feb (1-4), Sat 28 Feb (5),
#   2-6 Mar (6-10) -> Fri 6 Mar 23:59:59 CST = 2026-03-06T15:59:59Z.
# * signed Wed 30 Sep 2026 CST: 1-7 Oct National Day, Thu 8, Fri 9 Oct (1-2), Sat 10 Oct adjusted working
#   day (3), 12-16 Oct (4-8), Mon 19, Tue 20 Oct (9-10) -> Tue 20 Oct 23:59:59 CST = 2026-10-20T15:59:59Z.
# * signed Mon 28 Dec 2026 CST, counting into 2027 (unknown to 1.11.0): 29-31 Dec (1-3, known), then
#   weekdays only: Fri 1 Jan 2027 (4, not known as a holiday yet), 4-8 Jan (5-9), Mon 11 Jan (10)
#   -> 2027-01-11T15:59:59Z, provisional.
# * 2031 is unknown to the calendar: weekends only, provisional. Signed Mon 3 Mar 2031 CST: 4-7 Mar (1-4),
#   10-14 Mar (5-9), Mon 17 Mar (10) -> 2031-03-17T15:59:59Z.
@pytest.mark.parametrize(("signed_at", "due_at", "provisional"), [
    pytest.param(datetime(2026, 2, 13, 4, 0, tzinfo=UTC), "2026-03-05T15:59:59Z", False, id="spring-festival"),
    pytest.param(datetime(2026, 2, 13, 16, 30, tzinfo=UTC), "2026-03-06T15:59:59Z", False,
                 id="cst-date-after-utc-date"),
    pytest.param(datetime(2026, 9, 30, 4, 0, tzinfo=UTC), "2026-10-20T15:59:59Z", False, id="national-day"),
    pytest.param(datetime(2026, 12, 28, 4, 0, tzinfo=UTC), "2027-01-11T15:59:59Z", True,
                 id="counting-into-an-unknown-year"),
    pytest.param(datetime(2031, 3, 3, 4, 0, tzinfo=UTC), "2031-03-17T15:59:59Z", True, id="unknown-year"),
])
def test_filing_due_in_mainland_working_days(app, api, signed_at, due_at, provisional):
    set_clock(app, signed_at)  # before any actor, certificate or white-list entry is made
    vendor, buyer = exporter(api, "GD", "shenzhen"), api.enterprise(region="HK")
    whitelist(api, app, "HK")
    contract = deal(api, vendor, buyer, **pi(150_000))
    assert parse(contract["signed_at"]).astimezone(UTC).date() == signed_at.date()
    got = dossier(api, buyer, contract["id"])
    assert got["path"] == "gba_standard_contract"
    assert got["filing"]["due_at"] == due_at
    assert got["filing"]["provisional_due_date"] is provisional
    assert got["provisional_due_date"] is provisional
    assert got["status"] == "awaiting_filing"
    text = document(api, vendor, contract["id"], "particulars")
    assert due_at in text
    assert ("counted over weekends only" in text) is provisional


# -- 4. delivery waits for the dossier ----------------------------------------------------------------

def test_overdue_standard_contract_suspends_delivery_until_filed(app, api):
    vendor, buyer = exporter(api, "GD", "shantou"), api.enterprise(region="HK")
    whitelist(api, app, "HK")
    got = bought(api, vendor=vendor, buyer=buyer, origin_region="GD", **pi(200_000))
    contract_id, ent, rel = got["trade"]["contract_id"], got["ent"], got["release"]
    before = dossier(api, buyer, contract_id)
    assert (before["path"], before["status"]) == ("standard_contract", "awaiting_filing")
    due = parse(before["filing"]["due_at"])
    assert ent["status"] == "active"
    link(api, buyer, ent["id"], rel["id"])

    # One minute before the due date: still active.
    set_clock(app, due - timedelta(minutes=1))
    assert ent_of(api, buyer, ent["id"])["status"] == "active"
    assert dossier(api, buyer, contract_id)["status"] == "awaiting_filing"

    # Past it: overdue on read, the entitlement suspended with the reason, links refused.
    set_clock(app, due + timedelta(minutes=1))
    assert dossier(api, buyer, contract_id)["status"] == "overdue"
    shown = ent_of(api, buyer, ent["id"])
    assert shown["status"] == "suspended" and OVERDUE in shown["status_reason"], shown
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and OVERDUE in r.get_json()["detail"], r.get_json()
    with app.app_context():
        assert db.session.execute(select(Dossier.status)).scalar_one() == "awaiting_filing"  # reads never write
    assert events(app, "dossier.overdue") == []

    # The sweep persists it and announces it to both parties, once.
    sweep(app)
    with app.app_context():
        row = db.session.execute(select(Dossier)).scalar_one()
        assert (row.status, row.overdue_at is not None) == ("overdue", True)
    (event,) = events(app, "dossier.overdue")
    assert sorted(event.org_ids) == sorted([vendor.org_id, buyer.org_id])
    assert event.payload["contract_id"] == contract_id and event.payload["path"] == "standard_contract"
    assert event.payload["due_at"] == before["filing"]["due_at"]
    assert dossier(api, vendor, contract_id)["overdue_at"]
    sweep(app)
    assert len(events(app, "dossier.overdue")) == 1
    shown = ent_of(api, api.operator(), ent["id"])
    assert shown["status"] == "suspended" and OVERDUE in shown["status_reason"]

    # Filed late by the seller: filed, the entitlement active again at once.
    filed = filing(api, vendor, contract_id, {"reference": "粤网信备-2026-000001"}, 200)
    assert (filed["status"], filed["filing"]["reference"]) == ("filed", "粤网信备-2026-000001")
    assert filed["filing"]["filed_at"] and filed["overdue_at"]
    shown = ent_of(api, buyer, ent["id"])
    assert (shown["status"], shown["status_reason"]) == ("active", None)
    link(api, buyer, ent["id"], rel["id"])
    assert entitlement_of(api, buyer, got["trade"]["id"])["status"] == "active"


def test_filed_before_due_date_is_never_overdue(app, api):
    vendor, buyer = exporter(api, "GD", "shenzhen"), api.enterprise(region="HK")
    whitelist(api, app, "HK")
    got = bought(api, vendor=vendor, buyer=buyer, origin_region="GD", **pi(300_000))
    contract_id = got["trade"]["contract_id"]
    d = dossier(api, buyer, contract_id)
    assert d["path"] == "gba_standard_contract"
    filing(api, vendor, contract_id, {"reference": "GBA-1"}, 200)
    set_clock(app, parse(d["filing"]["due_at"]) + timedelta(days=3))
    sweep(app)
    assert dossier(api, buyer, contract_id)["status"] == "filed"
    assert ent_of(api, buyer, got["ent"]["id"])["status"] == "active"
    assert events(app, "dossier.overdue") == []


def test_security_assessment_suspends_until_approved(app, api):
    vendor, buyer = exporter(api, "GD", "shenzhen"), api.enterprise(region="HK")
    whitelist(api, app, "HK")
    got = bought(api, vendor=vendor, buyer=buyer, origin_region="GD", **IMPORTANT)
    contract_id, ent, rel = got["trade"]["contract_id"], got["ent"], got["release"]
    d = dossier(api, buyer, contract_id)
    assert (d["path"], d["filing"]["approval_required"], d["filing"]["due_at"]) == (
        "security_assessment", True, None)
    shown = ent_of(api, buyer, ent["id"])
    assert shown["status"] == "suspended" and ASSESSMENT in shown["status_reason"], shown
    link(api, buyer, ent["id"], rel["id"], expect=403)

    # The seller files: still suspended (not approved).
    filed = filing(api, vendor, contract_id, {"reference": "SA-2026-7"}, 200)
    assert filed["status"] == "filed" and filed["filing"]["approved_at"] is None
    shown = ent_of(api, buyer, ent["id"])
    assert shown["status"] == "suspended" and ASSESSMENT in shown["status_reason"]
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and ASSESSMENT in r.get_json()["detail"]
    # Nothing in the sweep ends it either (no due date; not overdue).
    sweep(app)
    assert ent_of(api, buyer, ent["id"])["status"] == "suspended"

    # The operator records the approval under the same reference: active.
    approved = filing(api, api.operator(), contract_id, {"reference": "SA-2026-7", "approved": True}, 200)
    assert approved["filing"]["approved_at"] and approved["status"] == "filed"
    shown = ent_of(api, buyer, ent["id"])
    assert (shown["status"], shown["status_reason"]) == ("active", None)
    link(api, buyer, ent["id"], rel["id"])
    # Approving again is refused and changes nothing.
    filing(api, api.operator(), contract_id, {"reference": "SA-2026-7", "approved": True}, 409)
    assert dossier(api, buyer, contract_id)["filing"]["approved_at"] == approved["filing"]["approved_at"]


def test_unapproved_assessment_holds_the_auto_acceptance(app, api):
    """The buyer's access never started: the acceptance period does not run out on a suspended deal."""
    vendor, buyer = exporter(api, "CN"), api.enterprise(region="MO")
    whitelist(api, app, "MO", days=365)
    got = bought(api, vendor=vendor, buyer=buyer, origin_region="CN", **pi(20_000, sensitive=True))
    trade_id, contract_id = got["trade"]["id"], got["trade"]["contract_id"]
    assert dossier(api, buyer, contract_id)["path"] == "security_assessment"
    days = int(app.config["ACCEPTANCE_DAYS"])
    set_clock(app, _now(app) + timedelta(days=days + 1))
    sweep(app)
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] != "settled"
    filing(api, api.operator(), contract_id, {"reference": "SA-MO-1", "approved": True}, 200)
    assert ent_of(api, buyer, got["ent"]["id"])["status"] == "active"
    sweep(app)
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] != "settled"  # the period restarts
    set_clock(app, _now(app) + timedelta(days=days + 1))
    sweep(app)
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "settled"


def test_operator_approval_in_one_step(app, api):
    vendor, buyer = exporter(api, "CN"), api.enterprise(region="INTL")
    whitelist(api, app, "INTL")
    got = bought(api, vendor=vendor, buyer=buyer, origin_region="CN", **pi(1_500_000))
    contract_id = got["trade"]["contract_id"]
    assert ent_of(api, buyer, got["ent"]["id"])["status"] == "suspended"
    done = filing(api, api.operator(), contract_id, {"reference": "SA-1", "approved": True}, 200)
    assert (done["status"], done["filing"]["reference"]) == ("filed", "SA-1")
    assert done["filing"]["approved_at"] and done["filing"]["filed_at"]
    assert ent_of(api, buyer, got["ent"]["id"])["status"] == "active"


# -- 5. filing rules ----------------------------------------------------------------------------------

@pytest.fixture
def standard(app, api):
    """A signed standard-contract deal (CN exporter, INTL buyer), its dossier awaiting filing."""
    vendor, buyer = exporter(api, "CN"), api.enterprise(region="INTL")
    whitelist(api, app, "INTL")
    contract = deal(api, vendor, buyer, **pi(250_000))
    return {"vendor": vendor, "buyer": buyer, "contract_id": contract["id"]}


def test_filing_by_parties_and_others(app, api, standard):
    vendor, buyer, cid = standard["vendor"], standard["buyer"], standard["contract_id"]
    stranger = api.vendor(region="CN")
    before = dossier(api, buyer, cid)
    # The buyer is a party but not the exporter: 403; a non-party: 404 (as for the dossier itself).
    filing(api, buyer, cid, {"reference": "B-1"}, 403)
    filing(api, stranger, cid, {"reference": "S-1"}, 404)
    dossier(api, stranger, cid, expect=404)
    document(api, stranger, cid, "particulars", expect=404)
    filing(api, vendor, "ctr_doesnotexist", {"reference": "X"}, 404)
    # `approved` on a contract path: 422 naming the field, from the seller or an operator.
    body = filing(api, vendor, cid, {"reference": "A-1", "approved": True}, 422)
    assert "approved" in body.get("errors", {}), body
    filing(api, api.operator(), cid, {"reference": "A-1", "approved": True}, 422)
    assert dossier(api, buyer, cid) == before  # nothing changed

    filed = filing(api, vendor, cid, {"reference": "REF-1"}, 200)
    assert filed["status"] == "filed"
    # Filing again: another reference 409, the same one 409; nothing changes.
    filing(api, vendor, cid, {"reference": "REF-2"}, 409)
    filing(api, api.operator(), cid, {"reference": "REF-2"}, 409)
    filing(api, vendor, cid, {"reference": "REF-1"}, 409)
    after = dossier(api, buyer, cid)
    assert after["filing"] == filed["filing"] and after["status"] == "filed"


def test_operator_may_file_a_contract_path(app, api, standard):
    done = filing(api, api.operator(), standard["contract_id"], {"reference": "OP-1"}, 200)
    assert (done["status"], done["filing"]["reference"], done["filing"]["approved_at"]) == ("filed", "OP-1", None)


def test_seller_may_not_approve_a_security_assessment(app, api):
    vendor, buyer = exporter(api, "CN"), api.enterprise(region="HK")
    whitelist(api, app, "HK")
    cid = deal(api, vendor, buyer, **IMPORTANT)["id"]
    body = filing(api, vendor, cid, {"reference": "SA-9", "approved": True}, 403)
    assert "approved" in body.get("errors", {}), body
    d = dossier(api, buyer, cid)
    assert d["status"] == "awaiting_filing" and d["filing"]["approved_at"] is None
    # The operator approving under another reference than the seller's filing: 409.
    filing(api, vendor, cid, {"reference": "SA-9"}, 200)
    filing(api, api.operator(), cid, {"reference": "SA-OTHER", "approved": True}, 409)
    assert dossier(api, buyer, cid)["filing"]["approved_at"] is None


def test_not_required_dossier_cannot_be_filed(app, api):
    vendor, buyer = exporter(api, "GD", "shenzhen"), api.enterprise(region="HK")
    whitelist(api, app, "HK")
    cid = deal(api, vendor, buyer, **pi(1_000))["id"]
    before = dossier(api, buyer, cid)
    assert before["status"] == "not_required"
    filing(api, vendor, cid, {"reference": "N-1"}, 409)
    filing(api, api.operator(), cid, {"reference": "N-1"}, 409)
    assert dossier(api, buyer, cid) == before


BAD_BODIES = [
    pytest.param({}, id="missing-reference"),
    pytest.param({"approved": False}, id="only-approved"),
    pytest.param({"reference": None}, id="null-reference"),
    pytest.param({"reference": ""}, id="empty-reference"),
    pytest.param({"reference": "   "}, id="blank-reference"),
    pytest.param({"reference": 12345}, id="number-reference"),
    pytest.param({"reference": ["R-1"]}, id="list-reference"),
    pytest.param({"reference": {"a": 1}}, id="object-reference"),
    pytest.param({"reference": "R" * 101}, id="too-long-reference"),
    pytest.param({"reference": "R-1", "approved": "yes"}, id="string-approved"),
    pytest.param({"reference": "R-1", "approved": None}, id="null-approved"),
    pytest.param({"reference": "R-1", "extra": 1}, id="unknown-field"),
    pytest.param({"reference": "R\x00-1"}, id="nul-in-reference"),
]


def test_bad_filing_input_is_422_and_changes_nothing(app, api, standard):
    vendor, cid = standard["vendor"], standard["contract_id"]
    before = dossier(api, vendor, cid)
    for p in BAD_BODIES:
        (body,) = p.values
        r = api.post(f"contracts/{cid}/dossier/filing", vendor, json=body)
        assert r.status_code == 422, (p.id, r.status_code, r.get_json())
        if p.id in ("missing-reference", "only-approved"):
            assert "reference" in r.get_json().get("errors", {}), r.get_json()
    for raw, ctype in ((b"not json", "application/json"), (b"[1, 2]", "application/json"),
                       (b"null", "application/json"), (b'"R-1"', "application/json"),
                       (b"reference=R-1", "application/x-www-form-urlencoded"), (b"\xff\xfe", "application/json")):
        r = api.client.post(f"/api/v1/contracts/{cid}/dossier/filing", data=raw,
                            headers={**vendor.headers, "Content-Type": ctype})
        assert 400 <= r.status_code < 500, (raw, r.status_code, r.get_data()[:200])
    for weird in ("%00", "x" * 500, "' OR 1=1 --", "ctr_%2e%2e"):
        r = api.get(f"contracts/{weird}/dossier", vendor)
        assert r.status_code in (404, 422), (weird, r.status_code)
        r = api.get(f"contracts/{cid}/dossier/documents/{weird}", vendor)
        assert r.status_code in (404, 422), (weird, r.status_code)
    assert dossier(api, vendor, cid) == before


def test_dossier_needs_a_token(app, api, standard):
    cid = standard["contract_id"]
    assert api.get(f"contracts/{cid}/dossier").status_code == 401
    assert api.post(f"contracts/{cid}/dossier/filing", json={"reference": "R"}).status_code == 401
    assert api.get(f"contracts/{cid}/dossier/documents/particulars").status_code == 401


# -- 6. personal_info on products ---------------------------------------------------------------------

def test_personal_info_required_with_contains_personal_info(app, api):
    vendor = api.vendor()
    body = product_body(contains_personal_info=True)
    del body["personal_info"]
    r = api.post("products", vendor, json=body)
    assert r.status_code == 422 and "personal_info" in r.get_json().get("errors", {}), r.get_json()
    body["personal_info"] = None
    r = api.post("products", vendor, json=body)
    assert r.status_code == 422 and "personal_info" in r.get_json().get("errors", {}), r.get_json()


@pytest.mark.parametrize("personal_info", [
    pytest.param({"subjects": 10, "sensitive": False}, id="with-false-flag"),
    pytest.param({"subjects": 0, "sensitive": False}, id="zero-subjects"),
])
def test_personal_info_refused_without_contains_personal_info(app, api, personal_info):
    body = product_body(contains_personal_info=False, personal_info=personal_info)
    r = api.post("products", api.vendor(), json=body)
    assert r.status_code == 422 and "personal_info" in str(r.get_json().get("errors", {})), r.get_json()


@pytest.mark.parametrize("personal_info", [
    pytest.param({"subjects": -1, "sensitive": False}, id="negative"),
    pytest.param({"subjects": "many", "sensitive": False}, id="string-subjects"),
    pytest.param({"subjects": 1.5, "sensitive": False}, id="fraction"),
    pytest.param({"subjects": 10}, id="no-sensitive"),
    pytest.param({"sensitive": True}, id="no-subjects"),
    pytest.param({"subjects": 10, "sensitive": "yes"}, id="string-sensitive"),
    pytest.param({"subjects": 10**30, "sensitive": False}, id="huge"),
    pytest.param([10, False], id="list"),
])
def test_personal_info_malformed_is_422(app, api, personal_info):
    body = product_body(contains_personal_info=True, personal_info=personal_info)
    r = api.post("products", api.vendor(), json=body)
    assert r.status_code == 422, (r.status_code, r.get_json())


def test_version_certified_before_personal_info_existed(app, api):
    vendor = exporter(api, "GD", "shenzhen")
    listed = certify(api, vendor, origin_region="GD", **pi(200_000))
    number = listed["certificate_number"]
    cert_before = api.get(f"certificates/{number}").get_json()
    assert cert_before["verification"] == {"signature_valid": True, "digest_matches": True}
    before = api.get(f"products/{listed['id']}", vendor).get_json()
    # As if certified before the field existed: the version's personal_info is null in the database.
    execute(app, update(ProductVersion).where(ProductVersion.product_id == listed["id"])
            .values(personal_info=None))
    hk, gd = api.enterprise(region="HK"), api.enterprise(region="GD")
    whitelist(api, app, "HK")
    refused = bid(api, hk, listed, expect=409)
    assert "personal_info" in refused.get("errors", {}), refused
    assert "personal_info" in refused["detail"]
    # A domestic deal still works, and signing it opens no dossier.
    offer = bid(api, gd, listed)
    r = api.post(f"offers/{offer['id']}/accept", vendor)
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    sign(api, gd, cid)
    sign(api, vendor, cid)
    dossier(api, gd, cid, expect=404)
    # The certificate and the product as shown are unchanged.
    after = api.get(f"products/{listed['id']}", vendor).get_json()
    assert after["status"] == "listed"
    cert_after = api.get(f"certificates/{number}").get_json()
    assert {k: v for k, v in cert_after.items() if k != "verification"} == \
        {k: v for k, v in cert_before.items() if k != "verification"}
    # (`digest_matches` is not asserted: this simulation nulls a field the digest was computed over,
    # which a version really certified before the field existed never had.)
    assert cert_after["verification"]["signature_valid"] is True
    assert {k: v for k, v in after.items() if k not in ("personal_info", "updated_at", "stats")} == \
        {k: v for k, v in before.items() if k not in ("personal_info", "updated_at", "stats")}


# Regression: the 409 once followed the product's origin region and the dossier the seller's, so a GD
# seller's "HK-origin" personal data reached a dossier with 0 individuals (path exempt).
def test_missing_personal_info_refused_whenever_a_dossier_would_open(app, api):
    vendor = exporter(api, "GD", "shenzhen")
    listed = certify(api, vendor, origin_region="HK", **pi(500_000))
    execute(app, update(ProductVersion).where(ProductVersion.product_id == listed["id"])
            .values(personal_info=None))
    buyer = api.enterprise(region="HK")
    r = api.post("offers", buyer, json={"product_id": listed["id"],
                                        "price": {"amount": listed["price"]["amount"],
                                                  "currency": listed["price"]["currency"]},
                                        "terms": {"scope": "commercial", "duration_days": 365,
                                                  "delivery_mode": listed["delivery_mode"]}})
    assert r.status_code == 409 and "personal_info" in r.get_json().get("errors", {}), r.get_json()


# -- 7. organizations' city and zone ------------------------------------------------------------------

def _registration(n: str, **place_: Any) -> dict[str, Any]:
    return {"name": f"Place test org {n} 测试", "type": "vendor", "region": "GD",
            "registration_number": f"91440300PLACE{n}", **place_,
            "admin": {"email": f"place{n}@vendor.test", "password": "correct horse battery staple",
                      "name": f"Admin {n}"}}


@pytest.mark.parametrize(("fields", "status", "field"), [
    pytest.param({"city": "shenzhen", "zone": "qianhai"}, 201, None, id="shenzhen-qianhai"),
    pytest.param({"city": "zhuhai", "zone": "hengqin"}, 201, None, id="zhuhai-hengqin"),
    pytest.param({"city": "shantou"}, 201, None, id="shantou-no-zone"),
    pytest.param({"city": None, "zone": None}, 201, None, id="nulls"),
    pytest.param({"region": "HK", "city": "shenzhen"}, 422, "city", id="city-outside-gd"),
    pytest.param({"region": "CN", "city": "guangzhou"}, 422, "city", id="city-for-cn"),
    pytest.param({"zone": "qianhai"}, 422, "zone", id="zone-without-city"),
    pytest.param({"city": "guangzhou", "zone": "qianhai"}, 422, "zone", id="zone-in-wrong-city"),
    pytest.param({"city": "atlantis"}, 422, "city", id="unknown-city"),
    pytest.param({"city": "Shenzhen"}, 422, "city", id="city-not-a-slug"),
    pytest.param({"city": "shenzhen", "zone": "pudong"}, 422, "zone", id="unknown-zone"),
    pytest.param({"city": 7}, 422, "city", id="city-number"),
])
def test_city_and_zone_at_registration(app, api, fields, status, field):
    n = f"{abs(hash(str(fields))) % 10**6:06d}"
    r = api.post("organizations", json=_registration(n, **fields))  # public
    assert r.status_code == status, r.get_json()
    if status == 201:
        body = r.get_json()
        assert (body.get("city"), body.get("zone")) == (fields.get("city"), fields.get("zone"))
    else:
        assert field in r.get_json().get("errors", {}), r.get_json()


def test_city_and_zone_by_operators_only(app, api):
    vendor = api.vendor(region="GD")
    op = api.operator()
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"city": "shenzhen", "zone": "hetao"})
    assert r.status_code == 200 and (r.get_json()["city"], r.get_json()["zone"]) == ("shenzhen", "hetao")
    # The zone alone, staying in its city; then a zone of another city: 422.
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"zone": "qianhai"})
    assert r.status_code == 200 and r.get_json()["zone"] == "qianhai"
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"zone": "nansha"})
    assert r.status_code == 422 and "zone" in r.get_json()["errors"], r.get_json()
    # A city change leaving the old zone behind in another city: 422.
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"city": "foshan"})
    assert r.status_code == 422 and "zone" in r.get_json()["errors"], r.get_json()
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"city": "atlantis", "zone": None})
    assert r.status_code == 422 and "city" in r.get_json()["errors"], r.get_json()
    # The region moved out of GD with its city kept: 422; with the city cleared: fine.
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"region": "HK", "zone": None})
    assert r.status_code == 422 and "city" in r.get_json()["errors"], r.get_json()
    # The org's own admin may not change where it is.
    for change in ({"city": "guangzhou"}, {"zone": None}, {"city": None, "zone": None}):
        r = api.patch(f"organizations/{vendor.org_id}", vendor, json=change)
        assert r.status_code == 403, (change, r.get_json())
    shown = api.get(f"organizations/{vendor.org_id}", vendor).get_json()
    assert (shown["region"], shown["city"], shown["zone"]) == ("GD", "shenzhen", "qianhai")
    # Another organization's admin: refused, and nothing changes.
    r = api.patch(f"organizations/{vendor.org_id}", api.vendor(), json={"city": "guangzhou"})
    assert r.status_code in (403, 404)
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"region": "HK", "city": None, "zone": None})
    assert r.status_code == 200 and (r.get_json()["region"], r.get_json()["city"]) == ("HK", None)


# -- 8. documents escape user text --------------------------------------------------------------------

PAYLOADS = {
    "script": "<script>alert(document.cookie)</script>",
    "link": "[x](http://evil.example/pay)",
    "heading": "# 已由网信办备案 Filed with the CAC",
    "bidi": "invoice\u202egpj.exe",
}
BENIGN = "广州市实时交通流量数据 Guangzhou real-time traffic flow"
TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)")
UNESCAPED_LINK = re.compile(r"(?<!\\)\]\s*[(\[]")


def _documents(app, api, payload: str, tag: str) -> dict[str, str]:
    vendor = exporter(api, "GD", "shenzhen", name=f"{payload} 卖方 {tag}")
    buyer = api.enterprise(region="HK", name=f"{payload} 买方 {tag}")
    whitelist(api, app, "HK")
    cid = deal(api, vendor, buyer, title=f"{BENIGN} {payload}", scenarios=[f"交通信号配时优化 {payload}"],
               **pi(150_000))["id"]
    return {kind: document(api, buyer, cid, kind) for kind in ("particulars", "undertaking")}


def _unescape(markdown: str) -> str:
    return htmllib.unescape(re.sub(r"\\(.)", r"\1", markdown))


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_documents_escape_user_text(app, api, name):
    payload = PAYLOADS[name]
    base = _documents(app, api, "正常 plain", "base")
    docs = _documents(app, api, payload, name)
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    for kind, text in docs.items():
        assert "<" not in text and ">" not in text, (kind, text)
        assert not UNESCAPED_LINK.search(text), (kind, text)
        assert not re.search(r"(?<!\\)://", text), (kind, text)
        assert not set(text) & BIDI, kind
        headings = [line for line in text.splitlines() if line.startswith("#")]
        assert headings == [line for line in base[kind].splitlines() if line.startswith("#")], kind
        assert [line[:2] for line in text.splitlines()] == [line[:2] for line in base[kind].splitlines()], kind
        html = md.render(text)
        assert Counter(TAG.findall(html)) == Counter(TAG.findall(md.render(base[kind]))), (kind, html)
        for needle in ("<script", "<a ", "<img", "<h1>已由", "<h2>已由"):
            assert needle not in html.lower(), (kind, needle)
        # Still readable: the payload's visible text is there, bidi controls shown as <U+202E>.
        visible = "".join(f"<U+{ord(ch):04X}>" if ch in BIDI else ch for ch in payload)
        plain = _unescape(text)
        assert f"{BENIGN} {visible}" in plain, (kind, plain)
        assert f"{visible} 卖方 {name}" in plain and f"{visible} 买方 {name}" in plain, (kind, plain)
