"""Exact metering under real concurrency (PostgreSQL): many clients share one key through real gunicorn
servers (each request its own connection to the database) in front of a loopback upstream that counts
what reaches it. A quota of N serves exactly N, on one node or two, and a call the upstream fails is
given back: never lost, never counted twice."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, update

from delivery.models import Entitlement, UsagePeriod
from exchange.db import db
from tests.api.test_ratelimit import gunicorns
from tests.deliveryflow import api_bought, execute
from tests.upstream import Upstream, upstream  # noqa: F401 - fixture

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"])]
CLIENTS = 16
ENV = {"DATAFAIR_ALLOW_PRIVATE_URLS": "1", "DATAFAIR_THREADS": "8", "DATAFAIR_GATEWAY_RATE_LIMIT": "100000/minute"}


@pytest.fixture(autouse=True)
def _private_upstreams(app):
    app.config["ALLOW_PRIVATE_URLS"] = True


def with_quota(app, deal, n: int) -> None:
    # The per_call contract path (terms.calls) lands separately (trading/): the quota is set in the
    # database after escrow, as that path will set it.
    execute(app, update(Entitlement).where(Entitlement.id == deal["ent"]["id"]).values(calls_included=n))


def hit(base: str, deal, path: str) -> tuple[int, str]:
    req = urllib.request.Request(f"{base}/gateway/v1/{deal['product_id']}/{path}",  # noqa: S310 - loopback
                                 headers={"Authorization": f"Bearer {deal['key']}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
            r.read()
            return r.status, ""
    except urllib.error.HTTPError as e:
        body = e.read()
        detail = json.loads(body).get("detail", "") if e.headers.get("Content-Type", "").endswith("json") else ""
        return e.code, detail


def storm(bases: list[str], deal, total: int) -> list[tuple[int, str]]:
    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(lambda i: hit(bases[i % len(bases)], deal, f"rows/{i}"), range(total)))


def metered(app, deal) -> tuple[int, int]:
    with app.app_context():
        used = db.session.execute(select(Entitlement.calls_used).where(Entitlement.id == deal["ent"]["id"])).scalar()
        periods = db.session.execute(select(func.coalesce(func.sum(UsagePeriod.calls), 0))
                                     .where(UsagePeriod.entitlement_id == deal["ent"]["id"])).scalar()
    return used, periods


@pytest.mark.parametrize("nodes", [1, 2])
def test_a_quota_of_100_serves_exactly_100_to_16_clients(api, app, database, tmp_path, upstream, nodes):  # noqa: F811
    deal = api_bought(api, upstream.url)
    with_quota(app, deal, 100)
    with gunicorns(database.url, tmp_path, count=nodes, **ENV) as bases:
        answers = storm(bases, deal, 160)
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 100, 429: 60}, statuses
    assert all("quota_exhausted" in detail for status, detail in answers if status == 429)
    assert upstream.count() == 100
    assert metered(app, deal) == (100, 100)
    trade = api.get(f"trades/{deal['trade']['id']}", deal["buyer"]).get_json()
    assert trade["status"] == "delivered"


def test_calls_the_upstream_fails_are_given_back_exactly(api, app, database, tmp_path, upstream):  # noqa: F811
    lock, seen = threading.Lock(), Counter()

    def half_down(r):
        with lock:
            seen["all"] += 1
            fail = seen["all"] % 2 == 0
            seen["failed" if fail else "ok"] += 1
        return (503, {}, b"down") if fail else (200, {}, b"{}")

    upstream.answer = half_down
    deal = api_bought(api, upstream.url)
    with_quota(app, deal, 60)
    with gunicorns(database.url, tmp_path, count=2, **ENV) as bases:
        answers = storm(bases, deal, 240)
    statuses = Counter(status for status, _ in answers)
    # Every answer below 500 that reached the upstream is counted once; every 503 was given back.
    assert seen["ok"] == 60 and statuses[200] == 60, (seen, statuses)
    assert statuses[503] == seen["failed"] and set(statuses) <= {200, 503, 429}
    assert metered(app, deal) == (60, 60)
    assert upstream.count() == seen["all"]
