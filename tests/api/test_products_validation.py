"""Creating and editing products: every field validated strictly (422 naming the field, nothing written)."""

from __future__ import annotations

import copy

import pytest

from tests.factories import create_product, product_body

MAX = 2**53 - 1


def _set(path: str, value):
    def apply(body):
        node = body
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return body
    return apply


DELETE = object()
BAD = [
    # (what is changed, value, the error key expected)
    ("title", "", "title"),
    ("title", "x" * 201, "title"),
    ("title", "bad\x00title", "title"),
    ("title", DELETE, "title"),
    ("title", None, "title"),
    ("summary", "s" * 501, "summary"),
    ("description", 42, "description"),
    ("description", "d" * 20_001, "description"),
    ("category", "tourism", "category"),
    ("keywords", [f"k{i}" for i in range(21)], "keywords"),
    ("keywords", ["k" * 51], "keywords.0"),
    ("keywords", ["交通", "交通"], "keywords"),
    ("keywords", "交通", "keywords"),
    ("data_format", "xml", "data_format"),
    ("delivery_mode", "email", "delivery_mode"),
    ("classification", "secret", "classification"),
    ("contains_personal_info", "no", "contains_personal_info"),
    ("contains_personal_info", 0, "contains_personal_info"),
    ("origin_region", "US", "origin_region"),
    ("update_frequency", "hourly", "update_frequency"),
    ("price", DELETE, "price"),
    ("price.amount", 0, "price.amount"),
    ("price.amount", -5, "price.amount"),
    ("price.amount", 12.5, "price.amount"),
    ("price.amount", "100", "price.amount"),
    ("price.amount", True, "price.amount"),
    ("price.amount", MAX + 1, "price.amount"),
    ("price.currency", "USD", "price.currency"),
    ("price.model", "free", "price.model"),
    ("price.period", DELETE, "price.period"),
    ("price.period", "week", "price.period"),
    ("price.discount", 10, "price.discount"),
    ("sample.rows", [["a", 1, 2.0, 3]] * 51, "sample.rows"),
    ("sample.rows", [["only", "three", "cells"]], "sample.rows"),
    ("sample.rows", [["a", {"nested": 1}, 1, 2]], "sample.rows.0.1"),
    ("sample.rows", [["a", "x" * 1001, 1, 2]], "sample.rows.0.1"),
    ("sample.rows", [["a", "b\x00", 1, 2]], "sample.rows.0.1"),
    ("sample.rows", [["a", 2**60, 1, 2]], "sample.rows.0.1"),
    ("sample.rows", [], "sample.rows"),
    ("sample.columns", [], "sample.columns"),
    ("sample.columns", ["a", "a", "b", "c"], "sample.columns"),
    ("license.scope", "resale", "license.scope"),
    ("license.duration_days", 0, "license.duration_days"),
    ("license.resale_allowed", "yes", "license.resale_allowed"),
    ("scenarios", [], "scenarios"),
    ("scenarios", [f"场景 {i}" for i in range(11)], "scenarios"),
    ("data_source.type", "scraped", "data_source.type"),
    ("data_source.description", DELETE, "data_source.description"),
    ("coverage.time_from", "2024-01-01T00:00:00", "coverage.time_from"),
    ("coverage.time_to", "2023-01-01T00:00:00Z", "coverage.time_to"),
    ("coverage.regions", [], "coverage.regions"),
    ("volume", {}, "volume.records"),
    ("volume.records", -1, "volume.records"),
    ("status", "listed", "status"),
    ("owner_org_id", "org_x", "owner_org_id"),
    ("id", "prd_mine", "id"),
    ("version", 7, "version"),
]


def _mine(api, vendor):
    r = api.get("products?mine=true", vendor)
    assert r.status_code == 200
    return r.get_json()["total"]


@pytest.mark.parametrize(("path", "value", "key"), BAD, ids=[f"{p}={str(v)[:20]}" for p, v, _ in BAD])
def test_bad_field_is_refused_and_nothing_is_written(api, path, value, key):
    vendor = api.vendor()
    body = _set(path, value)(product_body(price={"model": "subscription", "amount": 100, "currency": "CNY",
                                                  "period": "month"}))
    r = api.post("products", vendor, json=body)
    assert r.status_code == 422, r.get_json()
    assert r.content_type == "application/problem+json"
    errors = r.get_json()["errors"]
    assert key in errors, errors
    assert _mine(api, vendor) == 0


def test_one_time_price_with_a_period_is_refused(api):
    vendor = api.vendor()
    r = api.post("products", vendor, json=product_body(
        price={"model": "one_time", "amount": 100, "currency": "CNY", "period": "month"}))
    assert r.status_code == 422 and "price.period" in r.get_json()["errors"]


@pytest.mark.parametrize("price", [
    {"model": "one_time", "amount": 1, "currency": "HKD"},
    {"model": "per_call", "amount": MAX, "currency": "MOP"},
    {"model": "negotiable", "amount": 5_000_000, "currency": "CNY", "period": None},
    {"model": "subscription", "amount": 99, "currency": "CNY", "period": "year"},
])
def test_valid_prices_are_stored_exactly(api, price):
    vendor = api.vendor()
    created = create_product(api, vendor, price=price)
    assert created["price"] == {"period": None, **price}
    assert isinstance(created["price"]["amount"], int)


def test_optional_parts_may_be_null_and_chinese_round_trips(api):
    vendor = api.vendor()
    created = create_product(api, vendor, sample=None, coverage=None, volume=None,
                             title="澳門旅遊數據 Macao «tourism» — ½ 😀")
    assert created["sample"] is None and created["coverage"] is None and created["volume"] is None
    assert created["title"] == "澳門旅遊數據 Macao «tourism» — ½ 😀"
    assert created["status"] == "draft" and created["version"] == 1
    assert created["owner_org_id"] == vendor.org_id


def test_created_product_shows_every_field_as_sent(api):
    vendor = api.vendor()
    body = product_body()
    created = create_product(api, vendor, **copy.deepcopy(body))
    for field in body:
        assert created[field] == body[field], field


def test_only_verified_vendors_create_products(api):
    body = product_body()
    assert api.post("products", None, json=body).status_code == 401
    assert api.post("products", api.enterprise(), json=body).status_code == 403
    assert api.post("products", api.operator(), json=body).status_code == 403
    assert api.post("products", api.vendor(verified=False), json=body).status_code == 403


def test_non_json_body_is_415_and_malformed_is_400(api):
    vendor = api.vendor()
    r = api.request("POST", "products", vendor, data="title=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = api.request("POST", "products", vendor, data="{bad", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert _mine(api, vendor) == 0


@pytest.mark.parametrize(("changes", "key"), [
    ({}, "body"),
    ({"title": None}, "title"),
    ({"category": "tourism"}, "category"),
    ({"price": {"model": "subscription", "amount": 100, "currency": "CNY"}}, "price.period"),
    ({"status": "listed"}, "status"),
    ({"keywords": ["k" * 51]}, "keywords.0"),
])
def test_bad_patch_is_refused_and_changes_nothing(api, changes, key):
    vendor = api.vendor()
    created = create_product(api, vendor)
    r = api.patch(f"products/{created['id']}", vendor, json=changes)
    assert r.status_code == 422, r.get_json()
    assert key in r.get_json()["errors"]
    after = api.get(f"products/{created['id']}", vendor).get_json()
    assert after == created
