"""Throughput of the lightest requests next to bare Flask on the same gunicorn settings:
`GET /api/v1/health` against B_json, `GET /api/v1/products/{id}` against B_db.

Each pair runs A B A B ... (`rounds` times, `concurrency` connections, a short warm-up each), and
the ratio is taken pair by pair, so a drift of the machine's speed hits both sides of a ratio alike.
"""

from __future__ import annotations

import random
from typing import Any

from tests.bench.harness import Server, latency, load, spread


def product_ids(app: Any, count: int = 2000) -> list[str]:
    from sqlalchemy import select

    from exchange.db import db
    from listings.models import Product

    with app.app_context():
        ids = db.session.execute(select(Product.id).where(Product.status == "listed")).scalars().all()
        db.session.remove()
    return random.Random(8).sample(list(ids), min(count, len(ids)))


def compare(figure: tuple[Server, list[dict[str, Any]]], baseline: tuple[Server, list[dict[str, Any]]], *,
            rounds: int, concurrency: int, duration: float) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"figure": [], "baseline": []}
    for _ in range(rounds):
        for side, (server, requests) in (("figure", figure), ("baseline", baseline)):
            result = load(server, requests, concurrency=concurrency, duration=duration, warmup=0.5)
            if result["bad"]:
                raise RuntimeError(f"{server.name} answered errors: {result['bad']}")
            runs[side].append(result)
    ratios = [f["rps"] / b["rps"] for f, b in zip(runs["figure"], runs["baseline"], strict=True)]
    return {
        "figure_rps": spread([r["rps"] for r in runs["figure"]]),
        "baseline_rps": spread([r["rps"] for r in runs["baseline"]]),
        "ratio": spread(ratios),
        "figure_latency": latency([ms for r in runs["figure"] for ms in r["lat_ms"]]),
        "baseline_latency": latency([ms for r in runs["baseline"] for ms in r["lat_ms"]]),
    }


def health(api: Server, bare: Server, **kw: Any) -> dict[str, Any]:
    return compare((api, [{"method": "GET", "path": "/api/v1/health"}]),
                   (bare, [{"method": "GET", "path": "/json"}]), **kw)


def product(api: Server, bare: Server, ids: list[str], **kw: Any) -> dict[str, Any]:
    return compare((api, [{"method": "GET", "path": f"/api/v1/products/{i}"} for i in ids]),
                   (bare, [{"method": "GET", "path": f"/products/{i}"} for i in ids]), **kw)
