"""Matching: p50/p95 of `GET /procurements/{id}/matches` through gunicorn, one client, next to a
naive matcher that scores every listed product in Python with the same `trading.matching.score`.

Twenty generated procurements (one per generated buyer, each with its own token) are matched
`repeat` times each after a warm-up pass. The naive matcher loads every listed product with its
listed revision and ranks them all (it skips the certificate and cross-border checks the API makes,
so it is, if anything, cheaper than a real full scan).
"""

from __future__ import annotations

import time
from typing import Any

from tests.bench.harness import Server, latency, load, tokens

PROCUREMENTS = 20


def procurements(app: Any) -> list[tuple[str, str]]:
    """(procurement id, buyer user id) of the first generated procurements."""
    from sqlalchemy import select

    from exchange.db import db
    from tests.bench.generate.trading import PROCUREMENT_PREFIX, user_id_of
    from trading.models import Procurement

    with app.app_context():
        rows = db.session.execute(
            select(Procurement.id, Procurement.buyer_org_id).where(Procurement.id.startswith(PROCUREMENT_PREFIX))
            .order_by(Procurement.id).limit(PROCUREMENTS)).all()
        db.session.remove()
    return [(pid, user_id_of(buyer)) for pid, buyer in rows]


def measure(server: Server, app: Any, *, repeat: int) -> dict[str, Any]:
    procs = procurements(app)
    minted = tokens(app, sorted({u for _, u in procs}))
    requests = [{"method": "GET", "path": f"/api/v1/procurements/{pid}/matches?limit=10",
                 "headers": {"Authorization": f"Bearer {minted[user]}"}} for pid, user in procs]
    load(server, requests, concurrency=1, duration=120, mode="queue")
    result = load(server, requests * repeat, concurrency=1, duration=600, mode="queue")
    if result["bad"]:
        raise RuntimeError(f"matching answered errors: {result['bad']}")
    return latency(result["lat_ms"])


def naive_matches(session: Any, proc: Any, limit: int = 10) -> list[Any]:
    """Score every listed product (its listed revision) against the procurement; the best `limit`."""
    from sqlalchemy import select

    from listings.models import Product, ProductVersion
    from trading import matching

    rows = session.execute(
        select(Product.id, Product.price_amount, Product.price_currency, Product.price_model,
               ProductVersion.category, ProductVersion.keywords, ProductVersion.title,
               ProductVersion.delivery_mode, ProductVersion.update_frequency)
        .join(ProductVersion, (ProductVersion.product_id == Product.id)
              & (ProductVersion.version == Product.listed_version))
        .where(Product.status == "listed")
    ).all()
    supplies = (matching.Supply(product_id=r.id, category=r.category, keywords=tuple(r.keywords or ()),
                                title=r.title, price_amount=r.price_amount, price_currency=r.price_currency,
                                price_model=r.price_model, delivery_mode=r.delivery_mode,
                                update_frequency=r.update_frequency) for r in rows)
    return matching.rank(matching.demand_of(proc), supplies, limit)


def naive_baseline(app: Any, *, runs: int) -> dict[str, float]:
    from exchange.db import db
    from trading.models import Procurement

    samples = []
    with app.app_context():
        for pid, _user in procurements(app)[:runs]:
            proc = db.session.get(Procurement, pid)
            started = time.perf_counter()
            naive_matches(db.session, proc)
            samples.append((time.perf_counter() - started) * 1000)
            db.session.rollback()
        db.session.remove()
    return latency(samples)
