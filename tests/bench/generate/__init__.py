"""Benchmark data: `python -m tests.bench.generate --products N [--seed S] [--batch B]`.

Test tooling, not part of the product (STYLE.md: generators live under tests/bench/). Three steps,
each in its own module: N synthetic bilingual listed products (`listings`), a signed certificate for
every listed product without one (`certification`), then per ten generated products one open
procurement and one delivered trade, every fifth settled (`trading`). Products, certificates and
trades go in as bulk rows for speed; their ledger entries go through the ledger engine's only
writer (`exchange.ledger.engine.post_entries`). Refuses to run in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.bench.generate.listings import GenerationError

__all__ = ["GenerationError", "run"]


def run(app: Any, *, products: int, seed: int = 1, batch: int = 5000,
        echo: Callable[[str], None] = print) -> list[str]:
    """Generate `products` products and everything that follows from them on `app`'s database.

    Progress and a summary line per step go to `echo`; returns the summary lines. Raises
    GenerationError in production or when this seed was generated before.
    """
    from exchange.db import db
    from tests.bench.generate import certification, listings, trading

    if app.config["DATAFAIR_ENV"] == "production":
        raise GenerationError("generate refuses to run in production")
    summaries: list[str] = []

    def summary(line: str) -> None:
        summaries.append(line)
        echo(line)

    with app.app_context():
        engine = db.engine
        started = time.perf_counter()

        def progress(what: str, t0: float) -> Callable[[int, int], None]:
            def report(done: int, total: int) -> None:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                echo(f"  {done:>9,}/{total:,} {what}  ({rate:,.0f}/s)")
            return report

        made = listings.generate_products(engine, count=products, seed=seed, batch=batch,
                                          progress=progress("products", started))
        summary(f"generated {made.products:,} listed products for {made.vendors} vendors "
                f"(seed {seed}) in {time.perf_counter() - started:.1f} s")
        step = time.perf_counter()
        done = certification.certify_generated(engine, progress=progress("certificates", step))
        summary(f"certified {done:,} products in {time.perf_counter() - step:.1f} s")
        step = time.perf_counter()
        users = trading.ensure_users(engine)
        procs = trading.generate_procurements(engine, progress=progress("procurements", step))
        trades = trading.generate_trades(engine, progress=progress("trades", time.perf_counter()))
        summary(f"generated {procs:,} procurements and {trades:,} trades ({users} users added) "
                f"in {time.perf_counter() - step:.1f} s")
    return summaries
