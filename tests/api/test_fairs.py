"""Fairs and stalls: time windows, stall codes unique per fair, only listed products of the vendor."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exchange.db import db, utcnow
from exchange.errors import NotFound, ValidationFailed
from exchange.fields import iso_z
from listings import services
from tests.factories import create_product, listed_product


def _fair(api, operator, days=(-1, 30), name="2026 广州数据交易会 Guangzhou Data Fair 2026"):
    now = utcnow()
    r = api.post("fairs", operator, json={"name": name, "venue": "琶洲 Pazhou",
                                          "starts_at": iso_z(now + timedelta(days=days[0])),
                                          "ends_at": iso_z(now + timedelta(days=days[1]))})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_operators_create_fairs_others_may_not(api):
    operator = api.operator()
    fair = _fair(api, operator)
    assert fair["phase"] == "live" and fair["name"].startswith("2026 广州数据交易会")
    assert fair["stats"] == {"stalls": 0, "products_on_show": 0, "contracts_signed_on_site": 0, "volume": []}
    body = {"name": "x", "venue": "y", "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-02T00:00:00Z"}
    assert api.post("fairs", None, json=body).status_code == 401
    assert api.post("fairs", api.vendor(), json=body).status_code == 403
    assert api.get(f"fairs/{fair['id']}").get_json()["id"] == fair["id"]
    assert api.get("fairs/fair_nope").status_code == 404


@pytest.mark.parametrize(("change", "key"), [
    ({"ends_at": "2026-01-01T00:00:00Z"}, "ends_at"),
    ({"ends_at": "2025-12-31T00:00:00Z"}, "ends_at"),
    ({"starts_at": "2026-01-01T00:00:00"}, "starts_at"),
    ({"name": ""}, "name"),
    ({"venue": None}, "venue"),
    ({"stats": {}}, "stats"),
])
def test_fair_validation(api, change, key):
    body = {"name": "交易会", "venue": "琶洲", "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-05T00:00:00Z"}
    r = api.post("fairs", api.operator(), json={**body, **change})
    assert r.status_code == 422 and key in r.get_json()["errors"], r.get_json()
    assert api.get("fairs").get_json()["total"] == 0


def test_fair_list_and_phases(api):
    operator = api.operator()
    past = _fair(api, operator, (-10, -5), "past")
    live = _fair(api, operator, (-1, 1), "live")
    future = _fair(api, operator, (5, 10), "future")
    page = api.get("fairs").get_json()
    assert [f["id"] for f in page["items"]] == [past["id"], live["id"], future["id"]]
    for phase, fair in (("ended", past), ("live", live), ("upcoming", future)):
        assert [f["id"] for f in api.get(f"fairs?phase={phase}").get_json()["items"]] == [fair["id"]]
    assert api.get("fairs?phase=soon").status_code == 422


def test_stalls_show_only_listed_products_of_their_vendor(api):
    operator = api.operator()
    fair = _fair(api, operator)
    vendor, other = api.vendor(), api.vendor()
    mine = [listed_product(api, vendor)["id"] for _ in range(2)]
    draft = create_product(api, vendor)["id"]
    theirs = listed_product(api, other)["id"]
    url = f"fairs/{fair['id']}/stalls"
    for bad in ([draft], [theirs], [mine[0], "prd_unknown"], [mine[0], mine[0]]):
        r = api.post(url, operator, json={"org_id": vendor.org_id, "code": "A-01", "product_ids": bad})
        assert r.status_code == 422 and "product_ids" in r.get_json()["errors"], (bad, r.get_json())
    r = api.post(url, operator, json={"org_id": vendor.org_id, "code": "A-01", "product_ids": mine})
    assert r.status_code == 201, r.get_json()
    stall = r.get_json()
    assert stall["code"] == "A-01" and stall["product_ids"] == mine and stall["org_id"] == vendor.org_id
    r = api.post(url, operator, json={"org_id": other.org_id, "code": "A-01", "product_ids": [theirs]})
    assert r.status_code == 409
    assert api.post(url, operator, json={"org_id": other.org_id, "code": "A-02"}).get_json()["product_ids"] == []
    other_fair = _fair(api, operator, name="另一个展会")
    assert api.post(f"fairs/{other_fair['id']}/stalls", operator,
                    json={"org_id": other.org_id, "code": "A-01", "product_ids": [theirs]}).status_code == 201
    stalls = api.get(url).get_json()
    assert [s["code"] for s in stalls["items"]] == ["A-01", "A-02"] and stalls["total"] == 2
    assert api.get(f"fairs/{fair['id']}").get_json()["stats"]["stalls"] == 2
    assert api.get(f"fairs/{fair['id']}").get_json()["stats"]["products_on_show"] == 2


@pytest.mark.parametrize("who", ["enterprise", "pending_vendor", "unknown"])
def test_stalls_go_to_verified_vendors_only(api, who):
    operator = api.operator()
    fair = _fair(api, operator)
    org_id = {"enterprise": lambda: api.enterprise().org_id,
              "pending_vendor": lambda: api.register("vendor")["id"],
              "unknown": lambda: "org_unknown"}[who]()
    r = api.post(f"fairs/{fair['id']}/stalls", operator, json={"org_id": org_id, "code": "B-01"})
    assert r.status_code == 422 and "org_id" in r.get_json()["errors"]


def test_stall_rules(api):
    operator = api.operator()
    fair = _fair(api, operator)
    vendor = api.vendor()
    url = f"fairs/{fair['id']}/stalls"
    assert api.post(url, vendor, json={"org_id": vendor.org_id, "code": "A-01"}).status_code == 403
    assert api.post("fairs/fair_nope/stalls", operator, json={"org_id": vendor.org_id, "code": "A"}).status_code == 404
    for code in ("", "-A", "A B", "x" * 21, "展位1"):
        r = api.post(url, operator, json={"org_id": vendor.org_id, "code": code})
        assert r.status_code == 422 and "code" in r.get_json()["errors"], code
    assert api.post(url, operator, json={"org_id": vendor.org_id, "code": "A", "extra": 1}).status_code == 422
    assert api.get("fairs/fair_nope/stalls").status_code == 404


def test_products_leave_the_show_when_not_listed(api):
    operator = api.operator()
    fair = _fair(api, operator)
    vendor = api.vendor()
    keep, pause = listed_product(api, vendor)["id"], listed_product(api, vendor)["id"]
    stall = api.post(f"fairs/{fair['id']}/stalls", operator,
                     json={"org_id": vendor.org_id, "code": "C-01", "product_ids": [keep, pause]}).get_json()
    with api.app.app_context():
        services.suspend(db.session, product_id=pause, reason="certificate suspended")
        db.session.commit()
    assert api.get(f"fairs/{fair['id']}/stalls").get_json()["items"][0]["product_ids"] == [keep]
    assert api.get(f"fairs/{fair['id']}").get_json()["stats"]["products_on_show"] == 1
    assert [p["id"] for p in api.get("products", query_string={"fair_id": fair["id"]}).get_json()["items"]] == [keep]
    # Operators replace a stall's products.
    r = api.patch(f"fairs/{fair['id']}/stalls/{stall['id']}", operator, json={"product_ids": []})
    assert r.status_code == 200 and r.get_json()["product_ids"] == []
    assert api.patch(f"fairs/{fair['id']}/stalls/{stall['id']}", operator,
                     json={"product_ids": [pause]}).status_code == 422
    assert api.patch(f"fairs/{fair['id']}/stalls/stl_nope", operator, json={"product_ids": []}).status_code == 404


def test_trading_records_signings_and_sales_on_the_fair(api):
    fair = _fair(api, api.operator())
    with api.app.app_context():
        for _ in range(3):
            services.record_fair_signing(db.session, fair_id=fair["id"])
        # One row per trade: setting a trade's figure again replaces it (a refund lowers it).
        for ref, currency, amount in (("trd_1", "CNY", 1_250_000), ("trd_2", "HKD", 500), ("trd_3", "CNY", 900_000),
                                      ("trd_3", "CNY", 750_000), ("trd_4", "MOP", 0)):
            services.record_fair_sale(db.session, fair_id=fair["id"], ref=ref, currency=currency, amount=amount)
        for kwargs, error in (({"currency": "USD", "amount": 1}, ValidationFailed),
                              ({"currency": "CNY", "amount": -1}, ValidationFailed),
                              ({"currency": "CNY", "amount": 2**53}, ValidationFailed),
                              ({"currency": "CNY", "amount": 1.5}, ValidationFailed),
                              ({"currency": "HKD", "amount": 1, "ref": "trd_1"}, ValidationFailed)):
            with pytest.raises(error):
                services.record_fair_sale(db.session, fair_id=fair["id"], **{"ref": "trd_x", **kwargs})
        with pytest.raises(NotFound):
            services.record_fair_signing(db.session, fair_id="fair_nope")
        with pytest.raises(NotFound):
            services.record_fair_sale(db.session, fair_id="fair_nope", ref="trd_y", currency="CNY", amount=1)
        db.session.commit()
    stats = api.get(f"fairs/{fair['id']}").get_json()["stats"]
    assert stats["contracts_signed_on_site"] == 3
    assert stats["volume"] == [{"currency": "CNY", "amount": 2_000_000}, {"currency": "HKD", "amount": 500}]
