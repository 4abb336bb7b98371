"""Settlement throughput next to pgbench, and the latency of each step of a full trade flow.

Settlement is the acceptance step (`POST /trades/{id}/acceptance` by the buyer) on generated,
already delivered trades: each request settles one trade in one transaction (state change, the
settlement entry in the hash-chained ledger, three account balances). At 1, 4 and 8 clients it runs
interleaved with `pgbench -b tpcb-like` at the same client count against a scratch database, and
the ratio is taken pair by pair.

The trade flow runs whole trades one after another (offer, accept, two signatures, payment,
operator confirmation, delivery, acceptance) as a buyer, a vendor and an operator would.
"""

from __future__ import annotations

from typing import Any

from tests.bench.harness import Server, latency, load, pgbench, spread, tokens

CLIENTS = (1, 4, 8)


def delivered_trades(app: Any) -> list[tuple[str, str]]:
    """(trade id, buyer user id) of generated trades awaiting acceptance."""
    from sqlalchemy import select

    from exchange.db import db
    from tests.bench.generate.trading import TRADE_PREFIX, user_id_of
    from trading.models import Trade

    with app.app_context():
        rows = db.session.execute(
            select(Trade.id, Trade.buyer_org_id).where(Trade.id.startswith(TRADE_PREFIX), Trade.status == "delivered")
            .order_by(Trade.id)).all()
        db.session.remove()
    return [(tid, user_id_of(buyer)) for tid, buyer in rows]


def settlement(server: Server, app: Any, pgbench_url: str, *, rounds: int, duration: float) -> dict[str, Any]:
    trades = delivered_trades(app)
    minted = tokens(app, sorted({u for _, u in trades}))
    share = len(trades) // (rounds * len(CLIENTS))
    if share < 50:
        raise RuntimeError(f"only {len(trades)} delivered trades: generate more products")
    out: dict[str, Any] = {"trades_per_run": share}
    k = 0
    runs: dict[int, dict[str, list[float]]] = {c: {"tps": [], "pgbench": [], "p95": []} for c in CLIENTS}
    for _ in range(rounds):
        for clients in CLIENTS:
            runs[clients]["pgbench"].append(pgbench(pgbench_url, clients, duration))
            batch = trades[k * share:(k + 1) * share]
            k += 1
            requests = [{"method": "POST", "path": f"/api/v1/trades/{tid}/acceptance",
                         "headers": {"Authorization": f"Bearer {minted[user]}"}} for tid, user in batch]
            result = load(server, requests, concurrency=clients, duration=duration, mode="queue")
            if result["bad"]:
                raise RuntimeError(f"acceptance answered errors: {result['bad']}")
            runs[clients]["tps"].append(result["rps"])
            runs[clients]["p95"].append(latency(result["lat_ms"])["p95"])
    for clients, r in runs.items():
        out[str(clients)] = {"tps": spread(r["tps"]), "pgbench_tps": spread(r["pgbench"]),
                             "ratio": spread([a / b for a, b in zip(r["tps"], r["pgbench"], strict=True)]),
                             "p95_ms": spread(r["p95"])}
    return out


def flow_parties(app: Any) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Tokens of a generated buyer, a generated vendor of the same region and an operator; the
    vendor's listed products to trade."""
    from sqlalchemy import select

    from exchange.db import db
    from exchange.identity import services as identity
    from exchange.identity.models import User
    from listings.models import Product
    from tests.bench.generate.trading import buyer_id, user_id_of

    email = "operator@bench.datafair"
    with app.app_context():
        operator = db.session.execute(select(User.id).where(User.email == email)).scalar()
        if operator is None:
            identity.create_operator(db.session, org_name="Bench Exchange Operator", email=email,
                                     password="bench-operator-password", name="Bench Operator")
            db.session.commit()
            operator = db.session.execute(select(User.id).where(User.email == email)).scalar_one()
        buyer = buyer_id(0)  # a GD enterprise
        vendor = db.session.execute(
            select(Product.owner_org_id).where(Product.id.startswith("prd_gen"), Product.origin_region == "GD")
            .order_by(Product.id).limit(1)).scalar_one()
        products = [{"id": p.id, "amount": p.price_amount, "currency": p.price_currency,
                     "delivery_mode": p.delivery_mode}
                    for p in db.session.execute(select(Product).where(Product.owner_org_id == vendor,
                                                                      Product.status == "listed")
                                                .order_by(Product.id).limit(40)).scalars()]
        db.session.remove()
    minted = tokens(app, [user_id_of(buyer), user_id_of(vendor), operator])
    return ({"buyer": minted[user_id_of(buyer)], "seller": minted[user_id_of(vendor)], "operator": minted[operator]},
            products)


def trade_flow(server: Server, app: Any, *, count: int) -> dict[str, Any]:
    from tests.bench.harness import flows

    roles, products = flow_parties(app)
    flows(server, roles, products[:2])  # warm-up
    result = flows(server, roles, products[2:2 + count])
    if result["failures"]:
        raise RuntimeError(f"trade flow failed: {result['failures']}")
    return {"flows": result["flows"], "steps": {step: latency(ms) for step, ms in result["steps"].items()}}
