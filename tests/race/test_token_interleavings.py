"""Forced interleavings the race matrix can only hit by luck: a revocation of refresh tokens (an
organization's suspension, a logout) that reaches the tokens while a rotation is in flight.

The test holds the user's row (FOR UPDATE), which stops a rotation at the insert of its new token
(its foreign key check needs the row) after it has locked the old one; the revocation is sent then,
and waits on the old token; then the user's row is released. In any serial order of the two
requests the new token ends revoked (rotation then revocation) or is never handed out (revocation
then rotation, refused): it must never outlive the revocation.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text

from exchange.db import db
from tests.race.harness import Call, release, scalar

pytestmark = pytest.mark.postgres


def _waiting(app: Any) -> int:
    return scalar(app, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")


def _until(app: Any, n: int) -> None:
    deadline = time.monotonic() + 20
    while _waiting(app) < n:
        assert time.monotonic() < deadline, f"fewer than {n} requests waiting on a lock"
        time.sleep(0.02)


def _interleave(app: Any, user_id: str, rotation: Call, revocation: Call) -> dict[str, Any]:
    with app.app_context():
        holder = db.engine.connect()
    held = holder.begin()
    holder.execute(text("SELECT id FROM users WHERE id = :u FOR UPDATE"), {"u": user_id})
    answers: dict[str, Any] = {}

    def send(name: str, call: Call) -> None:
        answers[name] = release(app, [call])[0]

    threads = [threading.Thread(target=send, args=("rotation", rotation), daemon=True)]
    threads[0].start()
    _until(app, 1)  # the rotation holds the old token and waits for the user's row
    threads.append(threading.Thread(target=send, args=("revocation", revocation), daemon=True))
    threads[1].start()
    _until(app, 2)  # the revocation waits for the old token
    held.rollback()
    holder.close()
    for t in threads:
        t.join(30)
    return answers


def _outlives(api: Any, answers: dict[str, Any], user_id: str) -> list[str]:
    found = []
    if answers["rotation"].ok:
        new = answers["rotation"].json()["refresh_token"]
        r = api.post("auth/refresh", json={"refresh_token": new})
        if r.status_code != 401:
            found.append(f"the refresh token handed out by the rotation still works: {r.status_code}")
    live = scalar(api.app, "SELECT count(*) FROM refresh_tokens WHERE user_id = :u AND revoked_at IS NULL",
                  u=user_id)
    if live:
        found.append(f"{live} refresh tokens outlive the revocation")
    return found


def test_a_suspension_revokes_the_token_a_racing_rotation_hands_out(app, api):
    user = api.vendor()
    answers = _interleave(app, user.user_id, Call("POST", "auth/refresh", None, {"refresh_token": user.refresh_token}),
                          Call("POST", f"organizations/{user.org_id}/suspend", api.operator(), {"reason": "race"}))
    assert answers["revocation"].status == 200, answers["revocation"].show()
    assert answers["rotation"].status in (200, 401), answers["rotation"].show()
    assert not _outlives(api, answers, user.user_id)


@pytest.mark.parametrize("body", [{"all_sessions": True}, "token"], ids=["all sessions", "this login"])
def test_a_logout_revokes_the_token_a_racing_rotation_hands_out(app, api, body):
    vendor = api.vendor()
    user = api.member(vendor)
    logout = {"refresh_token": user.refresh_token} if body == "token" else body
    answers = _interleave(app, user.user_id, Call("POST", "auth/refresh", None, {"refresh_token": user.refresh_token}),
                          Call("POST", "auth/logout", user, logout))
    assert answers["revocation"].status == 204, answers["revocation"].show()
    assert not _outlives(api, answers, user.user_id)
