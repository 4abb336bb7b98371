"""Bounded lock waits (API.md Identity and access, DATAFAIR_LOCK_TIMEOUT_MS): a request that cannot
get its lock in time answers 503 problem+json with Retry-After and changes nothing; the retry, once
the lock is free, succeeds. On PostgreSQL every transaction runs with SET LOCAL lock_timeout,
statement_timeout and idle_in_transaction_session_timeout and a named application_name; on SQLite
the lock timeout is the busy timeout. Liveness never needs the database.

The lock is held for real by a second connection: `SELECT ... FOR UPDATE` on the organization's row
(PostgreSQL) or SQLite's write lock (`BEGIN IMMEDIATE`, its only lock).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from exchange.db import db
from tests import testapp
from tests.conftest import BACKEND
from tests.factories import ApiHelper

LOCK_TIMEOUT_MS = 200


@contextmanager
def row_locked(database, org_id: str) -> Iterator[None]:
    """The organization's row locked by another connection until the block ends (then rolled back)."""
    if BACKEND == "postgres":
        engine = create_engine(database.url)
        try:
            with engine.connect() as conn:
                locked = conn.execute(text("SELECT id FROM organizations WHERE id = :id FOR UPDATE"),
                                      {"id": org_id}).scalar_one()
                assert locked == org_id
                yield
                conn.rollback()
        finally:
            engine.dispose()
    else:
        conn = sqlite3.connect(database.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE organizations SET name = name WHERE id = ?", (org_id,))
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()


def test_a_lock_wait_that_times_out_is_503_with_retry_after_and_changes_nothing(make_app, database):
    app = make_app(LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS)
    api = ApiHelper(app)
    op, vendor = api.operator(), api.vendor()
    suspend = f"organizations/{vendor.org_id}/suspend"
    key = {"Idempotency-Key": "lock-timeout-1"}
    with row_locked(database, vendor.org_id):
        started = time.monotonic()
        r = api.post(suspend, op, json={"reason": "audit"}, headers=key)
        waited = time.monotonic() - started
        assert r.status_code == 503, r.get_data(as_text=True)
        assert r.mimetype == "application/problem+json" and r.get_json()["status"] == 503
        assert 1 <= int(r.headers["Retry-After"]) <= 5
        assert "retry" in r.get_json()["detail"].lower()
        assert "nothing was changed" in r.get_json()["detail"]
        # It waited about the configured timeout, not the default 5 s.
        assert waited < 3, waited
    assert api.get(f"organizations/{vendor.org_id}", op).get_json()["status"] == "verified"
    # The 503 released the key: the same request, retried, is served now.
    r = api.post(suspend, op, json={"reason": "audit"}, headers=key)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "suspended" and "Idempotent-Replayed" not in r.headers
    assert api.get(f"organizations/{vendor.org_id}", op).get_json()["status"] == "suspended"


@pytest.mark.postgres
def test_every_transaction_runs_with_the_configured_timeouts_and_application_name(make_app):
    app, _ = testapp.build(make_app, LOCK_TIMEOUT_MS=1234, STATEMENT_TIMEOUT_MS=4321,
                           IDLE_IN_TRANSACTION_TIMEOUT_MS=9876, DB_APPLICATION_NAME="datafair-test-web")
    client = app.test_client()
    expected = {"lock_timeout": "1234ms", "statement_timeout": "4321ms",
                "idle_in_transaction_session_timeout": "9876ms", "application_name": "datafair-test-web"}
    for send in (client.get, client.post):
        r = send("/api/v1/_test/db-settings")
        assert r.status_code == 200 and r.get_json() == expected
    # SET LOCAL: the settings end with each transaction, so a connection shared through PgBouncer
    # (transaction mode) or the pool never carries them into someone else's.
    with app.app_context(), db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert conn.execute(text("SHOW lock_timeout")).scalar_one() != "1234ms"


@pytest.mark.postgres
def test_a_statement_past_the_statement_timeout_is_503_with_retry_after(make_app):
    app, _ = testapp.build(make_app, STATEMENT_TIMEOUT_MS=100)
    started = time.monotonic()
    r = app.test_client().post("/api/v1/_test/slow-query")
    assert r.status_code == 503 and r.mimetype == "application/problem+json"
    assert int(r.headers["Retry-After"]) >= 1 and "retry" in r.get_json()["detail"].lower()
    assert time.monotonic() - started < 1.5


def test_liveness_answers_while_the_database_is_unreachable(make_app):
    # Nothing listens on port 1: every connection attempt is refused at once.
    app = make_app(DATABASE_URL="postgresql://datafair@127.0.0.1:1/unreachable")
    client = app.test_client()
    r = client.get("/api/v1/health/live")
    assert r.status_code == 200 and r.get_json() == {"status": "ok", "database": "not checked"}
    assert client.get("/api/v1/health/ready").status_code == 503
    assert client.get("/api/v1/health").status_code == 503


@pytest.mark.postgres
def test_a_deadlock_victim_is_503_with_retry_after_and_changes_nothing(make_app, database):
    """A real deadlock: another connection holds the trade's row and then asks for the payment's
    while the operator's confirmation (payment, then trade) waits for the trade. PostgreSQL aborts
    the request (the other side's deadlock_timeout is longer, so the request is the victim): 503 with
    Retry-After, nothing kept; the retry, once the other side is gone, confirms."""
    import threading

    from tests.tradeflow import contract_for, sign

    app = make_app()
    api = ApiHelper(app)
    op, vendor, buyer = api.operator(), api.vendor(), api.enterprise()
    contract = contract_for(api, vendor, buyer)
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()["id"]
    engine = create_engine(database.url)
    answer: dict[str, object] = {}
    try:
        with engine.connect() as other:
            other.execute(text("SET deadlock_timeout = '10s'"))
            other.execute(text("SELECT id FROM trades WHERE id = :t FOR UPDATE"), {"t": trade_id})
            confirm = threading.Thread(target=lambda: answer.update(
                r=api.post(f"payments/{payment}/confirm", op)))
            confirm.start()
            # Wait until the request holds the payment's row and waits for the trade's.
            for _ in range(100):
                waiting = other.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar_one()
                if waiting:
                    break
                time.sleep(0.05)
            assert waiting, "the confirmation never waited for the trade's row"
            other.execute(text("SELECT id FROM payments WHERE id = :p FOR UPDATE"), {"p": payment})
            confirm.join(timeout=20)
            other.rollback()
    finally:
        engine.dispose()
    r = answer["r"]
    assert r.status_code == 503, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json" and int(r.headers["Retry-After"]) >= 1
    assert "nothing was changed" in r.get_json()["detail"]
    assert api.get(f"payments/{payment}", op).get_json()["status"] == "pending"
    assert api.get(f"trades/{trade_id}", op).get_json()["status"] == "awaiting_payment"
    r = api.post(f"payments/{payment}/confirm", op)
    assert r.status_code == 200, r.get_json()
    assert api.get(f"trades/{trade_id}", op).get_json()["status"] == "escrowed"
