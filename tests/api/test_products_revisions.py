"""Revisions: drafts edited in place, listed products revised as version+1, frozen while in review."""

from __future__ import annotations

from exchange.db import db
from listings import services
from tests.factories import create_product, list_product, listed_product, principal_of


def _submit(api, vendor, pid):
    with api.app.app_context():
        v = services.submit_for_review(db.session, product_id=pid, actor=principal_of(api, vendor))
        db.session.commit()
        return v.version


def _certify(api, pid, version, number):
    with api.app.app_context():
        services.mark_listed(db.session, product_id=pid, version=version, certificate_number=number)
        db.session.commit()


def test_a_draft_is_edited_in_place(api):
    vendor = api.vendor()
    created = create_product(api, vendor)
    r = api.patch(f"products/{created['id']}", vendor, json={"title": "改名 Renamed", "keywords": ["新"]})
    assert r.status_code == 200
    body = r.get_json()
    assert body["id"] == created["id"] and body["version"] == 1 and body["status"] == "draft"
    assert body["title"] == "改名 Renamed" and body["keywords"] == ["新"]
    assert body["summary"] == created["summary"], "fields not sent are kept"
    versions = api.get(f"products/{created['id']}/versions", vendor).get_json()
    assert versions["total"] == 1 and versions["items"][0]["title"] == "改名 Renamed"


def test_editing_a_listed_product_makes_a_draft_revision_and_keeps_the_listed_one(api):
    vendor = api.vendor()
    product = listed_product(api, vendor, title="广州交通 v1")
    pid = product["id"]
    r = api.patch(f"products/{pid}", vendor, json={"title": "广州交通 v2", "price": {
        "model": "one_time", "amount": 999, "currency": "CNY"}})
    assert r.status_code == 200
    revision = r.get_json()
    assert revision["product_id"] == pid and revision["version"] == 2 and revision["status"] == "draft"
    assert revision["title"] == "广州交通 v2" and revision["price"]["amount"] == 999
    assert revision["summary"] == product["summary"]
    # A second edit changes the same draft revision.
    again = api.patch(f"products/{pid}", vendor, json={"summary": "第二次修改 second edit"}).get_json()
    assert again["version"] == 2 and again["title"] == "广州交通 v2"
    # The catalog keeps showing version 1, tradable, at its price.
    public = api.get(f"products/{pid}").get_json()
    assert public["status"] == "listed" and public["version"] == 1 and public["title"] == "广州交通 v1"
    assert public["price"] == product["price"]
    listed = api.get("products", query_string={"max_amount": 1000}).get_json()
    assert pid not in [p["id"] for p in listed["items"]], "filters use the listed version's price"
    versions = api.get(f"products/{pid}/versions", vendor).get_json()
    assert [(v["version"], v["status"]) for v in versions["items"]] == [(2, "draft"), (1, "certified")]


def test_a_revision_in_review_is_frozen_then_certified_supersedes_the_old_one(api):
    vendor = api.vendor()
    pid = listed_product(api, vendor, title="电力负荷 v1")["id"]
    api.patch(f"products/{pid}", vendor, json={"title": "电力负荷 v2"})
    assert _submit(api, vendor, pid) == 2
    r = api.patch(f"products/{pid}", vendor, json={"title": "v3?"})
    assert r.status_code == 409
    assert api.delete(f"products/{pid}", vendor).status_code == 409
    assert api.get(f"products/{pid}").get_json()["status"] == "listed", "stays listed while v2 is reviewed"
    _certify(api, pid, 2, "DFX-2026-900002")
    public = api.get(f"products/{pid}").get_json()
    assert public["version"] == 2 and public["title"] == "电力负荷 v2"
    assert public["certificate_number"] == "DFX-2026-900002"
    statuses = [(v["version"], v["status"]) for v in api.get(f"products/{pid}/versions", vendor).get_json()["items"]]
    assert statuses == [(2, "certified"), (1, "superseded")]
    found = api.get("products", query_string={"q": "电力负荷"}).get_json()["items"]
    assert [p["title"] for p in found] == ["电力负荷 v2"], "the index follows the listed version"


def test_delete_delists_and_keeps_the_record(api):
    vendor = api.vendor()
    product = listed_product(api, vendor)
    r = api.delete(f"products/{product['id']}", vendor)
    assert r.status_code == 200 and r.get_json()["status"] == "delisted"
    assert api.get(f"products/{product['id']}").status_code == 404
    assert api.get(f"products/{product['id']}", vendor).get_json()["status"] == "delisted"
    assert api.delete(f"products/{product['id']}", vendor).status_code == 409
    assert api.patch(f"products/{product['id']}", vendor, json={"title": "x"}).status_code == 409
    draft = create_product(api, vendor)
    assert api.delete(f"products/{draft['id']}", vendor).get_json()["status"] == "delisted"


def test_history_records_who_when_why(api):
    vendor = api.vendor()
    pid = create_product(api, vendor)["id"]
    list_product(api, vendor, pid)
    api.delete(f"products/{pid}", vendor)
    history = api.get(f"products/{pid}/history", vendor).get_json()["items"]
    product_moves = [(h["from_status"], h["to_status"]) for h in history if h["subject"] == "product"]
    assert product_moves == [(None, "draft"), ("draft", "in_review"), ("in_review", "listed"),
                             ("listed", "delisted")]
    last = history[-1]
    assert last["actor_user_id"] == vendor.user_id and last["actor_org_id"] == vendor.org_id
    assert last["reason"] == "delisted by its owner" and last["at"].endswith("Z")
    assert api.get(f"products/{pid}/history", api.vendor()).status_code == 404
    assert api.get(f"products/{pid}/history", api.operator()).status_code == 200


def test_versions_page_is_paginated(api):
    vendor = api.vendor()
    pid = listed_product(api, vendor)["id"]
    api.patch(f"products/{pid}", vendor, json={"title": "v2"})
    page = api.get(f"products/{pid}/versions?per_page=1&page=2", vendor).get_json()
    assert page["total"] == 2 and page["page"] == 2 and page["per_page"] == 1
    assert [v["version"] for v in page["items"]] == [1]
    assert api.get(f"products/{pid}/versions?per_page=101", vendor).status_code == 422
