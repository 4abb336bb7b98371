"""Catalog search on the running database (SQLite FTS5 or PostgreSQL tsvector): Chinese, English,
mixed, filters, sorts, pagination, and hostile input that must never become SQL or a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from exchange.db import db, utcnow
from listings import services
from listings.models import Product
from tests.factories import create_product, listed_product, principal_of


def _body(title, summary, description, keywords, **kw):
    return {"title": title, "summary": summary, "description": description, "keywords": keywords, **kw}


CATALOG = {
    "traffic": _body("广州市实时交通流量数据 Guangzhou real-time traffic flow", "主干道车流量与车速 flow and speed",
                     "地磁检测器采集 loop detectors", ["交通", "traffic"], category="transport",
                     origin_region="GD", delivery_mode="api",
                     price={"model": "subscription", "amount": 1_250_000, "currency": "CNY", "period": "month"}),
    "power": _body("珠三角电力负荷曲线 Pearl River Delta electricity load curves", "分行业负荷 sector load",
                   "十五分钟粒度 15-minute resolution", ["电力", "electricity"], category="energy",
                   origin_region="GD", delivery_mode="file", classification="important",
                   price={"model": "one_time", "amount": 2_000_000, "currency": "CNY"}),
    "credit": _body("香港中小企業信貸風險評分 Hong Kong SME credit risk scores", "違約風險 default risk",
                    "銀行流水特徵 bank flow features", ["信貸", "credit"], category="finance",
                    origin_region="HK", delivery_mode="privacy_computing",
                    price={"model": "negotiable", "amount": 20_000_000, "currency": "HKD"}),
    "tourism": _body("澳門旅客入境統計 Macao visitor arrivals", "每日入境人次 daily arrivals",
                     "口岸統計 border posts", ["旅遊", "tourism"], category="public_services",
                     origin_region="MO", delivery_mode="file",
                     price={"model": "per_call", "amount": 150, "currency": "MOP"}),
    "port": _body("深圳港集装箱吞吐量 Shenzhen port container throughput", "码头日报 terminal report",
                  "盐田与蛇口 Yantian and Shekou; 含交通运输部口径 (mentions 交通 only here)", ["港口", "port"],
                  category="transport", origin_region="GD", delivery_mode="api",
                  price={"model": "per_call", "amount": 200, "currency": "CNY"}),
}


@pytest.fixture
def catalog(api):
    vendor, other = api.vendor(), api.vendor(region="HK")
    ids = {}
    for key, body in CATALOG.items():
        owner = other if key == "credit" else vendor
        ids[key] = listed_product(api, owner, **body)["id"]
    # Listing order is not enough to tell products apart in time (whole seconds): spread them out.
    with api.app.app_context():
        for i, pid in enumerate(ids.values()):
            db.session.execute(update(Product).where(Product.id == pid)
                               .values(listed_at=utcnow() - timedelta(days=10 - i)))
        db.session.commit()
    # Not listed: must never be found.
    ids["draft"] = create_product(api, vendor, title="交通草稿 traffic draft")["id"]
    suspended = listed_product(api, vendor, title="暂停的交通数据 suspended traffic")["id"]
    with api.app.app_context():
        services.suspend(db.session, product_id=suspended, reason="certificate suspended")
        db.session.commit()
    ids["suspended"] = suspended
    ids["vendor"], ids["other"] = vendor, other
    return ids


def _search(api, actor=None, **params):
    r = api.get("products", actor, query_string=params)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _ids(api, **params):
    return [p["id"] for p in _search(api, **params)["items"]]


@pytest.mark.parametrize(("q", "expected"), [
    ("交通", {"traffic", "port"}),
    ("电力", {"power"}),
    ("负荷", {"power"}),
    ("交通流量", {"traffic"}),
    ("电力负荷", {"power"}),
    ("负荷曲线", {"power"}),
    ("珠三角", {"power"}),
    ("广州市", {"traffic"}),
    ("信贷风险", {"credit"}),      # simplified finds traditional
    ("澳門", {"tourism"}),
    ("澳门旅客", {"tourism"}),
    ("traffic", {"traffic"}),
    ("TRAFFIC Flow", {"traffic"}),
    ("credit risk", {"credit"}),
    ("port", {"port"}),
    ("广州 traffic", {"traffic"}),
    ("港口 Shenzhen", {"port"}),
    ("交通 credit", set()),
    ("区块链", set()),
    ("blockchain", set()),
])
def test_full_text(api, catalog, q, expected):
    found = set(_ids(api, q=q))
    assert found == {catalog[k] for k in expected}, q


def test_relevance_puts_title_matches_first(api, catalog):
    page = _search(api, q="交通")
    assert [p["id"] for p in page["items"]] == [catalog["traffic"], catalog["port"]]
    scores = [p["relevance"] for p in page["items"]]
    assert scores[0] > scores[1] > 0


def test_drafts_and_suspended_products_are_never_found(api, catalog):
    for q in ("交通", "traffic", "draft", "suspended", "草稿", "暂停"):
        found = _ids(api, q=q)
        assert catalog["draft"] not in found and catalog["suspended"] not in found


@pytest.mark.parametrize(("params", "expected"), [
    ({"category": "transport"}, {"traffic", "port"}),
    ({"origin_region": "HK"}, {"credit"}),
    ({"delivery_mode": "privacy_computing"}, {"credit"}),
    ({"classification": "important"}, {"power"}),
    ({"price_model": "per_call"}, {"tourism", "port"}),
    ({"currency": "MOP"}, {"tourism"}),
    ({"min_amount": 1_000_000}, {"traffic", "power", "credit"}),
    ({"max_amount": 200}, {"tourism", "port"}),
    ({"min_amount": 200, "max_amount": 2_000_000}, {"traffic", "power", "port"}),
    ({"q": "交通", "category": "transport", "price_model": "per_call"}, {"port"}),
    ({"q": "交通", "origin_region": "HK"}, set()),
])
def test_filters(api, catalog, params, expected):
    assert set(_ids(api, **params)) == {catalog[k] for k in expected}


def test_vendor_and_fair_filters(api, catalog):
    assert _ids(api, vendor_id=catalog["other"].org_id) == [catalog["credit"]]
    operator = api.operator()
    fair = api.post("fairs", operator, json={"name": "交易会", "venue": "琶洲", "starts_at": "2026-01-01T00:00:00Z",
                                             "ends_at": "2027-01-01T00:00:00Z"}).get_json()
    r = api.post(f"fairs/{fair['id']}/stalls", operator, json={
        "org_id": catalog["vendor"].org_id, "code": "A-01", "product_ids": [catalog["power"], catalog["port"]]})
    assert r.status_code == 201, r.get_json()
    assert set(_ids(api, fair_id=fair["id"])) == {catalog["power"], catalog["port"]}
    assert _ids(api, fair_id=fair["id"], q="电力") == [catalog["power"]]
    assert _ids(api, fair_id="fair_unknown") == []


def test_sorts(api, catalog):
    listed = ["traffic", "power", "credit", "tourism", "port"]
    assert _ids(api) == [catalog[k] for k in reversed(listed)], "newest first by default"
    assert _ids(api, sort="newest") == [catalog[k] for k in reversed(listed)]
    by_price = sorted(listed, key=lambda k: CATALOG[k]["price"]["amount"])
    assert _ids(api, sort="price_asc") == [catalog[k] for k in by_price]
    assert _ids(api, sort="price_desc") == [catalog[k] for k in reversed(by_price)]
    assert _ids(api, q="交通", sort="price_asc") == [catalog["port"], catalog["traffic"]]
    assert _ids(api, q="交通", sort="relevance") == [catalog["traffic"], catalog["port"]]


def test_pagination(api, catalog):
    seen = []
    for page in (1, 2, 3):
        body = _search(api, per_page=2, page=page, sort="price_asc")
        assert body["total"] == 5 and body["page"] == page and body["per_page"] == 2
        seen += [p["id"] for p in body["items"]]
    assert len(seen) == len(set(seen)) == 5
    assert _search(api, per_page=2, page=4)["items"] == []
    assert _search(api, q="交通", per_page=1)["total"] == 2
    beyond = _search(api, q="交通", per_page=1, page=5)
    assert beyond["items"] == [] and beyond["total"] == 2
    assert _search(api, q="区块链", page=1)["total"] == 0


@pytest.mark.parametrize("params", [
    {"per_page": 0}, {"per_page": 101}, {"page": 0}, {"page": "x"}, {"category": "tourism"},
    {"sort": "random"}, {"sort": "relevance"}, {"min_amount": -1}, {"min_amount": "1.5"},
    {"min_amount": 10, "max_amount": 5}, {"max_amount": 2**63}, {"q": "x" * 201}, {"q": "交通\x00"},
    {"origin_region": "TW"}, {"mine": "maybe"},
])
def test_invalid_parameters_are_422(api, catalog, params):
    r = api.get("products", query_string=params)
    assert r.status_code == 422, (params, r.get_json())
    assert r.content_type == "application/problem+json"


@pytest.mark.parametrize("q", [
    '"', "*", "OR", "NEAR(", "'", "--", "AND", "NOT", "^", "(", ")", ":", "{}", "-", "+", "~", "%", "_",
    "\\", '交通"', '"交通', "交通*", "title:交通", "NEAR(交通 电力)", '" OR 1=1 --', "' OR '1'='1",
    "'; DROP TABLE products; --", "交通 OR 电力", "交通 AND 电力", "电力 NOT 交通", "a" * 200, "😀",
    "%交通%", "_", "‮交通", "\u3000", "ＯＲ", "near/2", "col:*", "交通'; --",
])
def test_hostile_queries_are_plain_text(api, catalog, q):
    r = api.get("products", query_string={"q": q})
    assert r.status_code == 200, (q, r.get_json())
    found = set(p["id"] for p in r.get_json()["items"])
    # Operators are words like any other, and no product contains "or", "not" or "near".
    if any(op in q.upper() for op in ("OR", "NOT", "NEAR")):
        assert found == set(), q
    assert catalog["draft"] not in found
    with api.app.app_context():
        assert db.session.query(Product).count() == 7, "nothing was dropped"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.text(max_size=200))
def test_any_query_is_answered(api, q):
    r = api.get("products", query_string={"q": q})
    assert r.status_code in (200, 422), (q, r.status_code)


def test_mine_lists_own_products_in_every_status(api, catalog):
    vendor = catalog["vendor"]
    mine = _search(api, vendor, mine="true", per_page=100)
    statuses = {p["id"]: p["status"] for p in mine["items"]}
    assert statuses[catalog["draft"]] == "draft" and statuses[catalog["suspended"]] == "suspended"
    assert catalog["credit"] not in statuses
    assert set(_ids_mine(api, vendor, q="草稿")) == {catalog["draft"]}
    assert set(_ids_mine(api, vendor, q="100%")) == set(), "LIKE wildcards are escaped"


def _ids_mine(api, actor, **params):
    return [p["id"] for p in _search(api, actor, mine="true", **params)["items"]]


def test_search_follows_edits_of_listed_products_only_when_certified(api, catalog):
    vendor = catalog["vendor"]
    api.patch(f"products/{catalog['power']}", vendor, json={"title": "光伏发电量 solar output"})
    assert _ids(api, q="光伏") == [], "an uncertified revision is not searchable"
    assert _ids(api, q="电力") == [catalog["power"]]
    principal = principal_of(api, vendor)
    with api.app.app_context():
        revision = services.submit_for_review(db.session, product_id=catalog["power"], actor=principal)
        services.mark_listed(db.session, product_id=catalog["power"], version=revision.version,
                             certificate_number="DFX-2026-123456")
        db.session.commit()
    assert _ids(api, q="光伏") == [catalog["power"]]
    assert _ids(api, q="负荷曲线") == [], "the superseded text left the index"
