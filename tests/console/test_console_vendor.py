"""Vendor pages (CONSOLE.md, Signed in: vendor): own products, a new product through the API's schema
and service, its submission for certification, releases with uploaded files and publication."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest

from exchange.db import db
from listings.models import Product
from tests.console.helpers import Console, text
from tests.factories import create_product

FORM = {
    "title": "深圳湾口岸客流数据 Shenzhen Bay port passenger flow", "summary": "每小时客流 Hourly flow",
    "description": "口岸闸机计数 Gate counts.", "category": "transport", "keywords": "口岸, port, 客流",
    "price.amount": "1,200.50", "price.currency": "CNY", "price.model": "one_time", "price.period": "",
    "delivery_mode": "file", "data_format": "csv", "update_frequency": "daily", "classification": "general",
    "origin_region": "GD", "license.scope": "commercial", "license.duration_days": "365",
    "scenarios": "口岸调度 port staffing\n客流预测 flow forecast", "data_source.type": "self_collected",
    "data_source.description": "闸机 gates", "sample": "hour,count\n08:00,1320\n09:00,1544", "volume.records": "8760",
}


def _products(app: Any) -> int:
    with app.app_context():
        return db.session.query(Product).count()


def test_a_new_product_is_a_draft_with_exact_minor_units_and_every_field(app: Any, api: Any) -> None:
    vendor = api.vendor()
    c = Console(app)
    c.login(vendor.email)
    r = c.post("/console/products/new", FORM, page="/console/products/new")
    assert r.status_code == 303, text(r)[:500]
    product_id = r.headers["Location"].rsplit("/", 1)[-1]
    body = api.get(f"products/{product_id}", vendor).get_json()
    assert body["status"] == "draft" and body["price"] == {"model": "one_time", "amount": 120050, "currency": "CNY",
                                                          "period": None}
    assert body["keywords"] == ["口岸", "port", "客流"]
    assert body["scenarios"] == ["口岸调度 port staffing", "客流预测 flow forecast"]
    assert body["sample"] == {"columns": ["hour", "count"], "rows": [["08:00", "1320"], ["09:00", "1544"]]}
    assert body["volume"]["records"] == 8760
    page = text(c.get("/console/products"))
    assert FORM["title"] in page and "Submit for certification" in text(c.get(f"/console/products/{product_id}"))


@pytest.mark.parametrize(("field", "value"), [
    ("price.amount", "12.345"), ("price.amount", "abc"), ("price.amount", "-1"), ("license.duration_days", "a year"),
    ("category", "astrology"), ("title", ""), ("price.model", "subscription"),  # a subscription needs a period
    ("sample", "a,b\n1"),
])
def test_a_refused_form_keeps_what_was_typed_and_creates_nothing(app: Any, api: Any, field: str, value: str) -> None:
    vendor = api.vendor()
    c = Console(app)
    c.login(vendor.email)
    before = _products(app)
    r = c.post("/console/products/new", {**FORM, field: value}, page="/console/products/new")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "Check these fields" in text(r) and 'class="field-error"' in page
    assert 'value="口岸, port, 客流"' in page  # the keywords as typed
    assert _products(app) == before


def test_products_are_the_vendors_own_and_other_roles_get_404(app: Any, api: Any) -> None:
    vendor, other = api.vendor(), api.vendor()
    theirs = create_product(api, other)
    c = Console(app)
    c.login(vendor.email)
    assert theirs["title"] not in text(c.get("/console/products"))
    for path in (f"/console/products/{theirs['id']}", f"/console/products/{theirs['id']}/releases"):
        assert c.get(path).status_code == 404
    r = c.post(f"/console/products/{theirs['id']}/submit", page="/console/products")
    assert r.status_code == 404
    assert api.get(f"products/{theirs['id']}", other).get_json()["status"] == "draft"
    buyer = Console(app)
    buyer.login(api.enterprise().email)
    for path in ("/console/products", "/console/products/new"):
        assert buyer.get(path).status_code == 404


def test_submit_for_certification_and_a_second_submission_is_refused(app: Any, api: Any) -> None:
    vendor = api.vendor()
    product = create_product(api, vendor)
    c = Console(app)
    c.login(vendor.email)
    page = f"/console/products/{product['id']}"
    r = c.post(f"{page}/submit", page=page)
    assert r.status_code == 303
    assert api.get(f"products/{product['id']}", vendor).get_json()["status"] == "in_review"
    certs = api.get("certifications", vendor).get_json()["items"]
    assert [x["product_id"] for x in certs] == [product["id"]]
    assert "Submit for certification" not in text(c.get(page))
    again = c.client.post(f"{page}/submit", data={"csrf_token": c.token(page)}, headers={"Accept": "text/html"})
    assert again.status_code == 409 and "already under certification" in text(again)
    assert len(api.get("certifications", vendor).get_json()["items"]) == 1


def test_a_release_gets_two_files_with_their_sha256_and_is_published(app: Any, api: Any) -> None:
    vendor = api.vendor()
    product = create_product(api, vendor, delivery_mode="file")
    c = Console(app)
    c.login(vendor.email)
    page = f"/console/products/{product['id']}/releases"
    assert c.post(page, {"label": "2026-11", "notes": "十一月 November"}).status_code == 303
    release = api.get(f"products/{product['id']}/releases", vendor).get_json()["items"][0]
    files = {"a.csv": b"hour,count\n08:00,1\n", "b 二.csv": "行,值\n1,2\n".encode()}
    r = c.client.post(f"{page}/{release['id']}/files", headers={"Accept": "text/html"},
                      data={"csrf_token": c.token(page),
                            "files": [(io.BytesIO(data), name) for name, data in files.items()]},
                      content_type="multipart/form-data")
    assert r.status_code == 303, text(r)[:400]
    shown = c.get(page).get_data(as_text=True)
    for data in files.values():
        assert hashlib.sha256(data).hexdigest() in shown
    assert ">b_.csv<" in shown  # a browser file name is stored in the API's alphabet (werkzeug secure_filename)
    assert c.post(f"{page}/{release['id']}/publish", page=page).status_code == 303
    assert api.get(f"releases/{release['id']}", vendor).get_json()["status"] == "published"
    assert "Upload" not in text(c.get(page))


def test_an_upload_without_files_is_refused_and_publishing_an_empty_release_too(app: Any, api: Any) -> None:
    vendor = api.vendor()
    product = create_product(api, vendor, delivery_mode="file")
    c = Console(app)
    c.login(vendor.email)
    page = f"/console/products/{product['id']}/releases"
    c.post(page, {"label": "empty"})
    release = api.get(f"products/{product['id']}/releases", vendor).get_json()["items"][0]
    r = c.post(f"{page}/{release['id']}/files", page=page)
    assert r.status_code == 422 and "Choose at least one file" in text(r)
    r = c.post(f"{page}/{release['id']}/publish", page=page)
    assert r.status_code == 422
    assert api.get(f"releases/{release['id']}", vendor).get_json()["status"] == "draft"
