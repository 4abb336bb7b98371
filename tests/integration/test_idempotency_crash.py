"""One effect per Idempotency-Key even when the worker dies at the worst moment (API.md Conventions).

A real gunicorn worker is killed (SIGKILL) right after its request's commit, before it answers: the
product exists and the client saw nothing. The client retries with the same key once the in-flight
window (`DATAFAIR_IDEMPOTENCY_ABANDONED_SECONDS`, 1 s here) is over, i.e. when a claim left by a
dead worker may be taken over: it gets the first response replayed (`Idempotent-Replayed: true`,
the product's id) and there is still exactly one product. Before the stored response was committed
with the effect, the claim was still in flight after the crash and the retry created a second one.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select

from exchange.db import db
from listings.models import Product
from tests.api.test_ratelimit import _get, gunicorns
from tests.factories import product_body

pytestmark = [pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"])]
CONFIG = "tests/integration/gunicorn_die_after_commit.py"
DIE = "X-Test-Die-After-Commit"
ABANDONED_SECONDS = 1


def _post(base: str, path: str, token: str, body: dict, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{base}/api/v1/{path}", method="POST", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except (urllib.error.URLError, ConnectionError, OSError):
        return 0, {}, b""  # cut off with the worker


def _products(app, org_id: str) -> list[str]:
    with app.app_context():
        ids = db.session.execute(select(Product.id).where(Product.owner_org_id == org_id)).scalars().all()
        db.session.rollback()
        return list(ids)


def test_a_worker_killed_right_after_its_commit_is_replayed_not_run_again(api, app, database, tmp_path):
    vendor = api.vendor()
    body = product_body()
    key = {"Idempotency-Key": "crash-after-commit-1"}
    with gunicorns(database.url, tmp_path, count=1, config=CONFIG, DATAFAIR_JOBS_IN_PROCESS="0",
                   DATAFAIR_IDEMPOTENCY_ABANDONED_SECONDS=str(ABANDONED_SECONDS)) as (base,):
        status, _, _ = _post(base, "products", vendor.token, body, {**key, DIE: "1"})
        assert status == 0, "the worker answered instead of dying after its commit"
        created = _products(app, vendor.org_id)
        assert len(created) == 1  # the effect is durable; its client never heard of it
        deadline = time.monotonic() + 30
        while _get(f"{base}/api/v1/health/live") != 200:  # the master starts a new worker
            assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
            time.sleep(0.1)
        time.sleep(ABANDONED_SECONDS + 1)  # an in-flight claim would count as abandoned by now
        status, headers, replay = _post(base, "products", vendor.token, body, key)
        assert status == 201, replay[:300]
        assert headers.get("Idempotent-Replayed") == "true"
        assert json.loads(replay)["id"] == created[0]
        # And again: the same bytes, still nothing new.
        again = _post(base, "products", vendor.token, body, key)
        assert again[0] == 201 and again[2] == replay
    assert _products(app, vendor.org_id) == created
