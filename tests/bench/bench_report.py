"""The regulator's trade report (GET /api/v1/reports/trades) at 10k and at 1M trades, on one SQLite
file: its peak memory must not grow with the number of trades (the body is spooled, the rows
streamed), and its time per trade is compared with the bare scan of the same query in the same run.

Set-up: a fresh SQLite file (migrations); through the API in-process one cross-border deal (a GD
vendor, a Hong Kong buyer, personal information, a white-list entry: the contract has a dossier)
signed by both; then its offer, contract, trade and dossier copied in bulk
(`tests.bench.report_data.clone_deals`: INSERT ... SELECT in batches of 100k) until `count` contracts
are signed one second apart, every tenth with a second period's trade.

Timed, in-process (the route only copies the spool file to the socket in 64 KiB chunks): the service
`trading.reports.trade_report` for the window holding the first `small` contracts and for the window
holding all of them, in JSON and CSV, the body read to the end as the route sends it. Memory: the
peak of Python allocations during the JSON report (tracemalloc, reset before each window; a second
run, as tracing slows it) and the process's peak RSS before and after (ru_maxrss, which only grows).

Baseline, same run, same windows: the bare scan of the report's SELECT (the same joins, streamed, each
row fetched and dropped); ratio = report seconds / scan seconds (what shaping, writing, hashing and
signing cost per trade over fetching it). The memory ratio is peak(all) / peak(small): near 1.

    python -m tests.bench.bench_report                 # 1,000,000 trades
    python -m tests.bench.bench_report --count 100000  # a shorter run

On the 2-core development machine the 100k run takes 3 minutes (seeding 9 s); the 1M run about 30
minutes (seeding 114 s, a 3.8 GB file; the tracemalloc pass is the slowest), with the process RSS flat
at 234 MiB throughout (docs/performance.md has the figures).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests.bench.harness import OUT, log, seeding_app, sqlite_database
from tests.bench.report_data import clone_deals

COUNT = 1_000_000
SMALL = 10_000
BATCH = 100_000
NAME = "report.db"


def _z(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def seed(app: Any, api: Any, count: int) -> dict[str, Any]:
    """One cross-border deal through the API, copied `count` times one second apart."""
    from exchange.db import db
    from tests.tradeflow import contract_for, sign

    vendor, hk = api.vendor(), api.enterprise(region="HK")
    r = api.post("whitelist", api.operator(), json={
        "category": "transport", "from_region": "GD", "to_region": "HK", "max_classification": "general",
        "personal_info_allowed": True, "expires_at": _z(datetime.now(UTC) + timedelta(days=90))})
    assert r.status_code == 201, r.get_json()
    contract = contract_for(api, vendor, hk, contains_personal_info=True)
    sign(api, hk, contract["id"])
    contract = sign(api, vendor, contract["id"])
    base = _parse(contract["signed_at"]) + timedelta(days=1)
    started = time.perf_counter()
    with app.app_context():
        for offset in range(0, count, BATCH):
            with db.engine.begin() as conn:
                clone_deals(conn, contract["id"], min(BATCH, count - offset), base=base, offset=offset,
                            second_period_every=10)
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            trades = conn.execute(text("SELECT count(*) FROM trades")).scalar_one()
        db.engine.dispose()
    return {"base": base, "operator": api.operator(), "seed_seconds": time.perf_counter() - started,
            "trades": trades}


def _principal(actor: Any) -> Any:
    from exchange.principal import Principal

    return Principal(user_id=actor.user_id, org_id=actor.org_id, org_type="operator", org_status="verified",
                     role="admin")


def _report(app: Any, principal: Any, start: datetime, end: datetime, fmt: str) -> dict[str, Any]:
    from exchange.db import db
    from trading import reports

    with app.app_context():
        began = time.perf_counter()
        made = reports.trade_report(db.session, start=start, end=end, fmt=fmt, actor=principal)
        sent = sum(len(chunk) for chunk in reports.chunks(made.body))
        seconds = time.perf_counter() - began
        db.session.rollback()
        db.session.remove()
    assert sent == made.length
    return {"seconds": seconds, "count": made.count, "bytes": made.length}


def _scan(app: Any, start: datetime, end: datetime) -> dict[str, Any]:
    from exchange.db import db
    from trading import reports

    with app.app_context():
        began = time.perf_counter()
        n = 0
        for _row in reports._rows(db.session, start, end):
            n += 1
        seconds = time.perf_counter() - began
        db.session.rollback()
        db.session.remove()
    return {"seconds": seconds, "count": n}


def _peak(app: Any, principal: Any, start: datetime, end: datetime) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        _report(app, principal, start, end, "json")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _maxrss_bytes() -> int:
    # Linux: kibibytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(*, count: int = COUNT, small: int = SMALL) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    url = sqlite_database(NAME, fresh=True)
    storage = "file://" + str(OUT / "report-storage")
    out: dict[str, Any] = {"engine": "sqlite", "trades_contracts": count}
    with seeding_app(url, storage) as (app, api):
        seeded = seed(app, api, count)
        log(f"  seeded {count:,} contracts ({seeded['trades']:,} trades) in {seeded['seed_seconds']:.1f} s")
        principal, base = _principal(seeded["operator"]), seeded["base"]
        windows = {"small": (base, base + timedelta(seconds=small + 1)),
                   "all": (base, base + timedelta(seconds=count + 1))}
        for name, (start, end) in windows.items():
            rss_before = _maxrss_bytes()
            scan = _scan(app, start, end)
            as_json = _report(app, principal, start, end, "json")
            as_csv = _report(app, principal, start, end, "csv")
            rss_after = _maxrss_bytes()
            peak = _peak(app, principal, start, end)
            assert scan["count"] == as_json["count"] == as_csv["count"]
            out[name] = {
                "trades": as_json["count"],
                "json": {**as_json, "us_per_trade": as_json["seconds"] / as_json["count"] * 1e6},
                "csv": {**as_csv, "us_per_trade": as_csv["seconds"] / as_csv["count"] * 1e6},
                "scan": {**scan, "us_per_trade": scan["seconds"] / scan["count"] * 1e6},
                "ratio_json_to_scan": as_json["seconds"] / scan["seconds"],
                "ratio_csv_to_scan": as_csv["seconds"] / scan["seconds"],
                "tracemalloc_peak_bytes": peak,
                "maxrss_bytes_before": rss_before, "maxrss_bytes_after": rss_after,
            }
            log(f"  {name}: {as_json['count']:,} trades; json {as_json['seconds']:.1f} s "
                f"({out[name]['json']['us_per_trade']:.1f} us/trade, {as_json['bytes'] / 2**20:.0f} MiB), "
                f"csv {as_csv['seconds']:.1f} s ({out[name]['csv']['us_per_trade']:.1f} us/trade), "
                f"scan {scan['seconds']:.1f} s; peak Python memory {peak / 2**20:.2f} MiB, "
                f"max RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB")
    out["memory_ratio"] = out["all"]["tracemalloc_peak_bytes"] / out["small"]["tracemalloc_peak_bytes"]
    out["seed_seconds"] = seeded["seed_seconds"]
    log(f"  peak memory ratio all/small: {out['memory_ratio']:.2f} (constant memory: near 1)")
    if out["memory_ratio"] > 2:
        raise RuntimeError(f"the report's peak memory grew {out['memory_ratio']:.1f}x with the number of trades")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT, help="contracts signed (default 1,000,000)")
    parser.add_argument("--small", type=int, default=SMALL, help="contracts in the small window (default 10,000)")
    args = parser.parse_args(argv)
    result = measure(count=args.count, small=args.small)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
