"""The API gateway through gunicorn (gthread) on PostgreSQL, next to the same upstream called directly.

Set-up: a fresh PostgreSQL database (migrations) and, through the API in-process, a vendor's `api`
product whose upstream is a small threaded HTTP server on loopback that answers a ~300-byte JSON after
a fixed 20 ms of simulated I/O (a sleep), sold and paid for, and one key of the buyer. The timed load
is the harness's load generator (its own process, on the other core) with 8 keep-alive clients:

- direct: `GET /v1/traffic-flow` on the upstream itself, with the vendor's header;
- gateway: `GET /gateway/v1/{product}/traffic-flow` with the buyer's key, on gunicorn with
  `deploy/gunicorn.conf.py` (2 workers x 4 threads, the server pinned to its core): every call is
  authorized, reserved and counted in PostgreSQL (one entitlement: its row is the hot spot), forwarded
  on a new connection to the upstream and logged;
- the same gateway on 2 sync workers (DATAFAIR_THREADS=1), for the worker-model decision.

Direct and gateway rounds alternate and ratios are taken pair by pair. Added latency is gateway p50/p99
minus direct p50/p99 of the same pair. Metering: after the runs the entitlement's `calls_used` and its
usage periods must agree, and the calls metered during each timed run must equal the 200s the load
generator received in it (its warm-up is a separate run), and metered calls/s is the
gateway's throughput of counted calls. Ledger entries per hour do not grow with calls: the sweep
closes each usage period with one `usage` entry per entitlement that had calls in it, so entries/hour
= (entitlements with calls in the period) x 60 / DATAFAIR_USAGE_PERIOD_MINUTES (default 60).
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.bench.harness import (
    BIN,
    OUT,
    ROOT,
    SECRET,
    SERVER_CPUS,
    _pinned,
    app_env,
    free_port,
    load,
    log,
    percentile,
    pg_database,
    spread,
)

CLIENTS = 8
WORKERS, THREADS = 2, 4
UPSTREAM_DELAY_S = 0.020
VENDOR_HEADER = {"name": "X-Api-Key", "value": "bench-vendor-secret"}
SEED_CONFIG = {"PASSWORD_HASH_METHOD": "scrypt:1024:8:1", "LOGIN_RATE_LIMIT": "1000/minute",
               "WRITE_RATE_LIMIT": "10000/minute", "REGISTRATION_RATE_LIMIT": "100000/hour",
               "ALLOW_PRIVATE_URLS": True}
BODY = json.dumps({"segment_id": "TH-0412", "interval_minutes": 5, "readings": [
    {"ts": f"2026-11-02T07:{m:02d}:00Z", "flow_per_5min": 300 + m, "speed_kmh": 27.5} for m in (50, 55)]}).encode()


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a vendor's API would
    # Headers and body are two writes: with Nagle's algorithm the body waits for the client's delayed
    # ACK (40 ms), which would be measured instead of the 20 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        time.sleep(UPSTREAM_DELAY_S)
        if self.headers.get(VENDOR_HEADER["name"]) != VENDOR_HEADER["value"]:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


class Upstream:
    """The simulated vendor API on a free loopback port, in a thread of this process."""

    def __enter__(self) -> Upstream:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Gunicorn:
    """datafair on gunicorn with deploy/gunicorn.conf.py in development (a loopback upstream is
    refused in production), pinned to the server's core."""

    def __init__(self, name: str, url: str, *, threads: int) -> None:
        self.name, self.url, self.threads = name, url, threads
        self.port = free_port()

    def __enter__(self) -> Gunicorn:
        from tests.bench.loadgen import Client, encode

        self.log = open(OUT / f"server-{self.name}.log", "wb")
        env = app_env(self.url, DATAFAIR_BIND=f"127.0.0.1:{self.port}", DATAFAIR_WORKERS=str(WORKERS),
                      DATAFAIR_THREADS=str(self.threads), DATAFAIR_ENV="development", DATAFAIR_SECRET_KEY=SECRET,
                      DATAFAIR_ALLOW_PRIVATE_URLS="1", DATAFAIR_GATEWAY_RATE_LIMIT="100000000/minute",
                      DATAFAIR_ACCESS_LOG="/dev/null", DATAFAIR_LOG_LEVEL="warning")
        cmd = _pinned([str(BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "app:app"],
                      SERVER_CPUS)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited; see {self.log.name}")
            try:
                client = Client("127.0.0.1", self.port)
                status, _ = client.request(encode("127.0.0.1", self.port, "GET", "/api/v1/health/live"))
                client.close()
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn {self.name} did not become ready; see {self.log.name}")

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def seed(url: str, upstream_url: str) -> dict[str, Any]:
    """A migrated database with an `api` product on `upstream_url`, bought, and the buyer's key."""
    from flask_migrate import upgrade

    from app import create_app
    from tests.deliveryflow import api_bought
    from tests.factories import ApiHelper

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "DATAFAIR_ENV": "development", "REDIS_URL": None,
                      **SEED_CONFIG})
    with app.app_context():
        upgrade()
    quiet = logging.getLogger("datafair.http")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        bought = api_bought(ApiHelper(app), upstream_url, header=VENDOR_HEADER,
                            title="广州市实时交通流量 Guangzhou real-time traffic (gateway bench)")
        return {"app": app, "product_id": bought["product_id"], "key": bought["key"],
                "entitlement_id": bought["ent"]["id"]}
    finally:
        quiet.setLevel(level)


def metered(app: Any, entitlement_id: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from delivery.models import Entitlement, UsagePeriod
    from exchange.db import db

    with app.app_context():
        used = db.session.get(Entitlement, entitlement_id).calls_used
        periods = db.session.execute(select(func.count(), func.coalesce(func.sum(UsagePeriod.calls), 0))
                                     .where(UsagePeriod.entitlement_id == entitlement_id)).one()
        db.session.remove()
    return {"calls_used": int(used), "usage_periods": int(periods[0]), "period_calls": int(periods[1])}


def round_trips(app: Any, path: str, headers: dict[str, str]) -> dict[str, int]:
    """The database work of one gateway call (in-process, untimed): statements and transactions."""
    from sqlalchemy import event

    from exchange.db import db

    client = app.test_client()
    client.get(path, headers=headers)  # the first call of a process loads what later calls reuse
    with app.app_context():
        engine = db.engine
    seen = {"statements": 0, "transactions": 0}

    def statement(*_: Any) -> None:
        seen["statements"] += 1

    def begin(*_: Any) -> None:
        seen["transactions"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begin)
    try:
        status = client.get(path, headers=headers).status_code
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begin)
    if status != 200:
        raise RuntimeError(f"the gateway answered {status} in-process")
    return seen


class _Port:
    def __init__(self, port: int) -> None:
        self.port = port


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    lat = run["lat_ms"]
    return {"rps": run["rps"], "p50": percentile(lat, 50), "p99": percentile(lat, 99), "n": run["n"],
            "status": run["status"], "bad": run["bad"]}


def measure(*, rounds: int, duration: float, warmup: float = 1.0) -> dict[str, Any]:
    started = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    url = pg_database("datafair_bench_gateway", fresh=True)
    with Upstream() as upstream:
        seeded = seed(url, f"http://127.0.0.1:{upstream.port}/v1")
        app = seeded["app"]
        direct_req = [{"method": "GET", "path": "/v1/traffic-flow?segment=TH-0412",
                       "headers": {VENDOR_HEADER["name"]: VENDOR_HEADER["value"]}}]
        gw_req = [{"method": "GET", "path": f"/gateway/v1/{seeded['product_id']}/traffic-flow?segment=TH-0412",
                   "headers": {"Authorization": f"Bearer {seeded['key']}"}}]
        trips = round_trips(app, gw_req[0]["path"], gw_req[0]["headers"])
        pairs: list[dict[str, Any]] = []
        tally = {"answered": 0, "metered": 0}

        def gateway_run(server: Gunicorn) -> dict[str, Any]:
            # The warm-up is a run of its own, so the timed run's every answer is in the load
            # generator's count, to hold against what the database metered meanwhile.
            load(server, gw_req, concurrency=CLIENTS, duration=warmup)
            before = metered(app, seeded["entitlement_id"])["calls_used"]
            run = load(server, gw_req, concurrency=CLIENTS, duration=duration)
            after = metered(app, seeded["entitlement_id"])["calls_used"]
            summary = _summary(run)
            summary["metered_in_run"] = after - before
            tally["answered"] += run["status"].get("200", 0)
            tally["metered"] += after - before
            return summary

        with Gunicorn("gateway-gthread", url, threads=THREADS) as server:
            log(f"  gateway: gunicorn {WORKERS} gthread workers x {THREADS} threads, {CLIENTS} clients, "
                f"upstream {UPSTREAM_DELAY_S * 1000:.0f} ms")
            for i in range(rounds):
                direct = _summary(load(_Port(upstream.port), direct_req, concurrency=CLIENTS, duration=duration,
                                       warmup=warmup))
                gateway = gateway_run(server)
                pairs.append({"direct": direct, "gateway": gateway})
                log(f"  round {i + 1}: direct {direct['rps']:.0f}/s p50 {direct['p50']:.1f} ms; gateway "
                    f"{gateway['rps']:.0f}/s p50 {gateway['p50']:.1f} ms p99 {gateway['p99']:.1f} ms")
        with Gunicorn("gateway-sync", url, threads=1) as server:
            sync = gateway_run(server)
            log(f"  sync workers: gateway {sync['rps']:.0f}/s p50 {sync['p50']:.1f} ms")
        counts = metered(app, seeded["entitlement_id"])
        from exchange.db import db

        with app.app_context():
            minutes = int(app.config["USAGE_PERIOD_MINUTES"])
            db.session.remove()
            db.engine.dispose()
    return {
        "database": "postgresql", "clients": CLIENTS, "workers": WORKERS, "threads": THREADS,
        "upstream_delay_ms": UPSTREAM_DELAY_S * 1000, "duration_s": duration, "rounds": rounds,
        "pairs": pairs,
        "direct_rps": spread([p["direct"]["rps"] for p in pairs]),
        "gateway_rps": spread([p["gateway"]["rps"] for p in pairs]),
        "ratio": spread([p["gateway"]["rps"] / p["direct"]["rps"] for p in pairs]),
        "added_p50_ms": spread([p["gateway"]["p50"] - p["direct"]["p50"] for p in pairs]),
        "added_p99_ms": spread([p["gateway"]["p99"] - p["direct"]["p99"] for p in pairs]),
        "sync": sync, "per_call": trips,
        "metering": {**counts, "answered_200": tally["answered"], "metered_in_timed_runs": tally["metered"],
                     "exact": tally["answered"] == tally["metered"] and counts["calls_used"] == counts["period_calls"],
                     "metered_calls_s": spread([p["gateway"]["rps"] for p in pairs]),
                     "usage_period_minutes": minutes,
                     "ledger_entries_per_hour": 1 * 60 / minutes,
                     "formula": "entries/hour = entitlements with calls in the period x 60 / "
                                "DATAFAIR_USAGE_PERIOD_MINUTES (independent of the call rate)"},
        "seconds": time.perf_counter() - started,
    }
