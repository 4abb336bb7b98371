"""Catalog search benchmark: p50/p95 over N generated products on SQLite and PostgreSQL, against a
plain SQL baseline that scans with LIKE.

    python -m tests.bench.bench_search                      # both databases, 100k products
    python -m tests.bench.bench_search --db sqlite --products 20000 --reuse

A single client runs a fixed mix of Chinese, English, mixed and filter-only catalog queries through
the whole HTTP stack (Flask test client: parsing, auth, search, count, rendering 20 items), after a
warm-up. The baseline answers the same text queries with `LIKE '%term%'` over title, summary and
description (every term required), counting and fetching one page: what the catalog would cost
without its full-text index. Results are printed as a Markdown table and written to
tests/bench/out/search-<db>.json. PostgreSQL uses `TEST_POSTGRES_URL` (a database of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

OUT = Path(__file__).parent / "out"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_PG_DB = "datafair_bench_search"

# (kind, query parameters)
MIX: list[tuple[str, dict[str, Any]]] = [
    ("chinese", {"q": "交通"}),
    ("chinese", {"q": "电力负荷"}),
    ("chinese", {"q": "跨境支付"}),
    ("chinese", {"q": "信贷风险"}),
    ("chinese", {"q": "深圳港口吞吐量"}),
    ("chinese", {"q": "珠海充电桩"}),
    ("english", {"q": "traffic flow"}),
    ("english", {"q": "credit risk"}),
    ("english", {"q": "solar generation"}),
    ("english", {"q": "Macao visitor arrivals"}),
    ("mixed", {"q": "广州 traffic"}),
    ("mixed", {"q": "香港 credit"}),
    ("mixed", {"q": "交通", "category": "transport", "origin_region": "GD"}),
    ("filter", {}),
    ("filter", {"category": "energy"}),
    ("filter", {"origin_region": "HK", "price_model": "subscription"}),
    ("filter", {"min_amount": 1_000_000, "max_amount": 2_000_000, "sort": "price_asc"}),
    ("filter", {"currency": "MOP", "sort": "price_desc"}),
    ("filter", {"delivery_mode": "privacy_computing", "classification": "important", "page": 3}),
    # Not in "all": a word found in most generated products, the worst case for ranking.
    ("broad", {"q": "数据"}),
]


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _app(url: str) -> Any:
    os.environ.setdefault("DATAFAIR_SECRET_KEY", "bench-secret-" + "x" * 40)
    os.environ.setdefault("DATABASE_URL", url)
    from app import create_app

    return create_app({"DATABASE_URL": url, "DATAFAIR_ENV": "testing", "REDIS_URL": None,
                       "LOGIN_RATE_LIMIT": "1000000/minute", "WRITE_RATE_LIMIT": "1000000/minute"})


def _database_url(kind: str, pg_base: str, fresh: bool) -> str:
    if kind == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "bench-search.db"
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(pg_base.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": BENCH_PG_DB}).first()
        if fresh and exists:
            conn.execute(text(f'DROP DATABASE "{BENCH_PG_DB}" WITH (FORCE)'))
        if fresh or not exists:
            conn.execute(text(f'CREATE DATABASE "{BENCH_PG_DB}"'))
    admin.dispose()
    return base.set(database=BENCH_PG_DB).render_as_string(hide_password=False)


def prepare(kind: str, products: int, seed: int, reuse: bool, pg_base: str) -> tuple[Any, float | None]:
    """An app on a migrated database holding at least `products` listed products."""
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from exchange.db import db
    from listings.generate import generate_products
    from listings.models import Product

    url = _database_url(kind, pg_base, fresh=not reuse)
    app = _app(url)
    with app.app_context():
        upgrade()
        have = db.session.execute(select(func.count()).select_from(Product)).scalar_one()
        db.session.rollback()
        took = None
        if have < products:
            started = time.perf_counter()
            print(f"[{kind}] generating {products - have:,} products ...", flush=True)
            generate_products(db.engine, count=products - have, seed=seed + have,
                              progress=lambda d, t: print(f"  {d:,}/{t:,}", flush=True) if d % 20_000 == 0 else None)
            took = time.perf_counter() - started
            print(f"[{kind}] generated in {took:.1f} s", flush=True)
        if kind == "sqlite":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.exec_driver_sql("INSERT INTO product_fts(product_fts) VALUES ('optimize')")
        db.session.remove()
    return app, took


def _like_baseline(session: Any, params: dict[str, Any]) -> None:
    """The same text query without the index: every term with LIKE over the listed version's text."""
    from sqlalchemy import and_, func, or_, select

    from listings.models import Product, ProductVersion

    stmt = select(Product.id).join(ProductVersion, and_(ProductVersion.product_id == Product.id,
                                                        ProductVersion.version == Product.listed_version))
    stmt = stmt.where(Product.status == "listed")
    for term in params["q"].split():
        needle = f"%{term.lower()}%"
        stmt = stmt.where(or_(*(func.lower(c).like(needle) for c in
                                (ProductVersion.title, ProductVersion.summary, ProductVersion.description))))
    for name in ("category", "origin_region"):
        if name in params:
            stmt = stmt.where(getattr(Product, name) == params[name])
    session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    session.execute(stmt.order_by(Product.listed_at.desc(), Product.id.desc()).limit(20)).all()


def run(kind: str, app: Any, repeat: int, baseline_repeat: int) -> dict[str, Any]:
    from exchange.db import db

    client = app.test_client()
    samples: dict[str, list[float]] = {}
    totals: dict[str, int] = {}
    for kind_, params in MIX:
        url = "/api/v1/products?" + urlencode({**params, "per_page": 20})
        for _ in range(2):  # warm-up: caches, jieba, query plans
            r = client.get(url)
            assert r.status_code == 200, (url, r.get_json())
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            r = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        totals[url] = r.get_json()["total"]
        samples.setdefault(kind_, []).extend(times)
        if kind_ != "broad":
            samples.setdefault("all", []).extend(times)
    like: list[float] = []
    fts_sql: list[float] = []
    from listings import catalog

    with app.app_context():
        for kind_, params in MIX:
            if kind_ in ("filter", "broad"):
                continue
            for _ in range(baseline_repeat):
                started = time.perf_counter()
                _like_baseline(db.session, params)
                like.append((time.perf_counter() - started) * 1000)
                db.session.rollback()
                started = time.perf_counter()
                catalog.search_catalog(db.session, principal=None, **params)
                fts_sql.append((time.perf_counter() - started) * 1000)
                db.session.rollback()
    summary = {k: {"p50": percentile(v, 50), "p95": percentile(v, 95), "n": len(v)} for k, v in samples.items()}
    summary["text_queries_service"] = {"p50": percentile(fts_sql, 50), "p95": percentile(fts_sql, 95),
                                       "n": len(fts_sql)}
    summary["text_queries_like_scan"] = {"p50": percentile(like, 50), "p95": percentile(like, 95), "n": len(like)}
    return {"database": kind, "summary": summary, "totals": totals}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each query of the mix")
    parser.add_argument("--baseline-repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep an existing benchmark database")
    parser.add_argument("--pg-url", default=os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = []
    for kind in kinds:
        app, took = prepare(kind, args.products, args.seed, args.reuse, args.pg_url)
        result = run(kind, app, args.repeat, args.baseline_repeat)
        result["products"], result["generate_seconds"] = args.products, took
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"search-{kind}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
        results.append(result)
        with app.app_context():
            from exchange.db import db

            db.engine.dispose()
    print()
    print(f"Catalog search over {args.products:,} listed products, single client, ms "
          f"(API: whole HTTP stack, {args.repeat} runs per query):")
    print()
    print("| database | query kind | p50 | p95 |")
    print("|---|---|---:|---:|")
    for result in results:
        s = result["summary"]
        for key in ("chinese", "english", "mixed", "filter", "all", "broad", "text_queries_service",
                    "text_queries_like_scan"):
            label = {"text_queries_service": "text, service only (index)",
                     "text_queries_like_scan": "text, LIKE-scan baseline",
                     "broad": "API broad (q=数据, most products)"}.get(key, f"API {key}")
            print(f"| {result['database']} | {label} | {s[key]['p50']:.1f} | {s[key]['p95']:.1f} |")
        ratio = s["text_queries_like_scan"]["p50"] / max(s["text_queries_service"]["p50"], 1e-9)
        print(f"| {result['database']} | LIKE / index (p50) | {ratio:.0f}x | |")
        if result["generate_seconds"]:
            print(f"| {result['database']} | generate {args.products:,} | {result['generate_seconds']:.0f} s | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
