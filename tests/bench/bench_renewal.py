"""The subscription renewal sweep over 10,000 subscriptions due at once, on PostgreSQL, next to the
same number of plain single-row INSERTs of a trade-sized row, one transaction each, in the same run.

Set-up: a fresh PostgreSQL database (migrations); through the API in-process one subscription
product certified and sold for 3 monthly periods, period 1 paid; then its offer, contract, period-1
trade and `subscriptions` row copied in bulk (INSERT ... SELECT over generate_series, new ids and
contract numbers) until `count` subscriptions are active, unit month, 3 periods, latest_period 1,
all with the same `renews_at`. The domain clock (`NOW_OFFSET_S`) is moved to that `renews_at`.

Timed: the registered `trading.subscription_renewal` sweep (exchange.jobs.scheduler: at most its
`batch` per run, one transaction per item, each renewal re-checking the certificate, both
organizations and the border, then the period-2 trade and its outbox event), run again and again
until none is due. Counted with a `before_cursor_execute` listener: SQL statements per renewal, and
the largest number of period-2 trades inserted in one transaction (1: no transaction outlives an item).

Baseline: `count` INSERTs of a copy of the period-1 trade row into a scratch table shaped like
`trades` (no indexes, no foreign keys), each in its own transaction; ratio = baseline seconds /
renewal seconds (the share of a bare one-row transaction in one renewal's cost). One round (the
figures are min/median/max spreads of it, the format of the other benchmarks).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, text

from tests.bench.harness import OUT, log, pg_database, seeding_app, spread

COUNT = 10_000
NAME = "datafair_bench_renewal"
SWEEP = "trading.subscription_renewal"


def _columns(conn: Any, table: str) -> list[str]:
    return list(conn.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                                  "AND table_schema = current_schema() ORDER BY ordinal_position"),
                             {"t": table}).scalars())


def _copy_id(column: str) -> str:
    """Copy g's id: the source id's first 30 characters and g on 6 digits (ids are at most 40 long)."""
    return f"left({column}, 30) || lpad(g::text, 6, '0')"


def _clone(conn: Any, table: str, key: str, source: str, n: int, replace: dict[str, str]) -> int:
    """Copy the row `key = source` of `table` n - 1 times (g = 2..n), the columns of `replace` computed."""
    cols = _columns(conn, table)
    exprs = [replace.get(c, f'"{c}"') for c in cols]
    sql = (f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
           f'SELECT {", ".join(exprs)} FROM "{table}", generate_series(2, :n) AS g WHERE "{key}" = :src')
    return conn.execute(text(sql), {"n": n, "src": source}).rowcount


def seed(app: Any, api: Any, count: int) -> dict[str, Any]:
    """`count` due subscriptions (one through the API, the rest copied in bulk); the clock at renews_at."""
    from exchange.db import db
    from tests.subscriptionflow import contract, parse, set_clock, subscribe

    deal = subscribe(api, periods=3)
    cid, tid = deal["contract"]["id"], deal["trade"]["id"]
    renews_at = parse(contract(api, deal["buyer"], cid)["subscription"]["renews_at"])
    started = time.perf_counter()
    with app.app_context():
        with db.engine.begin() as conn:
            offer_id = conn.execute(text("SELECT offer_id FROM contracts WHERE id = :c"), {"c": cid}).scalar_one()
            _clone(conn, "offers", "id", offer_id, count, {"id": _copy_id("id")})
            _clone(conn, "contracts", "id", cid, count,
                   {"id": _copy_id("id"), "offer_id": _copy_id("offer_id"), "number": "number || '-' || g"})
            _clone(conn, "trades", "id", tid, count, {"id": _copy_id("id"), "contract_id": _copy_id("contract_id")})
            _clone(conn, "subscriptions", "contract_id", cid, count, {"contract_id": _copy_id("contract_id")})
            conn.execute(text("ANALYZE offers; ANALYZE contracts; ANALYZE trades; ANALYZE subscriptions"))
        db.engine.dispose()
    set_clock(app, renews_at)
    return {"contract_id": cid, "trade_id": tid, "seed_seconds": time.perf_counter() - started}


def renew_all(app: Any, count: int) -> dict[str, Any]:
    """The renewal sweep run until nothing is due; seconds, statements and renewals per transaction."""
    from exchange.db import db
    from exchange.jobs import scheduler as jobs

    tally = {"statements": 0, "in_tx": 0, "max_in_tx": 0, "transactions": 0}

    def before(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        tally["statements"] += 1
        if statement.lstrip().upper().startswith("INSERT INTO TRADES"):
            tally["in_tx"] += 1
            tally["max_in_tx"] = max(tally["max_in_tx"], tally["in_tx"])

    def ended(_conn: Any) -> None:
        tally["transactions"] += 1
        tally["in_tx"] = 0

    with app.app_context():
        sweep = jobs.registered("sweep", app)[SWEEP]
        engine = db.engine
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "commit", ended)
        event.listen(engine, "rollback", ended)
        runs = 0
        started = time.perf_counter()
        try:
            while True:
                result = sweep(db.session)
                runs += 1
                if str(result).startswith("error"):
                    raise RuntimeError(f"renewal sweep failed: {result}")
                if int(str(result).split()[0]) == 0:
                    break
        finally:
            seconds = time.perf_counter() - started
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "commit", ended)
            event.remove(engine, "rollback", ended)
        renewed = db.session.execute(text("SELECT count(*) FROM trades WHERE period_index = 2")).scalar_one()
        doubled = db.session.execute(text("SELECT count(*) FROM (SELECT contract_id FROM trades GROUP BY contract_id, "
                                          "period_index HAVING count(*) > 1) d")).scalar_one()
        db.session.remove()
    if renewed != count or doubled:
        raise RuntimeError(f"{renewed} period-2 trades for {count} subscriptions ({doubled} periods doubled)")
    return {"seconds": seconds, "renewals": renewed, "sweep_runs": runs, "statements": tally["statements"],
            "max_renewals_per_transaction": tally["max_in_tx"], "transactions": tally["transactions"]}


def baseline_inserts(app: Any, trade_id: str, count: int) -> float:
    """`count` single-row INSERTs of a copy of the trade row, one transaction each (seconds)."""
    from exchange.db import db

    with app.app_context():
        engine = db.engine
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_trade_rows"))
            conn.execute(text("CREATE TABLE bench_trade_rows (LIKE trades INCLUDING DEFAULTS)"))
            cols = _columns(conn, "trades")
            row = dict(conn.execute(text("SELECT * FROM trades WHERE id = :t"), {"t": trade_id}).mappings().one())
        stmt = text(f"INSERT INTO bench_trade_rows ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})")
        started = time.perf_counter()
        for i in range(count):
            with engine.begin() as conn:
                conn.execute(stmt, {**row, "id": f"{trade_id[:30]}b{i:06d}"})
        seconds = time.perf_counter() - started
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE bench_trade_rows"))
        engine.dispose()
    return seconds


def measure(*, count: int = COUNT) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    url = pg_database(NAME, fresh=True)
    storage = "file://" + str(OUT / "renewal-storage")
    with seeding_app(url, storage) as (app, api):
        seeded = seed(app, api, count)
        log(f"  seeded {count:,} due subscriptions in {seeded['seed_seconds']:.1f} s")
        base = baseline_inserts(app, seeded["trade_id"], count)
        log(f"  baseline: {count:,} one-row INSERT transactions in {base:.1f} s ({count / base:.0f}/s)")
        run = renew_all(app, count)
    pg_database(NAME, fresh=True)
    out = {
        "subscriptions": count,
        "seconds": spread([run["seconds"]]),
        "renewals_per_s": spread([run["renewals"] / run["seconds"]]),
        "statements_per_renewal": run["statements"] / run["renewals"],
        "max_renewals_per_transaction": run["max_renewals_per_transaction"],
        "sweep_runs": run["sweep_runs"],
        "baseline_seconds": spread([base]),
        "baseline_inserts_per_s": spread([count / base]),
        "ratio": spread([base / run["seconds"]]),
        "seed_seconds": seeded["seed_seconds"],
    }
    log(f"  renewal sweep: {count:,} renewals in {run['seconds']:.1f} s ({count / run['seconds']:.0f}/s), "
        f"{out['statements_per_renewal']:.1f} statements per renewal, at most "
        f"{out['max_renewals_per_transaction']} per transaction, {out['sweep_runs']} sweep runs; "
        f"ratio {base / run['seconds']:.2f} x one-row INSERT transactions")
    if out["max_renewals_per_transaction"] != 1:
        raise RuntimeError(f"{out['max_renewals_per_transaction']} renewals in one transaction (bounded batches: 1)")
    return out
