"""SQLite: a 503 lock timeout releases its Idempotency-Key even when the release itself first meets the
busy database (it is retried in the background), so the retry its Retry-After asks for is served."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from tests import testapp
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's single write lock")


def test_a_503_lock_timeout_releases_its_key_even_while_the_database_is_still_busy(make_app, database):
    app, _ = testapp.build(make_app, LOCK_TIMEOUT_MS=200)
    held, released = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(database.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        released.wait(5)
        conn.execute("ROLLBACK")
        conn.close()

    @app.before_request
    def another_writer_takes_the_lock_after_the_claim() -> None:
        if not held.is_set():
            threading.Thread(target=hold, daemon=True).start()
            held.wait(5)

    client = app.test_client()
    body, headers = {"note": "busy"}, {"Idempotency-Key": "busy-key"}
    timer = threading.Timer(1.0, released.set)
    timer.start()
    r = client.post("/api/v1/_test/effect", json=body, headers=headers)
    assert r.status_code == 503, r.get_data(as_text=True)
    released.wait(5)
    time.sleep(0.6)  # the client waits its Retry-After (1 s) before retrying
    r = client.post("/api/v1/_test/effect", json=body, headers=headers)
    assert r.status_code == 201, (r.status_code, r.get_json())
