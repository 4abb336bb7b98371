"""Catalog search: p50/p95 of a fixed query mix through gunicorn, one client, next to a LIKE scan.

The mix holds Chinese, English, mixed and filter-only catalog queries (the whole HTTP stack:
parsing, search, count, 20 rendered items). The baseline answers the same text queries with
`LIKE '%term%'` over title, summary and description of every listed product (each term required),
counting and fetching one page: what the catalog would cost without its full-text index. It runs in
the benchmark's own process on the same database.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from tests.bench.harness import Server, latency, load

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
]
# Not in the mix: a word found in most generated products, the worst case for ranking.
BROAD = {"q": "数据"}


def _path(params: dict[str, Any]) -> str:
    return "/api/v1/products?" + urlencode({**params, "per_page": 20})


def measure(server: Server, *, repeat: int) -> dict[str, Any]:
    """The mix through the API, `repeat` times each (after one warm-up pass), one client."""
    requests = [{"method": "GET", "path": _path(p)} for _, p in MIX] + [{"method": "GET", "path": _path(BROAD)}]
    load(server, requests * 2, concurrency=1, duration=120, mode="queue")
    result = load(server, requests * repeat, concurrency=1, duration=600, mode="queue")
    if result["bad"]:
        raise RuntimeError(f"search answered errors: {result['bad']}")
    by_kind: dict[str, list[float]] = defaultdict(list)
    for index, ms in zip(result["index"], result["lat_ms"], strict=True):
        k = index % len(requests)
        kind = MIX[k][0] if k < len(MIX) else "broad"
        by_kind[kind].append(ms)
        if kind != "broad":
            by_kind["all"].append(ms)
    return {kind: latency(samples) for kind, samples in by_kind.items()}


def like_scan(session: Any, params: dict[str, Any]) -> None:
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


def like_baseline(app: Any, *, repeat: int) -> dict[str, float]:
    """p50/p95 of the LIKE scan over the text queries of the mix."""
    from exchange.db import db

    samples = []
    with app.app_context():
        for kind, params in MIX:
            if kind == "filter":
                continue
            for _ in range(repeat):
                started = time.perf_counter()
                like_scan(db.session, params)
                samples.append((time.perf_counter() - started) * 1000)
                db.session.rollback()
        db.session.remove()
    return latency(samples)
