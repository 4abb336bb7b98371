"""A gunicorn worker killed with SIGKILL in the middle of a burst of settlements (PostgreSQL): the killed
worker's transaction dies with its connection, the master starts a new worker, and afterwards the
ledger verifies and every trade agrees with it (settled with its settlement entry, or still delivered
without one); the settlements cut short succeed when retried."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from exchange.ledger.engine import CHAIN_LOCK_KEY
from tests.api.test_ratelimit import gunicorns
from tests.certflow import certify
from tests.consistency import assert_consistent
from tests.tradeflow import bid, sign

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"])]
TRADES = 24
SHA = "f" * 64


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _waiting_on_the_ledger(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar_one()


def _post(base: str, path: str, token: str, body: dict | None = None) -> int:
    req = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{base}/api/v1/{path}", method="POST", data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError, OSError):
        return 0  # cut off with the worker


def _delivered_trades(api, vendor, buyer, op) -> list[str]:
    product = certify(api, vendor)
    trades = []
    for _ in range(TRADES):
        contract = api.post(f"offers/{bid(api, buyer, product)['id']}/accept", vendor).get_json()
        sign(api, buyer, contract["id"])
        trade_id = sign(api, vendor, contract["id"])["trade_id"]
        payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
        assert api.post(f"payments/{payment['id']}/confirm", op).status_code == 200
        delivered = api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "r", "sha256": SHA})
        assert delivered.status_code == 200
        trades.append(trade_id)
    return trades


def test_sigkill_of_a_worker_mid_burst_leaves_the_ledger_and_trades_consistent(api, app, database, tmp_path):
    vendor, buyer, op = api.vendor(), api.enterprise(), api.operator()
    trades = _delivered_trades(api, vendor, buyer, op)
    # Half the trades are disputed and resolved by an operator (a refund and a settlement per step).
    disputed = trades[::2]
    for trade_id in disputed:
        assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "partial"}).status_code == 201
    # Sync workers (DATAFAIR_THREADS=1): one request in flight per worker, so the kill cuts exactly one
    # (a gthread worker's kill cuts each of its threads' requests alike; the transactions die the same way).
    with gunicorns(database.url, tmp_path, count=1, DATAFAIR_WORKERS="2", DATAFAIR_THREADS="1") as (base,):
        master = next(p for p in _children(os.getpid()) if b"gunicorn" in Path(f"/proc/{p}/cmdline").read_bytes())
        deadline = time.monotonic() + 30
        while len(_children(master)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(master)
        assert len(workers) == 2, workers

        def settle(trade_id: str) -> int:
            if trade_id in disputed:
                return _post(base, f"trades/{trade_id}/resolution", op.token, {"refund_amount": 100_000})
            return _post(base, f"trades/{trade_id}/acceptance", buyer.token)

        # Hold the ledger's chain lock: every settlement then waits inside its transaction (trade row
        # locked, state changed, entry not yet written), so the kill lands mid-transaction for sure.
        engine = create_engine(database.url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as holder, ThreadPoolExecutor(max_workers=6) as pool:
            holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": CHAIN_LOCK_KEY})
            futures = [pool.submit(settle, t) for t in trades]
            deadline = time.monotonic() + 30
            while _waiting_on_the_ledger(holder) < 2:  # both workers are inside a settlement
                assert time.monotonic() < deadline, "the workers never reached the ledger"
                time.sleep(0.05)
            os.kill(workers[0], signal.SIGKILL)
            time.sleep(0.5)
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CHAIN_LOCK_KEY})
            holder.commit()
            statuses = [f.result() for f in futures]
        engine.dispose()
        deadline = time.monotonic() + 30
        while len(_children(master)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_children(master)) == 2, "the master did not replace the killed worker"
        assert all(s in (200, 0, 409, 500, 502, 503) for s in statuses), statuses
        # The killed worker's request was cut off (0), and its transaction died with its connection.
        assert statuses.count(0) == 1, statuses
        cut = trades[statuses.index(0)]
        assert api.get(f"trades/{cut}", buyer).get_json()["status"] in ("delivered", "disputed")
        assert_consistent(app)
        # Whatever was cut short is retried (a finished step answers 409: already settled).
        for trade_id, status in zip(trades, statuses, strict=True):
            if status != 200:
                retried = settle(trade_id)
                assert retried in (200, 409), (trade_id, status, retried)
    for trade_id in trades:
        assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "settled"
    assert_consistent(app)
