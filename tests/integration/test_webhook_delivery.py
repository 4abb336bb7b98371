"""Outbox events to signed webhook deliveries: fan-out, signature, retries with backoff, leases,
SSRF checks at delivery time, and concurrent workers, against a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from exchange.db import db, utcnow
from exchange.events import delivery, outbox, signature
from exchange.events.models import WebhookDelivery
from exchange.jobs.scheduler import run_job
from exchange.models import StatusChange
from tests.factories import principal_of
from tests.hookserver import Answer, HookServer


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.close()


@pytest.fixture
def private_ok(app):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    return app


def endpoint(api, actor, url, events=("organization.verified",)):
    r = api.post("webhook-endpoints", actor, json={"url": url, "events": list(events)})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def deliveries(app, **where):
    with app.app_context():
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(WebhookDelivery, k) == v)
        return list(db.session.execute(stmt).scalars())


def deliver(app):
    with app.app_context():
        return run_job("deliver_webhooks")


def make_due(app):
    """Time travel: every pending delivery is due now (instead of waiting out the backoff)."""
    with app.app_context():
        db.session.execute(update(WebhookDelivery).where(WebhookDelivery.status == "pending")
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


# -- the outbox -----------------------------------------------------------------------------------

def test_verification_writes_one_event_for_the_organization_and_the_operators(api, app):
    operator = api.operator()
    vendor = api.vendor()
    rejected = api.register("enterprise")
    api.post(f"organizations/{rejected['id']}/reject", operator, json={"reason": "no licence"})
    with app.app_context():
        events = list(db.session.execute(select(outbox.OutboxEvent)).scalars())
    assert len(events) == 1
    evt = events[0]
    assert evt.id.startswith("evt_") and evt.event_type == "organization.verified"
    assert evt.org_ids == [vendor.org_id, operator.org_id]
    assert evt.payload["organization"]["id"] == vendor.org_id
    assert evt.payload["organization"]["status"] == "verified"
    assert evt.payload["previous_status"] == "pending" and evt.payload["reason"] == "checked"
    # Suspension and reinstatement: reinstating is a verification too.
    api.suspend(vendor)
    api.post(f"organizations/{vendor.org_id}/reinstate", operator, json={"reason": "fixed"})
    with app.app_context():
        kinds = db.session.execute(select(outbox.OutboxEvent.payload)).scalars().all()
    assert sorted(p["previous_status"] for p in kinds) == ["pending", "suspended"]


def test_an_event_exists_exactly_when_its_transaction_commits(session):
    evt = outbox.emit(session, event_type="trade.settled", org_ids=["org_a", "org_b", "org_a"],
                      payload={"trade": {"id": "trd_1", "amount": {"amount": 100, "currency": "CNY"}}})
    assert evt.org_ids == ["org_a", "org_b"]
    session.rollback()
    assert session.execute(select(func.count()).select_from(outbox.OutboxEvent)).scalar_one() == 0
    outbox.emit(session, event_type="trade.settled", org_ids=["org_a"], payload={"n": 1})
    session.commit()
    assert session.execute(select(func.count()).select_from(outbox.OutboxEvent)).scalar_one() == 1


@pytest.mark.parametrize(("kw", "message"), [
    ({"event_type": "trade.exploded"}, "unknown event type"),
    ({"org_ids": "org_a"}, "list"),
    ({"org_ids": [None]}, "list"),
    ({"payload": ["not", "an", "object"]}, "object"),
    ({"payload": {"at": object()}}, "not JSON"),
    ({"payload": {"x": float("nan")}}, "not JSON"),
    ({"payload": {"big": "x" * 70_000}}, "larger"),
])
def test_emit_refuses_programming_errors(session, kw, message):
    args = {"event_type": "trade.settled", "org_ids": ["org_a"], "payload": {}} | kw
    with pytest.raises(ValueError, match=message):
        outbox.emit(session, **args)


def test_every_documented_event_type_is_accepted(app, session):
    # 15 + entitlement.<4 statuses> + release.published|withdrawn + trade.cancelled + subscription.<4>
    assert len(outbox.event_types(app)) == 28
    for event_type in sorted(outbox.event_types(app)):
        outbox.emit(session, event_type=event_type, org_ids=["org_a"], payload={})


def test_the_nudge_runs_after_commit_never_before_or_after_a_rollback(app, session):
    calls: list[int] = []

    def hook():
        # Another connection sees the event: it was committed before the hook ran.
        with db.engine.connect() as conn:
            calls.append(conn.execute(select(func.count()).select_from(outbox.OutboxEvent)).scalar_one())

    outbox.on_committed_events(app, hook)
    try:
        outbox.emit(session, event_type="payout.sent", org_ids=["org_a"], payload={})
        session.rollback()
        session.commit()
        assert calls == []
        outbox.emit(session, event_type="payout.sent", org_ids=["org_a"], payload={})
        session.commit()
        assert calls == [1]
        session.commit()  # nothing new: no nudge
        assert calls == [1]
    finally:
        app.extensions[outbox.AFTER_COMMIT_EXTENSION].remove(hook)


# -- fan-out and delivery -------------------------------------------------------------------------

def test_a_delivery_is_signed_json_with_the_event_id(api, app, hooks, private_ok):
    operator = api.operator()
    ep = endpoint(api, operator, hooks.url("/ops"))
    vendor = api.vendor()
    assert deliver(app)["delivered"] == 1
    [got] = hooks.on("/ops")
    body = json.loads(got.body)
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["type"] == "organization.verified" and body["id"].startswith("evt_")
    assert body["created_at"].endswith("Z") and body["data"]["organization"]["id"] == vendor.org_id
    assert got.headers["datafair-event-id"] == body["id"]
    assert got.headers["content-type"] == "application/json"
    assert signature.verify(ep["secret"], got.headers["datafair-signature"], got.body)
    t = int(got.headers["datafair-signature"].split(",")[0][2:])
    assert abs(t - time.time()) < 30
    page = api.get(f"webhook-endpoints/{ep['id']}/deliveries", operator).get_json()
    [item] = page["items"]
    assert item["event_id"] == body["id"] and item["event_type"] == "organization.verified"
    assert item["status"] == "delivered" and item["attempts"] == 1 and item["last_status_code"] == 200
    assert item["delivered_at"] and item["next_attempt_at"] is None
    # Running again sends nothing more.
    deliver(app)
    assert len(hooks.on("/ops")) == 1


def test_only_subscribed_endpoints_of_the_named_organizations_receive(api, app, hooks, private_ok):
    operator = api.operator()
    endpoint(api, operator, hooks.url("/ops-verified"))
    endpoint(api, operator, hooks.url("/ops-trades"), events=["trade.settled"])
    other = api.vendor()  # verified before the others' endpoints exist: no event for them
    endpoint(api, other, hooks.url("/other"))
    api.enterprise()
    deliver(app)
    assert len(hooks.on("/ops-verified")) == 2
    assert hooks.on("/ops-trades") == [] and hooks.on("/other") == []


def test_failures_retry_with_exponential_backoff_then_give_up(api, app, hooks, private_ok):
    app.config.update(WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_RETRY_BASE_SECONDS=30)
    hooks.script("/flaky", Answer(500), Answer(503), Answer(500))
    operator = api.operator()
    ep = endpoint(api, operator, hooks.url("/flaky"))
    api.vendor()
    started = utcnow()
    deliver(app)
    [d] = deliveries(app)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 500)
    assert timedelta(seconds=29) <= d.next_attempt_at - started <= timedelta(seconds=32)
    deliver(app)  # not due yet: nothing is sent
    assert len(hooks.on("/flaky")) == 1
    make_due(app)
    deliver(app)
    [d] = deliveries(app)
    assert (d.attempts, d.last_status_code) == (2, 503)
    assert timedelta(seconds=59) <= d.next_attempt_at - d.last_attempt_at <= timedelta(seconds=61)
    make_due(app)
    deliver(app)
    [d] = deliveries(app)
    assert (d.status, d.attempts, d.next_attempt_at) == ("failed", 3, None)
    bodies = {r.body for r in hooks.on("/flaky")}
    assert len(hooks.on("/flaky")) == 3 and len(bodies) == 1  # the same bytes at every attempt
    item = api.get(f"webhook-endpoints/{ep['id']}/deliveries", operator).get_json()["items"][0]
    assert item["status"] == "failed" and item["last_error"] == "answered 500"


def test_backoff_is_capped(app):
    app.config.update(WEBHOOK_RETRY_BASE_SECONDS=30, WEBHOOK_RETRY_MAX_SECONDS=3600)
    with app.app_context():
        assert [delivery.backoff_seconds(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
        assert delivery.backoff_seconds(9) == 3600 and delivery.backoff_seconds(60) == 3600


def test_redirects_are_not_followed(api, app, hooks, private_ok):
    hooks.script("/moved", Answer(302, headers={"Location": hooks.url("/elsewhere")}))
    endpoint(api, api.operator(), hooks.url("/moved"))
    api.vendor()
    deliver(app)
    [d] = deliveries(app)
    assert d.status == "pending" and d.last_status_code == 302 and "redirects are not followed" in d.last_error
    time.sleep(0.2)
    assert hooks.on("/elsewhere") == []


def test_a_slow_receiver_times_out_and_is_retried(api, app, hooks, private_ok):
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 1
    hooks.script("/slow", Answer(200, delay=2.5))
    endpoint(api, api.operator(), hooks.url("/slow"))
    api.vendor()
    began = time.monotonic()
    deliver(app)
    assert time.monotonic() - began < 2.4
    [d] = deliveries(app)
    assert d.status == "pending" and d.last_status_code is None and "timed out" in d.last_error
    make_due(app)
    deliver(app)
    assert deliveries(app)[0].status == "delivered"


def test_the_address_is_checked_again_at_delivery_time(api, app, hooks, monkeypatch):
    # The DNS answer changes after registration (rebinding) to the exchange's own loopback.
    port = int(hooks.base.rsplit(":", 1)[1])
    answers = {"hooks.partner.example": "93.184.215.14"}
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kw):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    endpoint(api, api.operator(), f"http://hooks.partner.example:{port}/rebound")
    answers["hooks.partner.example"] = "127.0.0.1"
    api.vendor()
    deliver(app)
    [d] = deliveries(app)
    assert d.status == "pending" and d.attempts == 1 and d.last_error.startswith("refused:")
    assert "loopback" in d.last_error
    assert hooks.received == []


def test_delivery_pins_the_normalized_host_and_its_checked_address(api, app, hooks, private_ok, monkeypatch):
    # A fullwidth, ideographic-dotted, trailing-dot spelling: stored, resolved, sent as its normalized form.
    port = int(hooks.base.rsplit(":", 1)[1])
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kw):
        asked.append(host)
        if host == "hooks.partner.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    ep = endpoint(api, api.operator(), f"http://ＨＯＯＫＳ。partner．example。:{port}/pinned")
    assert ep["url"] == f"http://hooks.partner.example:{port}/pinned"
    api.vendor()
    assert deliver(app)["delivered"] == 1
    [got] = hooks.on("/pinned")
    assert got.headers["host"] == f"hooks.partner.example:{port}"
    # The name is resolved only in its normalized form; the connection goes to the checked address.
    assert "hooks.partner.example" in asked and set(asked) <= {"hooks.partner.example", "127.0.0.1"}


def test_a_claimed_delivery_is_not_claimed_twice_and_an_expired_lease_is_retried(api, app, hooks, private_ok):
    endpoint(api, api.operator(), hooks.url("/lease"))
    api.vendor()
    with app.app_context():
        delivery.fan_out(db.session)
        [first] = delivery.claim(db.session, limit=10)
        assert delivery.claim(db.session, limit=10) == []  # leased: another worker gets nothing
        # The first worker dies mid-attempt; its lease expires and another worker takes over.
        db.session.execute(update(WebhookDelivery).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        [second] = delivery.claim(db.session, limit=10)
        assert second.delivery_id == first.delivery_id and second.token != first.token
        assert delivery._record(db.session, second, 200, None) is True
        # The first worker's late result cannot overwrite the second's.
        assert delivery._record(db.session, first, 500, "answered 500") is False
        [d] = db.session.execute(select(WebhookDelivery)).scalars().all()
        assert (d.status, d.attempts, d.last_status_code) == ("delivered", 1, 200)


def test_concurrent_workers_send_each_delivery_once(api, app, hooks, private_ok):
    operator = api.operator()
    endpoint(api, operator, hooks.url("/many"))
    with app.app_context():
        for i in range(30):
            outbox.emit(db.session, event_type="organization.verified", org_ids=[operator.org_id],
                        payload={"n": i})
        db.session.commit()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker():
        try:
            with app.app_context():
                barrier.wait()
                for _ in range(3):
                    run_job("deliver_webhooks")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    got = hooks.on("/many")
    ids = [r.headers["datafair-event-id"] for r in got]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert {d.status for d in deliveries(app)} == {"delivered"} and len(deliveries(app)) == 30


def test_a_deleted_endpoints_claimed_delivery_is_cancelled(api, app, hooks, private_ok):
    operator = api.operator()
    ep = endpoint(api, operator, hooks.url("/gone"))
    api.vendor()
    with app.app_context():
        delivery.fan_out(db.session)
    assert api.delete(f"webhook-endpoints/{ep['id']}", operator).status_code == 200
    deliver(app)
    assert hooks.received == [] and [d.status for d in deliveries(app)] == ["cancelled"]


def _delivery_changes(app):
    with app.app_context():
        return db.session.execute(select(StatusChange.object_id, StatusChange.from_status, StatusChange.to_status,
                                         StatusChange.actor_user_id)
                                  .where(StatusChange.object_type == "webhook_deliveries")
                                  .order_by(StatusChange.id)).all()


def test_bulk_delivery_status_changes_are_recorded_and_spare_finished_deliveries(api, app, hooks, private_ok):
    app.config.update(WEBHOOK_MAX_ATTEMPTS=1)
    hooks.script("/down", Answer(500))
    operator = api.operator()
    ok, down = endpoint(api, operator, hooks.url("/ok")), endpoint(api, operator, hooks.url("/down"))
    api.vendor()
    deliver(app)  # the worker records each answer under its lease: delivered, and failed (one attempt)
    [delivered] = deliveries(app, endpoint_id=ok["id"])
    [failed] = deliveries(app, endpoint_id=down["id"])
    assert (delivered.status, failed.status) == ("delivered", "failed")
    api.vendor()
    with app.app_context():
        delivery.fan_out(db.session)
    assert api.delete(f"webhook-endpoints/{ok['id']}", operator).status_code == 200
    assert [d.status for d in deliveries(app, endpoint_id=ok["id"])] == ["delivered", "cancelled"]
    cancelled = deliveries(app, endpoint_id=ok["id"])[1]
    with app.app_context():
        op = principal_of(api, operator).user_id
    *answered, deletion = _delivery_changes(app)
    assert sorted(answered) == sorted([(delivered.id, "pending", "delivered", None),
                                       (failed.id, "pending", "failed", None)])
    assert deletion == (cancelled.id, "pending", "cancelled", op)
