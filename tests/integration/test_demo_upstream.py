"""The demo's vendor API (delivery.demo_upstream): served by a development server only, deterministic,
and asking for the vendor's header the gateway adds (the README tour calls it through the gateway)."""

from __future__ import annotations

import secrets

from delivery import demo_upstream

URL = f"{demo_upstream.PREFIX}/traffic-flow?segment=TH-0412&at=2026-11-02T08:02:00Z&points=3"
VENDOR = {demo_upstream.HEADER: demo_upstream.VENDOR_KEY}


def test_not_served_in_testing_or_production(client, make_app):
    assert client.get(URL, headers=VENDOR).status_code == 404
    production = make_app(DATAFAIR_ENV="production", SECRET_KEY=secrets.token_urlsafe(48))
    assert production.test_client().get(URL, headers=VENDOR).status_code == 404


def test_a_development_server_answers_the_same_readings_every_time_with_the_vendor_header(make_app):
    dev = make_app(DATAFAIR_ENV="development").test_client()
    assert dev.get(URL).status_code == 401
    first, again = dev.get(URL, headers=VENDOR), dev.get(URL, headers=VENDOR)
    assert first.status_code == 200 and first.get_json() == again.get_json()
    readings = first.get_json()["readings"]
    # The hour up to `at`, on the 5-minute grid: 07:50, 07:55, 08:00.
    assert [r["ts"] for r in readings] == ["2026-11-02T07:50:00Z", "2026-11-02T07:55:00Z", "2026-11-02T08:00:00Z"]
    assert all(r["segment_id"] == "TH-0412" and r["flow_per_5min"] > 0 for r in readings)
    assert dev.get(URL.replace("TH-0412", "XX-0000"), headers=VENDOR).status_code == 404
