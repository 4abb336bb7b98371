"""Idempotency-Key on POST (API.md Conventions): replay, scope, what is stored, concurrency."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from exchange.canonical import canonical_bytes
from exchange.db import db, utcnow
from exchange.identity.models import AuditEvent, Organization
from exchange.models import IdempotencyRecord
from tests import testapp
from tests.factories import PASSWORD

REPLAYED = "Idempotent-Replayed"


def registration(n: int, **changes) -> dict:
    body = {
        "name": f"幂等测试 Idempotent {n}",
        "type": "enterprise",
        "region": "HK",
        "registration_number": f"IDEM-{n:05d}",
        "admin": {"email": f"admin{n}@idem.test", "password": PASSWORD, "name": "Admin"},
    }
    body.update(changes)
    return body


def org_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Organization)).scalar_one()


def post(client, path: str, body, key: str | None, token: str | None = None):
    headers = {}
    if key is not None:
        headers["Idempotency-Key"] = key
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(path, json=body, headers=headers)


def test_replay_is_byte_for_byte_and_nothing_happens_twice(app, client):
    first = post(client, "/api/v1/organizations", registration(1), "key-1")
    assert first.status_code == 201
    assert REPLAYED not in first.headers
    for _ in range(2):
        again = post(client, "/api/v1/organizations", registration(1), "key-1")
        assert again.status_code == 201
        assert again.headers[REPLAYED] == "true"
        assert again.get_data() == first.get_data()
        assert again.mimetype == first.mimetype
    assert org_count(app) == 1


def test_the_body_is_compared_canonically(app, client):
    first = post(client, "/api/v1/organizations", registration(1), "key-canon")
    # Same JSON value, other key order and spacing: the same request.
    body = registration(1)
    raw = json.dumps(dict(reversed(list(body.items()))), indent=3, ensure_ascii=True)
    assert raw.encode() != json.dumps(body).encode()
    again = client.post("/api/v1/organizations", data=raw, content_type="application/json",
                        headers={"Idempotency-Key": "key-canon"})
    assert again.status_code == 201 and again.headers[REPLAYED] == "true"
    assert again.get_data() == first.get_data()


def test_same_key_with_a_different_body_is_422(app, client):
    assert post(client, "/api/v1/organizations", registration(1), "key-2").status_code == 201
    r = post(client, "/api/v1/organizations", registration(2), "key-2")
    assert r.status_code == 422
    assert "Idempotency-Key" in r.get_json()["errors"]
    assert org_count(app) == 1


def test_same_key_on_another_path_is_422(api):
    vendor = api.vendor()
    body = {"email": "m1@idem.test", "password": PASSWORD, "name": "M"}
    h = {"Idempotency-Key": "key-path"}
    assert api.post(f"organizations/{vendor.org_id}/members", vendor, json=body, headers=h).status_code == 201
    r = api.post(f"organizations/{vendor.org_id}/keys", vendor, json=body, headers=h)
    assert r.status_code == 422


@pytest.mark.parametrize(("key", "status"), [("k" * 255, 201), ("k" * 256, 422), ("", 422), ("tab\tkey", 422)])
def test_key_length_and_characters(client, key, status):
    r = post(client, "/api/v1/organizations", registration(1), key)
    assert r.status_code == status, r.get_json()
    if status == 422:
        assert "Idempotency-Key" in r.get_json()["errors"]


def test_keys_are_scoped_per_user(api, app):
    a, b = api.vendor(), api.enterprise()
    before = org_count(app)
    # The same key used by two users is two requests: both take effect.
    ra = api.post("organizations", a, json=registration(10), headers={"Idempotency-Key": "shared"})
    rb = api.post("organizations", b, json=registration(11), headers={"Idempotency-Key": "shared"})
    assert ra.status_code == rb.status_code == 201
    assert REPLAYED not in rb.headers
    assert ra.get_json()["id"] != rb.get_json()["id"]
    assert org_count(app) == before + 2
    # Anonymous callers share one scope: the key alone.
    assert post(api.client, "/api/v1/organizations", registration(12), "shared").status_code == 201
    assert post(api.client, "/api/v1/organizations", registration(13), "shared").status_code == 422


def test_a_422_is_stored_and_replayed(app, client):
    bad = registration(1, admin={"email": "a@idem.test", "password": "short", "name": "A"})
    first = post(client, "/api/v1/organizations", bad, "key-422")
    assert first.status_code == 422 and REPLAYED not in first.headers
    again = post(client, "/api/v1/organizations", bad, "key-422")
    assert again.status_code == 422 and again.headers[REPLAYED] == "true"
    assert again.get_data() == first.get_data()


def test_a_409_is_not_stored(make_app):
    app, calls = testapp.build(make_app)
    client = app.test_client()
    first = post(client, "/api/v1/_test/flaky/conflict", {}, "key-409")
    assert first.status_code == 409
    again = post(client, "/api/v1/_test/flaky/conflict", {}, "key-409")
    assert again.status_code == 201 and REPLAYED not in again.headers
    assert calls["flaky"] == 2
    # The success is stored: a third call replays it.
    third = post(client, "/api/v1/_test/flaky/conflict", {}, "key-409")
    assert third.headers[REPLAYED] == "true" and third.get_data() == again.get_data()
    assert calls["flaky"] == 2


def test_a_500_is_not_stored(make_app):
    app, calls = testapp.build(make_app)
    client = app.test_client()
    assert post(client, "/api/v1/_test/flaky/error", {}, "key-500").status_code == 500
    again = post(client, "/api/v1/_test/flaky/error", {}, "key-500")
    assert again.status_code == 201 and REPLAYED not in again.headers
    assert calls["flaky"] == 2


def test_a_duplicate_registration_409_is_computed_afresh(app, client):
    assert post(client, "/api/v1/organizations", registration(1), None).status_code == 201
    dup = registration(1, registration_number="IDEM-99999")
    assert post(client, "/api/v1/organizations", dup, "key-dup").status_code == 409
    again = post(client, "/api/v1/organizations", dup, "key-dup")
    assert again.status_code == 409 and REPLAYED not in again.headers


def _claim(app, key: str, body: dict, *, age: timedelta, path: str = "/api/v1/organizations") -> None:
    """An in-flight marker as a concurrent request (or a dead worker) would have left it."""
    with app.app_context():
        db.session.add(IdempotencyRecord(
            scope="anonymous", key=key, method_path=f"POST {path}",
            request_hash=hashlib.sha256(canonical_bytes(body)).hexdigest(),
            created_at=utcnow() - age, completed=False))
        db.session.commit()


def test_a_request_in_flight_with_the_same_key_is_409(app, client):
    _claim(app, "key-busy", registration(1), age=timedelta(seconds=5))
    r = post(client, "/api/v1/organizations", registration(1), "key-busy")
    assert r.status_code == 409
    assert "in flight" in r.get_json()["detail"]
    assert org_count(app) == 0


def test_an_abandoned_claim_is_taken_over(app, client):
    _claim(app, "key-dead", registration(1), age=timedelta(minutes=5))
    assert post(client, "/api/v1/organizations", registration(1), "key-dead").status_code == 201


def test_a_stored_response_expires_after_24_hours(app, client):
    assert post(client, "/api/v1/organizations", registration(1), "key-old").status_code == 201
    with app.app_context():
        db.session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    r = post(client, "/api/v1/organizations", registration(2), "key-old")
    assert r.status_code == 201 and REPLAYED not in r.headers


def test_auth_routes_and_gets_are_not_idempotent_by_key(api):
    vendor = api.vendor()
    h = {"Idempotency-Key": "login-key"}
    body = {"email": vendor.email, "password": PASSWORD}
    a = api.post("auth/token", json=body, headers=h)
    b = api.post("auth/token", json=body, headers=h)
    assert a.status_code == b.status_code == 200
    assert a.get_json()["refresh_token"] != b.get_json()["refresh_token"]
    assert REPLAYED not in b.headers
    assert REPLAYED not in api.get("me", vendor, headers=h).headers


# -- concurrency (real connections) --------------------------------------------------------------

def _race(app, n: int, path: str, body: dict, key: str) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        r = post(client, path, body, key)
        results[i] = (r.status_code, r.get_data(), r.headers.get(REPLAYED))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None for r in results)
    return results


def effect_count(app) -> int:
    with app.app_context():
        return db.session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "test.effect")
        ).scalar_one()


@pytest.mark.postgres
def test_concurrent_duplicates_have_exactly_one_effect(make_app):
    app, _ = testapp.build(make_app)
    results = _race(app, 6, "/api/v1/_test/effect", {"note": "burst", "delay": 0.05}, "key-race")
    assert effect_count(app) == 1
    created = [r for r in results if r[0] == 201]
    assert created and {r[1] for r in created} == {created[0][1]}  # replays are the same bytes
    assert sum(1 for r in created if r[2] is None) == 1  # exactly one original
    assert {r[0] for r in results} <= {201, 409}


@pytest.mark.postgres
def test_a_duplicate_arriving_in_flight_gets_409_then_the_replay(make_app):
    app, _ = testapp.build(make_app)
    body = {"note": "slow", "delay": 0.5}
    results = _race(app, 2, "/api/v1/_test/effect", body, "key-slow")
    assert sorted(r[0] for r in results) == [201, 409]
    assert effect_count(app) == 1
    later = post(app.test_client(), "/api/v1/_test/effect", body, "key-slow")
    assert later.status_code == 201 and later.headers[REPLAYED] == "true"
    assert later.get_data() == next(r[1] for r in results if r[0] == 201)
    # Without the key, the same body is a new request with its own effect.
    assert post(app.test_client(), "/api/v1/_test/effect", body, None).status_code == 201
    assert effect_count(app) == 2


def test_a_refusal_after_writes_is_replayed_and_changed_nothing(make_app):
    app, _ = testapp.build(make_app)
    client = app.test_client()
    body = {"note": "refused"}
    first = post(client, "/api/v1/_test/effect-then-refuse", body, "key-refused")
    assert first.status_code == 422 and REPLAYED not in first.headers
    assert effect_count(app) == 0  # the view wrote before refusing: rolled back
    again = post(client, "/api/v1/_test/effect-then-refuse", body, "key-refused")
    assert again.status_code == 422 and again.headers[REPLAYED] == "true"
    assert again.get_data() == first.get_data()
    assert effect_count(app) == 0


def test_a_success_is_stored_in_its_own_transaction_with_the_effect(make_app):
    app, _ = testapp.build(make_app)
    r = post(app.test_client(), "/api/v1/_test/effect", {"note": "atomic"}, "key-atomic")
    assert r.status_code == 201
    with app.app_context():
        rec = db.session.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == "key-atomic")).scalar_one()
        assert rec.completed and rec.response_status == 201 and rec.response_body == r.get_data()


@pytest.mark.postgres
def test_a_request_outliving_its_claim_is_rolled_back_when_a_retry_took_the_key_over(make_app):
    # The first request is still running when its claim counts as abandoned (1 s): a retry takes the
    # key over and succeeds; the first one then finds its claim gone and commits nothing (409).
    app, _ = testapp.build(make_app, IDEMPOTENCY_ABANDONED_SECONDS=1)
    body = {"note": "slow original", "delay": 3.0}
    results: dict[str, tuple] = {}

    def original() -> None:
        r = post(app.test_client(), "/api/v1/_test/effect", body, "key-overtaken")
        results["original"] = (r.status_code, r.get_json())

    thread = threading.Thread(target=original)
    thread.start()
    time.sleep(2.2)  # claims are stamped in whole seconds: this one is more than 1 s old now
    retry = post(app.test_client(), "/api/v1/_test/effect", body, "key-overtaken")
    thread.join(30)
    assert retry.status_code == 201 and REPLAYED not in retry.headers
    status, problem = results["original"]
    assert status == 409 and "took the key over" in problem["detail"]
    assert effect_count(app) == 1
    replay = post(app.test_client(), "/api/v1/_test/effect", body, "key-overtaken")
    assert replay.headers[REPLAYED] == "true" and replay.get_data() == retry.get_data()
