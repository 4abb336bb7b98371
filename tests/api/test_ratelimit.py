"""Rate limits: failed logins per email and per client address, held across real gunicorn processes
(database-backed, and Redis-backed), and per-organization write limits."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from exchange.api import Blueprint
from exchange.db import db
from exchange.models import RateLimitCounter
from exchange.ratelimit import limit_writes
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/15"
WRONG = "not the password 123"


def login(api, email: str, password: str, addr: str = "127.0.0.1"):
    return api.client.post("/api/v1/auth/token", json={"email": email, "password": password},
                           environ_base={"REMOTE_ADDR": addr})


# -- in process --------------------------------------------------------------------------------

def test_failed_logins_are_limited_per_email(api, app):
    app.config["LOGIN_RATE_LIMIT"] = "3/minute"
    vendor = api.vendor()
    for i in range(3):
        assert login(api, vendor.email, WRONG, f"10.0.0.{i}").status_code == 401
    r = login(api, vendor.email, PASSWORD, "10.0.0.99")
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Another account from another address is unaffected.
    other = api.vendor()
    assert login(api, other.email, PASSWORD, "10.0.1.1").status_code == 200


def test_failed_logins_are_limited_per_client_address(api, app):
    # The per-address bound is ten times the per-email limit, and it never refuses a right password.
    app.config["LOGIN_RATE_LIMIT"] = "3/minute"
    vendor = api.vendor()
    for i in range(30):
        assert login(api, f"guess{i}@nowhere.test", WRONG, "10.9.9.9").status_code == 401
    r = login(api, "guess-more@nowhere.test", WRONG, "10.9.9.9")
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert login(api, "guess-more@nowhere.test", WRONG, "10.9.9.10").status_code == 401
    assert login(api, vendor.email, PASSWORD, "10.9.9.9").status_code == 200


def test_successful_logins_do_not_count(api, app):
    app.config["LOGIN_RATE_LIMIT"] = "2/minute"
    vendor = api.vendor()
    for _ in range(5):
        assert login(api, vendor.email, PASSWORD).status_code == 200


def test_failures_are_counted_although_the_request_rolls_back(api, app):
    app.config["LOGIN_RATE_LIMIT"] = "3/minute"
    login(api, "counted@nowhere.test", WRONG, "10.1.1.1")
    with app.app_context():
        counts = dict(db.session.execute(select(RateLimitCounter.bucket, RateLimitCounter.count)).all())
    assert counts == {"login:email:counted@nowhere.test": 1, "login:addr:10.1.1.1": 1}


def test_writes_are_limited_per_organization(make_app, api):
    app = make_app(WRITE_RATE_LIMIT="3/minute")
    blp = Blueprint("limited", __name__, url_prefix="/api/v1/_test")

    @blp.route("/offers", methods=["POST"])
    @blp.response(201)
    @limit_writes("offers")
    def make_offer():
        return {"ok": True}

    app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(blp)
    client = app.test_client()
    a, b = api.vendor(), api.enterprise()
    for _ in range(3):
        assert client.post("/api/v1/_test/offers", json={}, headers=a.headers).status_code == 201
    r = client.post("/api/v1/_test/offers", json={}, headers=a.headers)
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert client.post("/api/v1/_test/offers", json={}, headers=b.headers).status_code == 201


# -- across processes ----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback http only
            return r.status
    except (urllib.error.URLError, OSError):
        return 0


@contextmanager
def gunicorns(database_url: str, tmp_path: Path, *, count: int = 2, config: str = "deploy/gunicorn.conf.py",
              **env: str) -> Iterator[list[str]]:
    """`count` independent gunicorn servers (one worker each) on free loopback ports, with the
    settings file `config` (relative to the project root)."""
    procs, bases, logs = [], [], []
    base_env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    base_env.update({
        "DATABASE_URL": database_url,
        "DATAFAIR_WORKERS": "1",
        "DATAFAIR_PASSWORD_HASH": "scrypt:1024:8:1",
        "DATAFAIR_TRUSTED_PROXIES": "1",  # tests pick their client address with X-Forwarded-For
        "PYTHONPATH": str(ROOT),
        **env,
    })
    try:
        for i in range(count):
            port = _free_port()
            log = open(tmp_path / f"gunicorn-{i}.log", "wb")  # noqa: SIM115 - closed below
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", config, "app:app"],
                cwd=ROOT, env={**base_env, "DATAFAIR_BIND": f"127.0.0.1:{port}"},
                stdout=log, stderr=subprocess.STDOUT,
            ))
            bases.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for proc, base in zip(procs, bases, strict=True):
            while _get(f"{base}/api/v1/health") != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = "\n".join((tmp_path / f"gunicorn-{i}.log").read_text()[-2000:] for i in range(count))
                    pytest.fail(f"gunicorn did not start:\n{out}")
                time.sleep(0.1)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def http_login(base: str, email: str, password: str, addr: str) -> tuple[int, dict, dict]:
    req = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{base}/api/v1/auth/token", method="POST",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": addr},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def _wait_for_room_in_the_window(seconds: float = 6.0) -> None:
    # Fixed one-minute windows: a sequence straddling a boundary would be split across two windows.
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.2)


def _redis_or_skip():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {REDIS_URL}")
    return client


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["database", "redis"])
def test_the_login_limit_holds_across_two_gunicorn_processes(api, app, database, tmp_path, backend):
    env = {"DATAFAIR_LOGIN_RATE_LIMIT": "5/minute"}
    redis_client = None
    if backend == "redis":
        redis_client = _redis_or_skip()
        env["REDIS_URL"] = REDIS_URL
    vendor = api.vendor()
    # A client address of this run only (other suites may share the Redis database).
    addr = f"198.51.100.{secrets.randbelow(250) + 1}"
    with gunicorns(database.url, tmp_path, **env) as servers:
        _wait_for_room_in_the_window()
        for attempt in range(5):
            status, _, body = http_login(servers[attempt % 2], vendor.email, WRONG, addr)
            assert status == 401, (attempt, body)
        for attempt in range(5, 8):
            # Whichever process answers, the sixth failure and everything after is refused,
            # even with the right password.
            password = PASSWORD if attempt == 7 else WRONG
            status, headers, body = http_login(servers[attempt % 2], vendor.email, password, addr)
            assert status == 429, (attempt, body)
            assert 1 <= int(headers["Retry-After"]) <= 60
            assert body["status"] == 429 and headers["Content-Type"] == "application/problem+json"
        # One email's failures do not lock its client address out (its bound is 10x the limit)...
        for server in servers:
            assert http_login(server, f"fresh-{secrets.token_hex(4)}@x.test", WRONG, addr)[0] == 401
        # ...while the same account from another address is still refused (per email).
        other_addr = f"192.0.2.{secrets.randbelow(250) + 1}"
        assert http_login(servers[0], vendor.email, PASSWORD, other_addr)[0] == 429
        # Another account from another address logs in normally.
        other = api.enterprise()
        assert http_login(servers[1], other.email, PASSWORD, other_addr)[0] == 200

    with app.app_context():
        rows = dict(db.session.execute(select(RateLimitCounter.bucket, RateLimitCounter.count)).all())
    email_bucket = f"login:email:{vendor.email}"
    if backend == "redis":
        assert not rows.get(email_bucket)  # the fixtures' own (given back) login may leave a 0
        keys = redis_client.keys(f"datafair:rl:{email_bucket}:*")
        # Every attempt is counted (the 5 verified ones and the 4 refused), and checked in the same step.
        assert keys and int(redis_client.get(keys[0])) == 9
        redis_client.delete(*keys)
    else:
        assert rows[email_bucket] == 9
