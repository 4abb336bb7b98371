"""Delivery's webhook events (written with each change, to both parties) and its /metrics counters
(links issued, downloads, bytes served, refusals by reason)."""

from __future__ import annotations

import re

from sqlalchemy import select

from exchange.db import db
from exchange.events.outbox import OutboxEvent
from tests.deliveryflow import CSV, entitlement_of, fetch, link, pay, release, signed_trade


def _events(app, *types: str) -> list[OutboxEvent]:
    with app.app_context():
        rows = list(db.session.execute(select(OutboxEvent).where(OutboxEvent.event_type.in_(types))
                                       .order_by(OutboxEvent.created_at, OutboxEvent.id)).scalars())
        db.session.expunge_all()
    return rows


def _sample(client, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{name}" + (rf"\{{{re.escape(selector)}\}}" if labels else "") + r" ([0-9.e+]+)$"
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def test_entitlement_and_release_events_reach_both_parties(api, app):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = pay(api, buyer, signed_trade(api, vendor, buyer)["id"])
    ent = entitlement_of(api, buyer, trade["id"])
    rel = release(api, vendor, trade["product_id"])
    r = api.post(f"trades/{trade['id']}/disputes", buyer, json={"reason": "rows missing"})
    assert r.status_code == 201
    events = _events(app, "entitlement.active", "entitlement.suspended", "release.published")
    mine = [(e.event_type, sorted(e.org_ids)) for e in events
            if e.payload.get("entitlement_id") == ent["id"] or e.payload.get("release_id") == rel["id"]]
    parties = sorted([vendor.org_id, buyer.org_id])
    assert mine == [("entitlement.active", parties), ("release.published", parties),
                    ("entitlement.suspended", parties)]
    suspended = next(e for e in events if e.event_type == "entitlement.suspended"
                     and e.payload["entitlement_id"] == ent["id"])
    assert suspended.payload["status_reason"] == "dispute open"


def test_metrics_count_links_downloads_bytes_and_refusals(api, client):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = pay(api, buyer, signed_trade(api, vendor, buyer)["id"])
    ent = entitlement_of(api, buyer, trade["id"])
    rel = release(api, vendor, trade["product_id"])
    before = {"links": _sample(client, "datafair_delivery_links_total", storage="file"),
              "downloads": _sample(client, "datafair_delivery_downloads_total"),
              "bytes": _sample(client, "datafair_delivery_bytes_served_total"),
              "refused": _sample(client, "datafair_delivery_refusals_total", reason="entitlement_suspended")}
    got = link(api, buyer, ent["id"], rel["id"])
    assert fetch(api, got["url"]).data == CSV
    assert fetch(api, got["url"], Range="bytes=0-9").status_code == 206
    api.post(f"trades/{trade['id']}/disputes", buyer, json={"reason": "rows missing"})
    assert api.post(f"entitlements/{ent['id']}/downloads", buyer,
                    json={"release_id": rel["id"], "file": "traffic.csv"}).status_code == 403
    after = {"links": _sample(client, "datafair_delivery_links_total", storage="file"),
             "downloads": _sample(client, "datafair_delivery_downloads_total"),
             "bytes": _sample(client, "datafair_delivery_bytes_served_total"),
             "refused": _sample(client, "datafair_delivery_refusals_total", reason="entitlement_suspended")}
    assert {k: after[k] - before[k] for k in before} == {"links": 1, "downloads": 2, "bytes": len(CSV) + 10,
                                                         "refused": 1}
