"""The database goes away and comes back (PostgreSQL): health answers 503, every other route a
problem+json 503 with Retry-After (never a 500 or a hang), liveness stays 200, and the app serves
again as soon as the database accepts connections — no restart.

The outage is real and confined: a scratch database of this test's own, closed with
`ALTER DATABASE ... ALLOW_CONNECTIONS false` and its backends terminated, then reopened.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from exchange.db import db
from tests.conftest import PG_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
def scratch(make_app) -> Iterator[tuple[Any, Any]]:
    """An app on a migrated database of its own, and an admin engine to close and reopen it."""
    base = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"datafair_outage_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    app = make_app(DATABASE_URL=base.set(database=name).render_as_string(hide_password=False))
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
    try:
        yield app, _Outage(admin, name)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class _Outage:
    def __init__(self, admin: Any, name: str) -> None:
        self.admin, self.name = admin, name

    def begin(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": self.name})

    def end(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))


def test_the_database_goes_away_and_comes_back(scratch):
    app, outage = scratch
    from tests.factories import ApiHelper

    api = ApiHelper(app)
    vendor = api.vendor()
    assert api.get("health").get_json() == {"status": "ok", "database": "ok"}
    spec = api.get("openapi.json").get_json()

    outage.begin()
    r = api.get("health")
    assert r.status_code == 503 and r.get_json() == {"status": "unavailable", "database": "unreachable"}
    assert api.get("health/live").status_code == 200
    calls = [
        ("GET", "products", None, None, "/api/v1/products"),
        ("GET", "me", vendor, None, "/api/v1/me"),
        ("GET", "trades", vendor, None, "/api/v1/trades"),
        ("GET", f"organizations/{vendor.org_id}", None, None, "/api/v1/organizations/{org_id}"),
        ("POST", "auth/token", None, {"email": vendor.email, "password": vendor.password}, "/api/v1/auth/token"),
        ("POST", "products", vendor, {"title": "x"}, "/api/v1/products"),
        ("POST", "procurements", vendor, {"title": "x"}, "/api/v1/procurements"),
        ("GET", "/.well-known/jwks.json", None, None, "/.well-known/jwks.json"),
    ]
    for method, path, actor, body, operation in calls:
        r = api.request(method, path, actor, json=body)
        assert r.status_code == 503, (path, r.status_code, r.get_data(as_text=True)[:300])
        assert r.mimetype == "application/problem+json" and r.get_json()["status"] == 503
        assert int(r.headers["Retry-After"]) >= 1
        assert "503" in spec["paths"][operation][method.lower()]["responses"], (method, operation)
    # An Idempotency-Key cannot be claimed either: still a clean 503.
    r = api.post("procurements", vendor, json={}, headers={"Idempotency-Key": "outage-1"})
    assert r.status_code == 503 and r.mimetype == "application/problem+json"

    outage.end()
    assert api.get("health").get_json() == {"status": "ok", "database": "ok"}
    assert api.get("me", vendor).status_code == 200
    assert api.post("auth/token", json={"email": vendor.email, "password": vendor.password}).status_code == 200
    # The key whose claim failed during the outage is free: the request is served now.
    r = api.post("procurements", vendor, json={}, headers={"Idempotency-Key": "outage-1"})
    assert r.status_code == 422
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM organizations")).scalar_one() >= 2
