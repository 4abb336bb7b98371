"""POST/GET/DELETE /api/v1/webhook-endpoints and their deliveries, as an organization sees them."""

from __future__ import annotations

from sqlalchemy import select

from exchange.db import db
from exchange.events.models import WebhookEndpoint
from exchange.identity.models import AuditEvent
from exchange.jobs.scheduler import run_job

PUBLIC = "https://93.184.215.14/datafair/events"
EVENTS = ["trade.settled", "offer.received"]


def create(api, actor, url=PUBLIC, events=EVENTS, **kw):
    return api.post("webhook-endpoints", actor, json={"url": url, "events": events}, **kw)


def test_register_shows_the_secret_once_then_never(api):
    vendor = api.vendor()
    r = create(api, vendor, events=["trade.settled", "offer.received", "trade.settled"])
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["id"].startswith("whe_") and body["org_id"] == vendor.org_id
    assert body["url"] == PUBLIC and body["events"] == ["offer.received", "trade.settled"]
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["created_at"].endswith("Z")
    one = api.get(f"webhook-endpoints/{body['id']}", vendor)
    assert one.status_code == 200 and "secret" not in one.get_json()
    listed = api.get("webhook-endpoints", vendor).get_json()
    assert listed["total"] == 1 and listed["page"] == 1 and listed["per_page"] == 20
    assert "secret" not in listed["items"][0]
    with api.app.app_context():
        stored = db.session.get(WebhookEndpoint, body["id"])
        # Stored encrypted, not in clear.
        assert body["secret"].encode() not in bytes(stored.secret_encrypted)
        stmt = select(AuditEvent.action).where(AuditEvent.object_id == body["id"])
        actions = list(db.session.execute(stmt).scalars())
    assert actions == ["webhook_endpoint.created"]


def test_each_organization_sees_only_its_own(api):
    vendor, buyer = api.vendor(), api.enterprise()
    mine = create(api, vendor).get_json()["id"]
    create(api, buyer)
    assert [e["id"] for e in api.get("webhook-endpoints", vendor).get_json()["items"]] == [mine]
    for method in ("GET", "DELETE"):
        assert api.request(method, f"webhook-endpoints/{mine}", buyer).status_code == 404
    assert api.get(f"webhook-endpoints/{mine}/deliveries", buyer).status_code == 404
    # A member (not only admins) of the organization manages them too.
    member = api.member(vendor)
    assert api.get(f"webhook-endpoints/{mine}", member).status_code == 200


def test_authentication_and_a_verified_organization_are_required(api):
    assert api.post("webhook-endpoints", json={"url": PUBLIC, "events": EVENTS}).status_code == 401
    assert api.get("webhook-endpoints").status_code == 401
    pending = api.vendor(verified=False)
    r = create(api, pending)
    assert r.status_code == 403 and r.headers["Content-Type"] == "application/problem+json"
    vendor = api.vendor()
    endpoint = create(api, vendor).get_json()["id"]
    api.suspend(vendor)
    assert create(api, vendor).status_code == 403
    assert api.delete(f"webhook-endpoints/{endpoint}", vendor).status_code == 403
    assert api.get(f"webhook-endpoints/{endpoint}", vendor).status_code == 200  # reads stay allowed


def test_urls_that_reach_the_exchanges_network_are_refused(api):
    vendor = api.vendor()
    for url in ("http://127.0.0.1:8000/api/v1/health", "http://localhost/", "http://169.254.169.254/",
                "http://10.0.0.1/", "ftp://93.184.215.14/", "https://u:p@93.184.215.14/"):
        r = create(api, vendor, url=url)
        assert r.status_code == 422, (url, r.get_json())
        assert "url" in r.get_json()["errors"]
    assert api.get("webhook-endpoints", vendor).get_json()["total"] == 0


def test_loopback_is_allowed_only_with_the_flag_and_https_is_required_in_production(api, app):
    vendor = api.vendor()
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    assert create(api, vendor, url="http://127.0.0.1:9/hook").status_code == 201
    assert create(api, vendor, url="http://169.254.169.254/").status_code == 422  # never metadata
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    app.config["DATAFAIR_ENV"] = "production"
    r = create(api, vendor, url="http://93.184.215.14/hook")
    assert r.status_code == 422 and "https" in r.get_json()["errors"]["url"][0]
    assert create(api, vendor, url=PUBLIC).status_code == 201


def test_bodies_are_validated(api):
    vendor = api.vendor()
    cases = [
        {"url": PUBLIC, "events": ["trade.exploded"]},
        {"url": PUBLIC, "events": []},
        {"url": PUBLIC},
        {"events": EVENTS},
        {"url": PUBLIC, "events": EVENTS, "secret": "mine"},  # unknown field: no choosing the secret
        {"url": 42, "events": EVENTS},
    ]
    for body in cases:
        r = api.post("webhook-endpoints", vendor, json=body)
        assert r.status_code == 422, (body, r.get_json())
    assert api.get("webhook-endpoints?per_page=101", vendor).status_code == 422


def test_an_organization_has_a_bounded_number_of_endpoints(api, app):
    app.config["WEBHOOK_MAX_ENDPOINTS"] = 2
    vendor = api.vendor()
    first = create(api, vendor).get_json()["id"]
    assert create(api, vendor).status_code == 201
    assert create(api, vendor).status_code == 409
    assert api.delete(f"webhook-endpoints/{first}", vendor).status_code == 200
    assert create(api, vendor).status_code == 201


def test_delete_stops_deliveries_and_hides_the_endpoint(api, app):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    operator = api.operator()
    # An unreachable target: deliveries stay pending (connection refused) until the endpoint goes.
    endpoint = create(api, operator, url="http://127.0.0.1:9/hook", events=["organization.verified"]).get_json()
    api.vendor()  # its verification emits organization.verified to the operators' organization
    with app.app_context():
        run_job("deliver_webhooks")
    deliveries = api.get(f"webhook-endpoints/{endpoint['id']}/deliveries", operator).get_json()
    assert deliveries["total"] == 1
    item = deliveries["items"][0]
    assert item["status"] == "pending" and item["attempts"] == 1 and item["last_status_code"] is None
    assert "connection" in item["last_error"] and item["next_attempt_at"].endswith("Z")
    r = api.delete(f"webhook-endpoints/{endpoint['id']}", operator)
    assert r.status_code == 200 and r.get_json()["id"] == endpoint["id"]
    assert api.get(f"webhook-endpoints/{endpoint['id']}", operator).status_code == 404
    assert api.delete(f"webhook-endpoints/{endpoint['id']}", operator).status_code == 404
    assert api.get("webhook-endpoints", operator).get_json()["total"] == 0
    with app.app_context():
        from exchange.events.models import WebhookDelivery

        assert db.session.execute(select(WebhookDelivery.status)).scalars().all() == ["cancelled"]


def test_the_endpoints_are_in_the_openapi_document(api):
    spec = api.get("openapi.json").get_json()
    paths = spec["paths"]
    assert set(paths["/api/v1/webhook-endpoints"]) >= {"get", "post"}
    assert set(paths["/api/v1/webhook-endpoints/{endpoint_id}"]) >= {"get", "delete"}
    assert "get" in paths["/api/v1/webhook-endpoints/{endpoint_id}/deliveries"]
    assert "422" in paths["/api/v1/webhook-endpoints"]["post"]["responses"]
