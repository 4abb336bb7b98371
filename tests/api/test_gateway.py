"""The API gateway against a real upstream on loopback (tests/upstream.py): what reaches the vendor,
what comes back, what is counted and logged."""

from __future__ import annotations

import pytest

from tests.deliveryflow import api_bought
from tests.upstream import Upstream, upstream  # noqa: F401 - fixture

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(autouse=True)
def _private_upstreams(app):
    # The upstream is a loopback server: development and tests only (production refuses the setting).
    app.config["ALLOW_PRIVATE_URLS"] = True


def call(api, deal, path, method="GET", **kw):
    headers = {"Authorization": f"Bearer {deal['key']}", **kw.pop("headers", {})}
    return api.client.open(f"/gateway/v1/{deal['product_id']}/{path}", method=method, headers=headers, **kw)


def test_a_call_reaches_the_vendor_with_its_header_and_never_the_buyers_credentials(api, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    r = call(api, deal, "stations/flows?day=2026-11-02", headers={"Cookie": "session=buyer", "X-Trace": "t1",
                                                                 "Proxy-Authorization": "Basic eA==",
                                                                 "Connection": "X-Drop", "X-Drop": "1"})
    assert r.status_code == 200, r.get_data()[:300]
    assert r.get_json()["path"] == "/v2/stations/flows?day=2026-11-02"
    assert "Set-Cookie" not in r.headers  # Headers are case-insensitive
    assert r.headers["X-Vendor"] == "gz"
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Content-Security-Policy"] == "sandbox"
    (got,) = upstream.received
    assert got.headers["x-api-key"] == "vendor-secret-1" and got.headers["x-trace"] == "t1"
    for absent in ("authorization", "cookie", "proxy-authorization", "x-drop"):
        assert absent not in got.headers, absent
    trade = api.get(f"trades/{deal['trade']['id']}", deal["buyer"]).get_json()
    assert trade["status"] == "delivered" and trade["delivery_evidence"] == "api_call"
    log = api.get(f"entitlements/{deal['ent']['id']}/accesses", deal["buyer"]).get_json()["items"]
    assert [(a["kind"], a["api_key_id"], a["status"]) for a in log] == [("api_call", deal["key_id"], "allowed")]


@pytest.mark.parametrize("path", ["../admin", "a/../../admin", "%2e%2e/admin", "a//b", "http://evil.example/x",
                                  "%2F%2Fevil.example"])
def test_paths_that_would_leave_the_base_url_are_400_and_not_forwarded(api, upstream, path):  # noqa: F811
    deal = api_bought(api, upstream.url)
    r = call(api, deal, path)
    # 400 from the gateway; 404 where the client itself resolved the dots and left the product's prefix.
    assert r.status_code in (400, 404), (path, r.status_code, r.get_data()[:200])
    assert upstream.count() == 0


def test_bad_and_revoked_keys_are_401_and_upstream_failures_are_not_counted(api, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    assert call(api, {**deal, "key": "dfk_nope"}, "x").status_code == 401
    upstream.answer = lambda r: (503, {}, b"down")
    r = call(api, deal, "x")
    assert r.status_code == 503
    usage = api.get(f"entitlements/{deal['ent']['id']}/usage", deal["buyer"]).get_json()
    assert usage["calls_used"] == 0
    upstream.answer = None
    assert call(api, deal, "x").status_code == 200
    assert api.get(f"entitlements/{deal['ent']['id']}/usage", deal["buyer"]).get_json()["calls_used"] == 1
    r = api.delete(f"entitlements/{deal['ent']['id']}/api-keys/{deal['key_id']}", deal["buyer"])
    assert r.status_code == 200 and r.get_json()["revoked_at"]
    assert call(api, deal, "x").status_code == 401


def test_a_dispute_refuses_calls_with_the_reason_and_logs_it(api, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    assert api.post(f"trades/{deal['trade']['id']}/disputes", deal["buyer"], json={"reason": "wrong data"}
                    ).status_code == 201
    r = call(api, deal, "x")
    assert r.status_code == 403 and r.get_json()["detail"].startswith("entitlement_suspended: dispute open. ")
    assert upstream.count() == 0
    log = api.get(f"entitlements/{deal['ent']['id']}/accesses", deal["buyer"]).get_json()["items"]
    assert [(a["kind"], a["status"]) for a in log] == [("api_call", "refused")]


def test_per_call_quota_metering_usage_entries_and_the_final_refund(api, app, upstream):  # noqa: F811
    """3 of 5 calls bought are used (a 503 in between is given back), the period is closed with one
    `usage` entry, the entitlement ends, the 2 unused calls are refunded and the trade settles."""
    from datetime import timedelta

    from sqlalchemy import update

    from delivery.models import Entitlement, UsagePeriod
    from exchange.db import db, utcnow
    from exchange.ledger.verify import verify
    from exchange.money import fee_for
    from tests.deliveryflow import execute, sweep

    deal = api_bought(api, upstream.url, calls=5, price={"model": "per_call", "amount": 80, "currency": "CNY"})
    assert deal["trade"]["amount"] == 400
    remaining = []
    for i in range(4):
        upstream.answer = (lambda r: (503, {}, b"busy")) if i == 1 else None
        r = call(api, deal, "flows")
        remaining.append((r.status_code, r.headers.get("Datafair-Calls-Remaining")))
    assert remaining == [(200, "4"), (503, "4"), (200, "3"), (200, "2")]
    usage = api.get(f"entitlements/{deal['ent']['id']}/usage", deal["buyer"]).get_json()
    assert usage["calls_included"] == 5 and usage["calls_used"] == 3
    assert [(p["calls"], p["entry_id"]) for p in usage["periods"]] == [(3, None)]
    # The period ends (moved back rather than waited for) and the sweep draws it.
    execute(app, update(UsagePeriod).where(UsagePeriod.entitlement_id == deal["ent"]["id"])
            .values(start=utcnow() - timedelta(hours=2), end=utcnow() - timedelta(seconds=1)))
    sweep(app)
    (period,) = api.get(f"entitlements/{deal['ent']['id']}/usage", deal["buyer"]).get_json()["periods"]
    assert period["calls"] == 3 and period["amount"] == 240 and period["fee"] == fee_for(240, 200)
    assert period["entry_id"]
    trade = api.get(f"trades/{deal['trade']['id']}", deal["buyer"]).get_json()
    assert trade["status"] == "delivered" and trade["settled_amount"] == 240
    # The entitlement ends (its window moved back): the unused 2 calls go back, the trade settles.
    execute(app, update(Entitlement).where(Entitlement.id == deal["ent"]["id"])
            .values(ends_at=utcnow() - timedelta(seconds=1)))
    sweep(app)
    trade = api.get(f"trades/{deal['trade']['id']}", deal["buyer"]).get_json()
    assert trade["status"] == "settled" and trade["refunded_amount"] == 160 and trade["settled_amount"] == 240
    assert trade["fee"] == fee_for(240, 200)
    kinds = [e["kind"] for e in api.get(f"ledger/entries?trade_id={trade['id']}", deal["buyer"]).get_json()["items"]]
    assert sorted(kinds) == ["payment", "refund", "usage"]
    with app.app_context():
        assert verify(db.session)["valid"]
        db.session.rollback()
    assert call(api, deal, "flows").status_code in (403, 429)
