"""Rate limits that hold under concurrency, do not lock out the innocent, throttle anonymous
registration, and survive a Redis outage (security issue, items 5, 6 and 8)."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.request
from typing import Any

import pytest
from sqlalchemy import func, select

from exchange.db import db
from exchange.identity import services as identity
from exchange.identity.models import Organization, User
from exchange.models import RateLimitCounter
from tests.api.test_ratelimit import WRONG, _wait_for_room_in_the_window, gunicorns, http_login, login
from tests.factories import PASSWORD
from tests.redisserver import redis_server  # noqa: F401 - fixture

# -- item 5: count and check in one step -------------------------------------------------------------


def _http_register(base: str) -> str:
    """Register through the server itself, so the admin's password is hashed at the server's cost."""
    body = _registration(secrets.token_hex(6))
    req = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{base}/api/v1/organizations", method="POST", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": "192.0.2.200"})
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        assert r.status == 201
    return body["admin"]["email"]


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["database", "redis"])
def test_concurrent_wrong_passwords_evaluate_at_most_the_limit(request, app, database, tmp_path, backend):
    """30 concurrent wrong passwords for one email on 4 gunicorn workers, limit 10/minute: at most 10
    are evaluated (401), every other one is refused (429), none is a 500."""
    # A production-like password hash cost: the time a worker spends verifying is the race window.
    env = {"DATAFAIR_LOGIN_RATE_LIMIT": "10/minute", "DATAFAIR_WORKERS": "4",
           "DATAFAIR_PASSWORD_HASH": "scrypt:16384:8:1"}
    if backend == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_server").url
    with gunicorns(database.url, tmp_path, count=1, **env) as (server,):
        email = _http_register(server)
        _wait_for_room_in_the_window(15)
        barrier = threading.Barrier(30)
        statuses: list[int] = []
        lock = threading.Lock()

        def attempt(i: int) -> None:
            barrier.wait()
            status, _, _ = http_login(server, email, WRONG, f"203.0.113.{i + 1}")
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(statuses) == 30
        assert set(statuses) <= {401, 429}, statuses
        assert statuses.count(401) <= 10, sorted(statuses)
        assert statuses.count(429) == 30 - statuses.count(401)
        # The email is at its limit: even the right password waits for the window.
        assert http_login(server, email, PASSWORD, "198.51.100.77")[0] == 429


def test_concurrent_wrong_passwords_in_process_threads_still_hold(make_app, api):
    """The same property with real concurrent connections through the in-process app (both engines)."""
    app = make_app(LOGIN_RATE_LIMIT="5/minute")
    vendor = api.vendor()
    _wait_for_room_in_the_window(10)
    barrier = threading.Barrier(12)
    statuses: list[int] = []

    def attempt() -> None:
        client = app.test_client()
        barrier.wait()
        r = client.post("/api/v1/auth/token", json={"email": vendor.email, "password": WRONG})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [401] * 5 + [429] * 7


@pytest.mark.parametrize("own_failures", [0, 2], ids=["no-own-failures", "own-failures-below-limit"])
def test_a_flood_from_one_address_never_refuses_a_correct_password(api, app, own_failures):
    """An office behind one NAT address: wrong passwords for other emails (beyond the address bound)
    never lock out a colleague who types the right password."""
    app.config["LOGIN_RATE_LIMIT"] = "3/minute"
    _wait_for_room_in_the_window(10)
    vendor = api.vendor()
    office = "10.20.30.40"
    for _ in range(own_failures):
        assert login(api, vendor.email, WRONG, office).status_code == 401
    statuses = [login(api, f"guess{i}@nowhere.test", WRONG, office).status_code for i in range(40)]
    assert set(statuses) <= {401, 429}
    # Past the address bound (10x the per-email limit) wrong passwords are answered 429...
    assert statuses[-1] == 429
    # ...but the right password of an email below its own limit logs in, from the same address.
    r = login(api, vendor.email, PASSWORD, office)
    assert r.status_code == 200, r.get_json()
    other = api.enterprise()
    assert login(api, other.email, PASSWORD, office).status_code == 200


def test_the_per_email_limit_still_refuses_the_right_password(api, app):
    app.config["LOGIN_RATE_LIMIT"] = "3/minute"
    _wait_for_room_in_the_window(10)
    vendor = api.vendor()
    for i in range(3):
        assert login(api, vendor.email, WRONG, f"10.0.5.{i}").status_code == 401
    r = login(api, vendor.email, PASSWORD, "10.0.6.1")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60


# -- item 6: anonymous registration ------------------------------------------------------------------

def _registration(n: str) -> dict[str, Any]:
    return {"name": f"Registrant {n}", "type": "vendor", "region": "GD", "registration_number": f"91REG{n}",
            "admin": {"email": f"admin-{n}@reg.test", "password": PASSWORD, "name": "Admin"}}


def _register(client, addr: str, headers: dict[str, str] | None = None):
    return client.post("/api/v1/organizations", json=_registration(secrets.token_hex(6)),
                       environ_base={"REMOTE_ADDR": addr}, headers=headers or {})


def _org_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Organization)).scalar_one()


def test_anonymous_registration_is_limited_per_client_address(make_app, monkeypatch):
    app = make_app(REGISTRATION_RATE_LIMIT="3/hour")
    client = app.test_client()
    hashed: list[str] = []
    real_hash = identity.hash_password
    monkeypatch.setattr(identity, "hash_password", lambda p: hashed.append(p) or real_hash(p))
    for _ in range(3):
        assert _register(client, "192.0.2.10").status_code == 201
    before = _org_count(app)
    hashes = len(hashed)
    body = _registration("refused1")
    r = client.post("/api/v1/organizations", json=body, environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert r.status_code == 429, r.get_json()
    assert r.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    assert r.get_json()["status"] == 429
    # Refused before the password hash, and nothing written.
    assert len(hashed) == hashes
    assert _org_count(app) == before
    with app.app_context():
        assert db.session.execute(select(User).where(User.email == body["admin"]["email"])).first() is None
    # Another address registers normally.
    assert _register(client, "192.0.2.11").status_code == 201


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_registration_limit_uses_the_client_address_behind_trusted_proxies(make_app, trusted_proxies):
    app = make_app(REGISTRATION_RATE_LIMIT="2/hour", TRUSTED_PROXIES=trusted_proxies)
    client = app.test_client()

    def reg(forwarded: str):
        return _register(client, "127.0.0.1", {"X-Forwarded-For": forwarded})

    assert reg("198.51.100.1").status_code == 201
    assert reg("198.51.100.2").status_code == 201
    third = reg("198.51.100.3").status_code
    if trusted_proxies:
        # Behind one trusted proxy each client has its own budget...
        assert third == 201
        assert reg("198.51.100.1").status_code == 201
        assert reg("198.51.100.1").status_code == 429
    else:
        # ...without, X-Forwarded-For is not believed: a spoofed header does not buy more attempts.
        assert third == 429


def test_registration_limit_default_and_validation():
    from exchange.config import ConfigError, load_config, validate_config

    config = load_config({"DATAFAIR_SECRET_KEY": "k" * 40})
    assert config["REGISTRATION_RATE_LIMIT"] == "10/hour"
    validate_config(config)
    bad = load_config({"DATAFAIR_SECRET_KEY": "k" * 40, "DATAFAIR_REGISTRATION_RATE_LIMIT": "lots"})
    with pytest.raises(ConfigError):
        validate_config(bad)


# -- item 8: Redis outage ----------------------------------------------------------------------------

_FALLBACK_RE = re.compile(r"^datafair_ratelimit_fallback_total(?:\{[^}]*\})? ([0-9.e+]+)$", re.M)


def _fallbacks(client) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(float(v) for v in _FALLBACK_RE.findall(text))


def _db_counts(app, prefix: str) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(select(RateLimitCounter.bucket, RateLimitCounter.count)).all()
    return {b: c for b, c in rows if b.startswith(prefix) and c}


def test_a_redis_outage_falls_back_to_the_database(make_app, api, redis_server):  # noqa: F811
    # Hourly windows: a test of a few seconds almost never straddles a boundary.
    if 3600 - time.time() % 3600 < 30:
        time.sleep(3600 - time.time() % 3600 + 0.2)
    vendor = api.vendor()
    operator = api.operator()
    pending = api.register()
    app = make_app(REDIS_URL=redis_server.url, LOGIN_RATE_LIMIT="3/hour", WRITE_RATE_LIMIT="2/hour",
                   REGISTRATION_RATE_LIMIT="2/hour")
    client = app.test_client()
    redis = redis_server.client()

    def post(path: str, body: Any, headers: dict[str, str] | None = None, addr: str = "127.0.0.1"):
        return client.post(path, json=body, headers=headers or {}, environ_base={"REMOTE_ADDR": addr})

    # Redis up: logins work and failures are counted in Redis, not in the database.
    assert post("/api/v1/auth/token", {"email": vendor.email, "password": PASSWORD}).status_code == 200
    assert post("/api/v1/auth/token", {"email": vendor.email, "password": WRONG}).status_code == 401
    assert redis.keys(f"datafair:rl:login:email:{vendor.email}:*")
    assert _db_counts(app, "login:") == {}
    fallbacks = _fallbacks(client)

    redis_server.stop()
    started = time.monotonic()
    ready = client.get("/api/v1/health/ready")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json() == {"status": "ok", "database": "ok", "redis": "unreachable"}
    # Right and wrong passwords get their normal answers; the limit still holds, counted in the database.
    assert post("/api/v1/auth/token", {"email": vendor.email, "password": PASSWORD}).status_code == 200
    wrong = [post("/api/v1/auth/token", {"email": vendor.email, "password": WRONG}).status_code for _ in range(4)]
    assert wrong == [401, 401, 401, 429]
    assert _db_counts(app, f"login:email:{vendor.email}")[f"login:email:{vendor.email}"] >= 3
    assert post("/api/v1/auth/token", {"email": vendor.email, "password": PASSWORD}).status_code == 429
    # Anonymous registration: limited in the database too.
    regs = [post("/api/v1/organizations", _registration(secrets.token_hex(6)), addr="192.0.2.99").status_code
            for _ in range(3)]
    assert regs == [201, 201, 429]
    # A write-limited route.
    endpoint = {"url": "https://93.184.215.14/hook", "events": ["trade.settled"]}
    hooks = [post("/api/v1/webhook-endpoints", endpoint, vendor.headers).status_code for _ in range(3)]
    assert hooks == [201, 201, 429]
    # A write that emits an event (its Celery nudge after commit goes to the dead Redis).
    r = post(f"/api/v1/organizations/{pending['id']}/verify", {"reason": "checked"}, operator.headers)
    assert r.status_code == 200, r.get_json()
    assert time.monotonic() - started < 8  # no request waited for long on the dead Redis
    assert _fallbacks(client) > fallbacks

    # Redis back on the same port: the limits use it again (after a short retry pause).
    redis_server.start()
    time.sleep(2.5)
    other = f"back-{secrets.token_hex(4)}@nowhere.test"
    assert post("/api/v1/auth/token", {"email": other, "password": WRONG}).status_code == 401
    assert redis.keys(f"datafair:rl:login:email:{other}:*")
    assert f"login:email:{other}" not in _db_counts(app, "login:")
    assert client.get("/api/v1/health/ready").get_json()["redis"] == "ok"
