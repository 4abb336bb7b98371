"""`make bench`: every benchmark of datafair end to end, each next to a baseline measured in the same run.

    python -m tests.bench.run              # the whole suite at 100k products (about 12 minutes here)
    BENCH_1M=1 python -m tests.bench.run   # and the growth of search and matching up to 1M products
    python -m tests.bench.run --quick      # a smoke run on a few thousand products
    python -m tests.bench.run --only delivery   # just release uploads and downloads (1 GiB; --quick: 64 MiB)
    python -m tests.bench.run --only gateway    # just the API gateway against its upstream called directly
    python -m tests.bench.run --only sandbox    # just sandbox queries against DuckDB on the file (10M rows)
    python -m tests.bench.run --only renewal    # just the subscription renewal sweep (10k due at once)

Data comes from the bulk generator (`python -m tests.bench.generate`: listed products with certificates,
and per ten products one procurement and one trade), into one PostgreSQL database and one SQLite
file created once per run and shared by every benchmark. PostgreSQL grows 10k -> 100k (-> 1M) so the
growth of search and matching latency is measured on the way. Servers are gunicorn with
deploy/gunicorn.conf.py; the load generator is a separate process (tests/bench/loadgen.py), pinned to
the other core. The delivery benchmark has its own SQLite file, one worker and a file of 1 GiB; the
gateway benchmark its own PostgreSQL database, a 20 ms loopback upstream and 2 gthread workers; the
sandbox benchmark its own SQLite file, one worker and a 10-million-row Parquet release; the renewal
benchmark its own PostgreSQL database and 10,000 subscriptions due at once, swept in-process.
Writes tests/bench/results.json, results.md and results.png; `--only` runs a part and merges it into
the results of the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench import (
    bench_delivery,
    bench_gateway,
    bench_http,
    bench_matching,
    bench_renewal,
    bench_report,
    bench_sandbox,
    bench_search,
    bench_trading,
    report,
)
from tests.bench.harness import (
    OUT,
    PIN,
    WORKERS,
    Server,
    grow,
    log,
    make_app,
    pg_database,
    pgbench_init,
    sqlite_database,
    timer,
)

HERE = Path(__file__).parent
# The servers run deploy/gunicorn.conf.py with the harness's environment, which sets no DATAFAIR_THREADS.
GUNICORN_THREADS = 4
PG_NAME, PGBENCH_NAME, SQLITE_NAME = "datafair_bench", "datafair_bench_pgbench", "bench.db"


def _sizes(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {"steps": [1000, 3000], "main": 3000, "repeat": 3, "naive": 1, "rounds": 1, "duration": 1.5,
                "flows": 5, "million": False, "file_mib": 64,
                "sandbox_rows": 1_000_000, "renewals": 1000, "report_contracts": 10_000}
    return {"steps": [10_000, 100_000], "main": 100_000, "repeat": 20, "naive": 3, "rounds": 3, "duration": 4.0,
            "flows": 30, "million": args.million, "file_mib": 1024,
            "sandbox_rows": bench_sandbox.ROWS, "renewals": bench_renewal.COUNT,
            "report_contracts": 1_000_000 if args.million else 100_000}


def delivery(sizes: dict[str, Any]) -> dict[str, Any]:
    with timer(f"delivery, {sizes['file_mib']} MiB file"):
        return bench_delivery.measure(size=sizes["file_mib"] << 20, rounds=max(2, sizes["rounds"]),
                                      range_repeat=max(5, sizes["repeat"]))


def gateway(sizes: dict[str, Any]) -> dict[str, Any]:
    with timer("API gateway, 8 clients"):
        return bench_gateway.measure(rounds=max(2, sizes["rounds"]), duration=max(3.0, sizes["duration"]))


def sandbox(sizes: dict[str, Any]) -> dict[str, Any]:
    with timer(f"sandbox, {sizes['sandbox_rows']:,}-row Parquet"):
        return bench_sandbox.measure(repeat=max(5, sizes["repeat"]), rows=sizes["sandbox_rows"])


def renewal(sizes: dict[str, Any]) -> dict[str, Any]:
    with timer(f"subscription renewal sweep, {sizes['renewals']:,} due"):
        return bench_renewal.measure(count=sizes["renewals"])


def _dispose(app: Any) -> None:
    from exchange.db import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = _sizes(args)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "pinned": PIN, "workers": WORKERS,
                                           "threads": GUNICORN_THREADS, "quick": args.quick},
                               "generate_seconds": {}, "growth": {}}
    started = time.perf_counter()

    # -- PostgreSQL: grow, measuring search and matching at each size ------------------------------
    pg_url = pg_database(PG_NAME, fresh=not args.reuse)
    pg_app = make_app(pg_url)
    from flask_migrate import upgrade

    with pg_app.app_context():
        upgrade()
    for size in sizes["steps"]:
        took = grow(pg_url, pg_app, size)
        if took:
            results["generate_seconds"][f"postgresql {size}"] = took
        if size == sizes["main"]:
            break
        with Server("pg-growth", "app:app", pg_url, "/api/v1/health/live") as api, timer(f"growth at {size:,}"):
            results["growth"][str(size)] = {
                "search": bench_search.measure(api, repeat=max(3, sizes["repeat"] // 2)),
                "matching": bench_matching.measure(api, pg_app, repeat=max(3, sizes["repeat"] // 4)),
            }

    log(f"PostgreSQL, {sizes['main']:,} products")
    pgbench_url = pgbench_init(PGBENCH_NAME)
    with Server("pg", "app:app", pg_url, "/api/v1/health/live") as api, \
            Server("baseline-pg", "tests.bench.baseline_app:app", pg_url, "/json") as bare:
        with timer("health and product vs bare Flask"):
            kw = {"rounds": sizes["rounds"], "concurrency": 4, "duration": sizes["duration"] - 1}
            results["health"] = bench_http.health(api, bare, **kw)
            results["product"] = bench_http.product(api, bare, bench_http.product_ids(pg_app), **kw)
        results["baseline_memory"] = bare.memory()
        with timer("search"):
            results["search_postgresql"] = bench_search.measure(api, repeat=sizes["repeat"])
            results["memory_after_search"] = api.memory()
            results["search_postgresql"]["like_scan"] = bench_search.like_baseline(pg_app, repeat=sizes["naive"])
        with timer("matching"):
            results["matching_postgresql"] = bench_matching.measure(api, pg_app, repeat=sizes["repeat"] // 2)
            results["matching_postgresql"]["naive"] = bench_matching.naive_baseline(pg_app, runs=sizes["naive"])
        with timer("settlement vs pgbench"):
            results["settlement"] = bench_trading.settlement(api, pg_app, pgbench_url, rounds=sizes["rounds"],
                                                             duration=sizes["duration"])
        with timer("trade flow"):
            results["trade_flow"] = bench_trading.trade_flow(api, pg_app, count=sizes["flows"])
    results["growth"][str(sizes["main"])] = {"search": results["search_postgresql"],
                                             "matching": results["matching_postgresql"]}
    pg_database(PGBENCH_NAME, fresh=True)

    # -- SQLite ---------------------------------------------------------------------------------------
    log(f"SQLite, {sizes['main']:,} products")
    sqlite_url = sqlite_database(SQLITE_NAME, fresh=not args.reuse)
    sqlite_app = make_app(sqlite_url)
    with sqlite_app.app_context():
        upgrade()
    took = grow(sqlite_url, sqlite_app, sizes["main"])
    if took:
        results["generate_seconds"][f"sqlite {sizes['main']}"] = took
    with Server("sqlite", "app:app", sqlite_url, "/api/v1/health/live") as api:
        with timer("search"):
            results["search_sqlite"] = bench_search.measure(api, repeat=sizes["repeat"])
            results["search_sqlite"]["like_scan"] = bench_search.like_baseline(sqlite_app, repeat=sizes["naive"])
        with timer("matching"):
            results["matching_sqlite"] = bench_matching.measure(api, sqlite_app, repeat=sizes["repeat"] // 2)
            results["matching_sqlite"]["naive"] = bench_matching.naive_baseline(sqlite_app, runs=sizes["naive"])
    _dispose(sqlite_app)

    log("Delivery (SQLite, file storage)")
    results["delivery"] = delivery(sizes)

    log("API gateway (PostgreSQL, 20 ms upstream)")
    results["gateway"] = gateway(sizes)

    log("Privacy-computing sandbox (SQLite, DuckDB on a Parquet release)")
    results["sandbox"] = sandbox(sizes)

    log("Subscription renewal sweep (PostgreSQL, in-process)")
    results["renewal"] = renewal(sizes)

    log("Regulator trade report (SQLite, spooled and signed)")
    results["report"] = trade_report(sizes)

    # -- 1M products (opt-in: generating 900k more takes longer than the whole budget) ---------------
    if sizes["million"]:
        took = grow(pg_url, pg_app, 1_000_000)
        if took:
            results["generate_seconds"]["postgresql 1000000"] = took
        with Server("pg-1m", "app:app", pg_url, "/api/v1/health/live") as api, timer("growth at 1,000,000"):
            results["growth"]["1000000"] = {
                "search": bench_search.measure(api, repeat=max(3, sizes["repeat"] // 2)),
                "matching": bench_matching.measure(api, pg_app, repeat=max(3, sizes["repeat"] // 4)),
            }
    _dispose(pg_app)
    results["total_seconds"] = time.perf_counter() - started
    return results


def trade_report(sizes: dict[str, Any]) -> dict[str, Any]:
    """The regulator's report at 100,000 contracts (1,000,000 with --million) against one tenth of it:
    peak memory stays flat (spooled, streamed), time per trade against a bare scan of the same query."""
    return bench_report.measure(count=sizes["report_contracts"])


# What `--only` can run on its own (each with its own database and server).
PARTS = {"delivery": delivery, "gateway": gateway, "sandbox": sandbox, "renewal": renewal, "report": trade_report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run on a few thousand products")
    parser.add_argument("--million", action="store_true", default=os.environ.get("BENCH_1M") == "1",
                        help="also grow PostgreSQL to 1M products (BENCH_1M=1)")
    parser.add_argument("--reuse", action="store_true", help="keep the benchmark databases of an earlier run")
    parser.add_argument("--report-only", action="store_true", help="rewrite the table and chart from results.json")
    parser.add_argument("--only", choices=sorted(PARTS), help="run one part and merge it into the last results")
    args = parser.parse_args(argv)
    target = HERE / ("results-quick.json" if args.quick else "results.json")
    if args.report_only:
        results = json.loads(target.read_text())
    else:
        OUT.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{OUT / 'import.db'}")
        if args.only:
            results = json.loads(target.read_text()) if target.exists() else {
                "machine": {"cpus": os.cpu_count(), "pinned": PIN, "workers": WORKERS,
                            "threads": GUNICORN_THREADS, "quick": args.quick}}
            results[args.only] = PARTS[args.only](_sizes(args))
        else:
            results = run(args)
        target.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    rows = report.rows(results)
    print(report.console(rows, results))
    if not args.quick:
        (HERE / "results.md").write_text(report.markdown(rows, results))
        if not args.only:  # the chart draws none of what --only runs
            report.chart(results, HERE / "results.png")
    log(f"wrote {target.name}" + ("" if args.quick else ", results.md" + ("" if args.only else " and results.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
