"""Prometheus metrics at /metrics (in-process and gunicorn multiprocess mode), readiness and liveness,
and the structured request log."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from exchange import metrics
from exchange.db import db
from exchange.ledger.engine import post_entry
from tests.ledger_helpers import funding, move, payable

ROOT = Path(__file__).resolve().parents[2]


def scrape(client) -> dict[str, list]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        out.setdefault(family.name, []).extend(family.samples)
    return out


def value(samples, name, **labels) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert found, (name, labels)
    return sum(found)


def test_request_latency_by_route_rule_method_and_status(api, client):
    vendor = api.vendor()
    before = scrape(client).get("datafair_http_request_duration_seconds", [])
    rule = "/api/v1/organizations/<org_id>"

    def count(samples, **labels):
        try:
            return value(samples, "datafair_http_request_duration_seconds_count", route=rule, **labels)
        except AssertionError:
            return 0

    for _ in range(3):
        assert client.get(f"/api/v1/organizations/{vendor.org_id}").status_code == 200
    assert client.get("/api/v1/organizations/org_missing").status_code == 404
    client.get("/no/such/path")
    after = scrape(client)["datafair_http_request_duration_seconds"]
    assert count(after, method="GET", status="200") - count(before, method="GET", status="200") == 3
    assert count(after, method="GET", status="404") - count(before, method="GET", status="404") == 1
    # Unknown paths share one label (no cardinality explosion from scanners).
    assert value(after, "datafair_http_request_duration_seconds_count", route="unmatched") >= 1
    assert not any("org_missing" in str(s.labels) for s in after)


def test_database_gauges_are_computed_at_scrape(api, app, client):
    api.vendor()
    api.vendor(verified=False)
    with app.app_context():
        for amount in (500, 700):
            post_entry(db.session, kind="payout", postings=move(funding("org_b"), payable("org_s"), amount))
        db.session.commit()
    samples = scrape(client)
    assert value(samples["datafair_ledger_entries"], "datafair_ledger_entries") == 2
    orgs = samples["datafair_organizations"]
    assert value(orgs, "datafair_organizations", status="verified") == 2  # the vendor and the operators
    assert value(orgs, "datafair_organizations", status="pending") == 1
    assert value(samples["datafair_outbox_undispatched_events"], "datafair_outbox_undispatched_events") == 1
    assert value(samples["datafair_collector_up"], "datafair_collector_up", collector="ledger") == 1


def test_layers_add_collectors_and_a_broken_one_does_not_break_the_scrape(client):
    metrics.register_collector(client.application, "test.trades", lambda s: [metrics.labelled_gauge(
        "datafair_trades", "Trades by status", "status", [("settled", 4), ("escrowed", 1)])])

    def broken(_session):
        raise RuntimeError("no such table")

    metrics.register_collector(client.application, "test.broken", broken)
    try:
        samples = scrape(client)
        assert value(samples["datafair_trades"], "datafair_trades", status="settled") == 4
        up = samples["datafair_collector_up"]
        assert value(up, "datafair_collector_up", collector="test.broken") == 0
        assert value(up, "datafair_collector_up", collector="test.trades") == 1
    finally:
        metrics.unregister_collector(client.application, "test.trades")
        metrics.unregister_collector(client.application, "test.broken")


def test_job_queue_depth_comes_from_redis_when_configured(make_app):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/14"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {url}")
    prefix = f"dfx-test-{secrets.token_hex(4)}:"
    app = make_app(REDIS_URL=url, REDIS_KEY_PREFIX=prefix)
    client.rpush(prefix + "datafair", "a", "b", "c")
    try:
        samples = scrape(app.test_client())
        assert value(samples["datafair_job_queue_depth"], "datafair_job_queue_depth", queue="datafair") == 3
    finally:
        client.delete(prefix + "datafair")
        client.close()


def test_no_queue_depth_without_redis(client):
    assert "datafair_job_queue_depth" not in scrape(client)


def test_labelled_gauge_reads_group_by_rows():
    family = metrics.labelled_gauge("x", "doc", "status", [("a", 2), ("b", None)])
    assert isinstance(family, GaugeMetricFamily)
    assert [(s.labels, s.value) for s in family.samples] == [({"status": "a"}, 2.0), ({"status": "b"}, 0.0)]


# -- health ----------------------------------------------------------------------------------------

def test_ready_live_and_the_original_health(client):
    r = client.get("/api/v1/health/ready")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok", "database": "ok", "redis": "not configured"}
    assert client.get("/api/v1/health/live").status_code == 200
    assert client.get("/api/v1/health").get_json() == {"status": "ok", "database": "ok"}


def test_still_ready_when_redis_is_configured_but_down(make_app):
    # Redis is not a single point of failure (rate limits fall back to the database): a detail only.
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    r = app.test_client().get("/api/v1/health/ready")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok", "database": "ok", "redis": "unreachable"}
    assert app.test_client().get("/api/v1/health/live").status_code == 200


def test_not_ready_when_the_database_is_down(make_app):
    app = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    client = app.test_client()
    r = client.get("/api/v1/health/ready")
    assert r.status_code == 503 and r.get_json()["database"] == "unreachable"
    assert client.get("/api/v1/health/live").status_code == 200


def test_request_logs_carry_request_id_route_org_and_latency(api, client, caplog):
    vendor = api.vendor()
    with caplog.at_level(logging.INFO, logger="datafair.http"):
        client.get("/api/v1/me", headers={**vendor.headers, "X-Request-Id": "req-abc-123"})
    record = [r for r in caplog.records if r.name == "datafair.http" and getattr(r, "path", "") == "/api/v1/me"][-1]
    assert record.request_id == "req-abc-123" and record.org_id == vendor.org_id
    assert record.route == "/api/v1/me" and record.status == 200 and record.latency_ms >= 0
    line = json.loads(metrics_log_line(record))
    assert {"request_id", "org_id", "latency_ms", "route", "status"} <= set(line)


def metrics_log_line(record) -> str:
    from exchange.logs import JSONFormatter

    return JSONFormatter().format(record)


# -- gunicorn multiprocess mode --------------------------------------------------------------------

def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback http only
            return r.status, r.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_multiprocess_metrics_add_up_across_gunicorn_workers(app, database, tmp_path):
    from tests.api.test_ratelimit import _free_port

    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    (prom_dir / "stale_counter_1.db").write_bytes(b"")  # left from an earlier run: emptied at start
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=database.url, DATAFAIR_WORKERS="3", DATAFAIR_BIND=f"127.0.0.1:{port}",
               PROMETHEUS_MULTIPROC_DIR=str(prom_dir), PYTHONPATH=str(ROOT))
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "app:app"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        made = 0  # requests the app answered (refused connections while it starts never reach it)
        deadline = time.monotonic() + 30
        while _get(f"{base}/api/v1/health/live")[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.1)
        made += 1
        assert not (prom_dir / "stale_counter_1.db").exists()
        # Concurrent requests: sync workers each take one at a time, so several workers answer.
        # On a loaded machine one worker may take a whole burst: send bursts until a second answers.
        pids: set[str] = set()
        while len(pids) < 2 and time.monotonic() < deadline + 30:
            with ThreadPoolExecutor(6) as pool:
                statuses = list(pool.map(lambda _: _get(f"{base}/api/v1/health/live")[0], range(60)))
            assert statuses == [200] * 60
            made += 60
            pids = {m.group(1) for f in prom_dir.iterdir() if (m := re.match(r"histogram_(\d+)\.db$", f.name))}
        assert len(pids) >= 2, "several workers should have answered"
        for _ in range(4):  # whichever worker answers the scrape reports every worker's requests
            _, text = _get(f"{base}/metrics")
            total = sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
                        if s.name == "datafair_http_request_duration_seconds_count"
                        and s.labels.get("route") == "/api/v1/health/live")
            assert total == made
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
