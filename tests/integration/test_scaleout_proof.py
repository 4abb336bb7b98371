"""The scale-out proof (issue 9) on this machine's PostgreSQL and Redis:

two gunicorn nodes on different loopback ports, one Celery worker and one beat (subprocesses of
this venv), a local webhook receiver, and a bounded load of flows alternating between the nodes.
One node is SIGKILLed mid-run (master and workers at once). Then:

* every acknowledged (2xx) write exists: registrations, verifications, settled trades; every trade
  of the run is consistent (its escrow holds what its status says, the seller's payable the rest);
* every event behind an acknowledged write reached its endpoint at least once, every delivery
  carries a valid signature, and a receiver failing at first is served by the retries;
* `flask --app app ledger verify` is green;
* failed-login limits hold across the two nodes (Redis).

`drive_flow` drives whole deals (certification, offer, contract, signatures, payment, delivery,
acceptance) with an Idempotency-Key on every POST; the organizations' verifications and the trades'
settlements are the webhook events checked.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from exchange.db import db
from exchange.events import signature
from exchange.events.models import WebhookDelivery
from exchange.identity.models import Organization
from exchange.ledger.engine import balance
from tests.api.test_ratelimit import _free_port
from tests.factories import PASSWORD
from tests.hookserver import Answer, HookServer
from trading.models import Trade

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own; keys under a per-run prefix
FLOWS = 20
KILL_AFTER = 7  # flows completed before node 1 dies
DRIVERS = 3

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class NodeDown(Exception):
    """The node did not answer (connection refused or reset): nothing was acknowledged."""


@dataclass
class Cluster:
    nodes: list[str]
    procs: list[subprocess.Popen]
    alive: list[bool]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, i: int) -> int:
        with self.lock:
            live = [n for n, ok in enumerate(self.alive) if ok]
        return i % len(self.nodes) if self.alive[i % len(self.nodes)] else live[0]

    def call(self, node: int, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
        h = {"Content-Type": "application/json", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.nodes[node] + path, data=data, method=method, headers=h)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=15) as r:  # noqa: S310 - loopback http only
                return r.status, dict(r.headers), json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            raise NodeDown(str(e)) from None


@dataclass
class Ledger:
    """What the nodes acknowledged, and the secrets to check signatures with."""

    registered: set[str] = field(default_factory=set)
    verified: set[str] = field(default_factory=set)
    trades: dict[str, int] = field(default_factory=dict)  # settled trade id -> amount
    secrets_by_path: dict[str, str] = field(default_factory=dict)
    expected_events: set[tuple[str, str]] = field(default_factory=set)  # (path, key)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attr: str, value: Any) -> None:
        with self.lock:
            target = getattr(self, attr)
            if isinstance(target, set):
                target.add(value)
            else:
                target.update(value)


@dataclass
class Parties:
    """The run's vendor and buyer (tokens) and the operator, set up once before the load."""

    operator: str
    vendor: str
    buyer: str
    vendor_org: str
    buyer_org: str


def _step(cluster: Cluster, node: int, method: str, path: str, body: Any, token: str, key: str) -> dict:
    status, _, answer = cluster.call(node, method, path, body, token, headers={"Idempotency-Key": key})
    assert 200 <= status < 300, (path, status, answer)
    return answer


def drive_flow(cluster: Cluster, i: int, run: str, parties: Parties, receiver: HookServer,
               acked: Ledger) -> None:
    """One whole deal, its steps alternating between the nodes (every POST with an Idempotency-Key):
    a product certified, a bid accepted, both signatures, payment confirmed, delivery, acceptance.
    The trade counts as acknowledged once the acceptance answered 200."""
    k = f"{run}-{i}"
    product = _step(cluster, cluster.pick(i), "POST", "/api/v1/products", {
        "title": f"证明数据 Proof data {k}", "summary": "scale-out proof", "description": "proof of the design",
        "category": "transport", "keywords": ["proof"], "data_format": "csv", "delivery_mode": "file",
        "classification": "general", "contains_personal_info": False, "origin_region": "GD",
        "update_frequency": "daily",
        "price": {"model": "one_time", "amount": 10_000 + i, "currency": "CNY"},
        "license": {"scope": "commercial", "duration_days": 30, "resale_allowed": False},
        "scenarios": ["可扩展性证明 scale-out proof"], "data_source": {"type": "self_collected", "description": "x"},
    }, parties.vendor, f"p-{k}")
    cert = _step(cluster, cluster.pick(i + 1), "POST", "/api/v1/certifications",
                 {"product_id": product["id"], "documents": []}, parties.vendor, f"c-{k}")
    for n, stage in enumerate(("quality", "ownership", "compliance")):
        _step(cluster, cluster.pick(i + n), "POST", f"/api/v1/certifications/{cert['id']}/reviews",
              {"stage": stage, "decision": "approve"}, parties.operator, f"r-{stage}-{k}")
    offer = _step(cluster, cluster.pick(i), "POST", "/api/v1/offers", {
        "product_id": product["id"], "price": {"amount": 10_000 + i, "currency": "CNY"},
        "terms": {"scope": "commercial", "duration_days": 30, "delivery_mode": "file"},
    }, parties.buyer, f"o-{k}")
    contract = _step(cluster, cluster.pick(i + 1), "POST", f"/api/v1/offers/{offer['id']}/accept", None,
                     parties.vendor, f"a-{k}")
    _step(cluster, cluster.pick(i), "POST", f"/api/v1/contracts/{contract['id']}/signatures", {},
          parties.buyer, f"sb-{k}")
    signed = _step(cluster, cluster.pick(i + 1), "POST", f"/api/v1/contracts/{contract['id']}/signatures", {},
                   parties.vendor, f"sv-{k}")
    trade_id = signed["trade_id"]
    payment = _step(cluster, cluster.pick(i), "POST", f"/api/v1/trades/{trade_id}/payments",
                    {"provider": "manual"}, parties.buyer, f"pay-{k}")
    _step(cluster, cluster.pick(i + 1), "POST", f"/api/v1/payments/{payment['id']}/confirm", None,
          parties.operator, f"conf-{k}")
    _step(cluster, cluster.pick(i), "POST", f"/api/v1/trades/{trade_id}/delivery",
          {"reference": f"sftp://proof/{k}", "sha256": "a" * 64}, parties.vendor, f"d-{k}")
    settled = _step(cluster, cluster.pick(i + 1), "POST", f"/api/v1/trades/{trade_id}/acceptance", None,
                    parties.buyer, f"acc-{k}")
    assert settled["status"] == "settled"
    acked.add("trades", {trade_id: settled["amount"]})
    acked.add("expected_events", ("/vendor", trade_id))
    acked.add("expected_events", ("/buyer", trade_id))


def setup_parties(cluster: Cluster, run: str, operator_token: str, receiver: HookServer, acked: Ledger) -> Parties:
    """A vendor and a buyer register, are verified and subscribe to their trades' settlements."""
    tokens, orgs = {}, {}
    for n, kind in enumerate(("vendor", "enterprise")):
        email = f"proof-{run}-{kind}@{kind}.test"
        status, _, org = cluster.call(n % 2, "POST", "/api/v1/organizations", {
            "name": f"Proof {kind} {run} 证明", "type": kind, "region": "GD",
            "registration_number": f"PROOF-{run}-{kind}",
            "admin": {"email": email, "password": PASSWORD, "name": f"Admin {kind}"},
        })
        assert status == 201, org
        acked.add("registered", org["id"])
        status, _, body = cluster.call((n + 1) % 2, "POST", f"/api/v1/organizations/{org['id']}/verify",
                                       {"reason": "proof"}, operator_token)
        assert status == 200, body
        acked.add("verified", org["id"])
        acked.add("expected_events", ("/ops", org["id"]))
        status, _, pair = cluster.call(n % 2, "POST", "/api/v1/auth/token", {"email": email, "password": PASSWORD})
        assert status == 200, pair
        path = "/vendor" if kind == "vendor" else "/buyer"
        status, _, ep = cluster.call((n + 1) % 2, "POST", "/api/v1/webhook-endpoints",
                                     {"url": receiver.url(path), "events": ["trade.settled"]}, pair["access_token"])
        assert status == 201, ep
        acked.add("secrets_by_path", {path: ep["secret"]})
        tokens[kind], orgs[kind] = pair["access_token"], org["id"]
    return Parties(operator=operator_token, vendor=tokens["vendor"], buyer=tokens["enterprise"],
                   vendor_org=orgs["vendor"], buyer_org=orgs["enterprise"])


def _redis_or_skip() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"the scale-out proof needs Redis at {REDIS_URL}: {exc}")
    return client


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback http only
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.fixture
def stack(database, tmp_path) -> Iterator[dict[str, Any]]:
    client = _redis_or_skip()
    prefix = f"dfx-proof-{secrets.token_hex(4)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS")}
    env.update({
        "DATABASE_URL": database.url, "REDIS_URL": REDIS_URL, "DATAFAIR_REDIS_PREFIX": prefix,
        "PYTHONPATH": str(ROOT), "DATAFAIR_PASSWORD_HASH": "scrypt:1024:8:1", "DATAFAIR_TRUSTED_PROXIES": "1",
        "DATAFAIR_LOGIN_RATE_LIMIT": "5/hour", "DATAFAIR_WORKERS": "2", "DATAFAIR_DB_POOL_SIZE": "2",
        "DATAFAIR_DB_MAX_OVERFLOW": "2", "DATAFAIR_WEBHOOK_ALLOW_PRIVATE": "1",
        "DATAFAIR_WEBHOOK_RETRY_BASE_SECONDS": "1", "DATAFAIR_WEBHOOK_RETRY_MAX_SECONDS": "2",
        "DATAFAIR_JOB_WEBHOOK_SECONDS": "2", "DATAFAIR_JOB_SWEEP_SECONDS": "5",
    })
    procs: list[subprocess.Popen] = []
    logs: list[Any] = []
    rate_limit_keys: list[str] = []  # patterns of this run's rate-limit counters (deleted afterwards)

    def start(name: str, args: list[str], extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path]:
        path = tmp_path / f"{name}.log"
        log = open(path, "wb")  # noqa: SIM115 - closed below
        logs.append(log)
        # A session of its own: killing the group takes a gunicorn master and its workers at once.
        proc = subprocess.Popen(args, cwd=ROOT, env={**env, **(extra or {})}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        procs.append(proc)
        return proc, path

    try:
        nodes, node_procs = [], []
        for n in range(2):
            port = _free_port()
            proc, log = start(f"node{n}", [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                                           "app:app"], {"DATAFAIR_BIND": f"127.0.0.1:{port}"})
            nodes.append(f"http://127.0.0.1:{port}")
            node_procs.append((proc, log))
        worker, worker_log = start("worker", [sys.executable, "-m", "celery", "-A", "app:celery", "worker",
                                              "--pool=threads", "--concurrency=4", "-Q", "datafair",
                                              "--without-gossip", "--without-mingle", "--loglevel=INFO"])
        beat, beat_log = start("beat", [sys.executable, "-m", "celery", "-A", "app:celery", "beat",
                                        "--schedule", str(tmp_path / "beat-schedule"), "--loglevel=INFO"])
        for base, (proc, log) in zip(nodes, node_procs, strict=True):
            _wait(f"{base}/api/v1/health/ready", proc, log)
        yield {"nodes": nodes, "node_procs": [p for p, _ in node_procs], "worker": worker, "beat": beat,
               "worker_log": worker_log, "beat_log": beat_log,
               "logs": tmp_path, "redis": client, "prefix": prefix, "rate_limit_keys": rate_limit_keys}
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in logs:
            log.close()
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        for pattern in rate_limit_keys:
            keys += list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
        client.close()


def _logs(directory: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(directory.glob("*.log")))


def test_two_nodes_a_worker_and_beat_lose_nothing_acknowledged_when_a_node_dies(api, app, stack):
    started = time.monotonic()
    run = secrets.token_hex(3)
    receiver = HookServer()
    acked = Ledger()
    cluster = Cluster(nodes=stack["nodes"], procs=stack["node_procs"], alive=[True, True])
    try:
        operator = api.operator()
        # The operators' back office subscribes to verifications; it fails at first (retries must serve it).
        receiver.script("/ops", Answer(500), Answer(503), Answer(500))
        status, _, ops = cluster.call(0, "POST", "/api/v1/webhook-endpoints",
                                      {"url": receiver.url("/ops"), "events": ["organization.verified"]},
                                      operator.token)
        assert status == 201, ops
        acked.add("secrets_by_path", {"/ops": ops["secret"]})

        # -- failed-login limits are shared by the two nodes (Redis) ------------------------------
        victim_email = f"victim-{run}@vendor.test"
        addr = f"198.18.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"  # this run's client
        stack["rate_limit_keys"].extend([f"datafair:rl:login:*{victim_email}*", f"datafair:rl:login:*{addr}:*",
                                         f"datafair:rl:login:*other-{run}*", "datafair:rl:login:addr:192.0.2.*"])
        for attempt in range(5):
            status, _, _ = cluster.call(attempt % 2, "POST", "/api/v1/auth/token",
                                        {"email": victim_email, "password": "wrong password 123"},
                                        headers={"X-Forwarded-For": addr})
            assert status == 401
        for node in (0, 1):
            status, headers, body = cluster.call(node, "POST", "/api/v1/auth/token",
                                                 {"email": victim_email, "password": "wrong password 123"},
                                                 headers={"X-Forwarded-For": f"192.0.2.{node + 7}"})
            assert status == 429 and int(headers["Retry-After"]) >= 1, body  # per email, on either node
        # Per client address the bound is 10x the per-email limit (50 here), shared by the nodes:
        # 5 failures so far, 45 more for other emails, then wrong passwords answer 429 on either node.
        for attempt in range(45):
            status, _, _ = cluster.call(attempt % 2, "POST", "/api/v1/auth/token",
                                        {"email": f"other-{run}-{attempt}@x.test", "password": "wrong password 123"},
                                        headers={"X-Forwarded-For": addr})
            assert status == 401, attempt
        for node in (0, 1):
            status, _, _ = cluster.call(node, "POST", "/api/v1/auth/token",
                                        {"email": f"other-{run}@x.test", "password": "wrong password 123"},
                                        headers={"X-Forwarded-For": addr})
            assert status == 429  # per client address, on either node

        # -- the load: whole deals alternating between the nodes; node 1 dies mid-run --------------
        parties = setup_parties(cluster, run, operator.token, receiver, acked)
        done = [0]
        failures: list[str] = []
        counter = iter(range(FLOWS))
        counter_lock = threading.Lock()

        def driver() -> None:
            while True:
                with counter_lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    drive_flow(cluster, i, run, parties, receiver, acked)
                except NodeDown as exc:
                    failures.append(f"flow {i}: node down ({exc})")  # not acknowledged: nothing promised
                with counter_lock:
                    done[0] += 1

        def killer() -> None:
            while done[0] < KILL_AFTER:
                time.sleep(0.02)
            with cluster.lock:
                cluster.alive[1] = False
            os.killpg(stack["node_procs"][1].pid, signal.SIGKILL)

        threads = [threading.Thread(target=driver) for _ in range(DRIVERS)] + [threading.Thread(target=killer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert stack["node_procs"][1].wait(10) == -signal.SIGKILL
        assert len(acked.trades) >= FLOWS - DRIVERS, (failures, _logs(stack["logs"]))

        # -- every acknowledged write exists ------------------------------------------------------
        with app.app_context():
            orgs = dict(db.session.execute(select(Organization.id, Organization.status)
                                           .where(Organization.id.in_(acked.registered))).all())
            trades = {t.id: t for t in db.session.execute(
                select(Trade).where(Trade.buyer_org_id == parties.buyer_org)).scalars()}
            # Every trade of the run is consistent: its escrow holds exactly what its status says.
            for trade in trades.values():
                escrow = balance(db.session, owner_id=trade.id, purpose="trade_escrow", currency="CNY")
                held = trade.paid_amount if trade.status in ("escrowed", "delivered", "disputed") else 0
                assert escrow == held, (trade.id, trade.status, escrow)
            payable = balance(db.session, owner_id=parties.vendor_org, purpose="seller_payable", currency="CNY")
            settled = [t for t in trades.values() if t.status == "settled"]
            assert payable == sum(t.amount - t.fee for t in settled)
        assert set(orgs) == acked.registered
        assert all(orgs[o] == "verified" for o in acked.verified)
        assert all(trades[t].status == "settled" for t in acked.trades)  # every acknowledged acceptance

        # -- every event behind an acknowledged write is delivered, signed -----------------------
        def delivered() -> set[tuple[str, str]]:
            got = set()
            for r in list(receiver.received):
                evt = json.loads(r.body)
                data = evt["data"]
                key = data["organization"]["id"] if evt["type"] == "organization.verified" else data["trade_id"]
                got.add((r.path, key))
            return got

        deadline = time.monotonic() + 30
        while not acked.expected_events <= delivered() and time.monotonic() < deadline:
            time.sleep(0.2)
        missing = acked.expected_events - delivered()
        assert not missing, (sorted(missing)[:5], _logs(stack["logs"]))
        for r in list(receiver.received):
            secret = acked.secrets_by_path.get(r.path)
            assert secret is not None, r.path
            assert signature.verify(secret, r.headers["datafair-signature"], r.body), r.path
            assert r.headers["datafair-event-id"] == json.loads(r.body)["id"]
        ops_attempts = receiver.on("/ops")
        assert len(ops_attempts) >= len(acked.verified) + 3  # three refused attempts, then retried
        with app.app_context():
            retried = db.session.execute(select(WebhookDelivery).where(WebhookDelivery.attempts > 1)).scalars().all()
        assert retried and all(d.status in ("delivered", "pending") for d in retried)

        # -- the ledger is whole ----------------------------------------------------------------------
        env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "PYTHONPATH": str(ROOT)}
        env.pop("REDIS_URL", None)
        verify = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "ledger", "verify", "--quiet"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        entries_seen = int(re.search(r"ledger valid: (\d+) entries", verify.stderr).group(1))
        assert entries_seen >= 2 * len(acked.trades)  # payment and settlement of each acknowledged deal

        # -- the surviving node still serves, and reports the job queue ------------------------------
        with urllib.request.urlopen(stack["nodes"][0] + "/metrics", timeout=5) as r:  # noqa: S310 - loopback
            text = r.read().decode()
        assert "datafair_job_queue_depth" in text and "datafair_ledger_entries" in text
        assert stack["worker"].poll() is None and stack["beat"].poll() is None
        # The deliveries were the Celery worker's (the nodes run no jobs with Redis configured),
        # nudged after each commit and scheduled by beat.
        assert "datafair.deliver_webhooks" in stack["worker_log"].read_text()
        assert "Sending due task deliver_webhooks" in stack["beat_log"].read_text()
        assert time.monotonic() - started < 90
    finally:
        receiver.close()
