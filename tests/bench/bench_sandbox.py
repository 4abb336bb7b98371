"""Privacy-computing queries through gunicorn (`POST /entitlements/{id}/queries`), next to DuckDB
running the same rewritten query directly on the same Parquet file in the same run.

Set-up: a 10-million-row Parquet file written by DuckDB itself (`COPY (SELECT ... FROM range(N))`:
city (11 values), category (6), month (10), store_id (20,000), customer_id (blocked), amount_cents,
items), a fresh SQLite database (migrations) and, through the API in-process, a vendor's
`privacy_computing` product without personal information (exact mode: no budget) certified and sold,
the file uploaded as a release (`sales.parquet`: the table `sales`) and published, and its sandbox
policy (k = 10, customer_id blocked). One gunicorn worker (deploy/gunicorn.conf.py) pinned to the
server's core; the sandbox's DuckDB processes are its children, so they run on that core too.

Timed, alternating query by query (direct, then API), each `REPEAT` times:
- API: the buyer's query over one keep-alive connection from this process on the client's core, from
  the request's first byte to the answer's last: authorization, the policy check and rewrite, the
  query log, the engine's process, the result's hash and its signed receipt;
- direct: the answer's `executed_sql` (what the sandbox ran, its per-group row count and k threshold
  included) with the table replaced by `read_parquet('<the stored file>')`, on an in-process DuckDB
  connection whose threads and memory limit are the sandbox's, pinned to the server's core.
Both read the same bytes from the page cache (the stored object, warmed by the first queries). The
answers are compared: exact mode, so the API's rows must be DuckDB's.
Separately, in-process: `delivery.sandbox_sql.check` (the allow-list check and the rewrite) alone.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.bench.harness import (
    CLIENT_CPUS,
    OUT,
    PIN,
    SERVER_CPUS,
    Server,
    latency,
    log,
    seeding_app,
    sqlite_database,
)

ROWS = 10_000_000
TABLE, FILE_NAME = "sales", "sales.parquet"
CITIES = ("guangzhou", "shenzhen", "zhuhai", "foshan", "huizhou", "dongguan", "zhongshan", "jiangmen", "zhaoqing",
          "hong_kong", "macao")
CATEGORIES = ("grocery", "dining", "pharmacy", "cosmetics", "apparel", "electronics")
QUERIES = {
    "count by city": "SELECT city, count(*) AS baskets FROM sales GROUP BY city",
    "sum and avg with WHERE": (
        "SELECT category, sum(amount_cents) AS total, avg(amount_cents) AS mean FROM sales "
        "WHERE month >= '2026-06' AND city IN ('guangzhou', 'shenzhen') GROUP BY category ORDER BY total DESC"),
    "count distinct": "SELECT city, count(DISTINCT store_id) AS stores FROM sales GROUP BY city",
    "filtered totals": (
        "SELECT count(*) AS baskets, sum(amount_cents) AS total, avg(items) AS items FROM sales "
        "WHERE amount_cents BETWEEN 1000 AND 50000 AND NOT city = 'macao'"),
}
POLICY = {"min_group_size": 10, "blocked_columns": ["customer_id"],
          "allowed_aggregates": ["count", "count_distinct", "sum", "avg"], "max_groups": 1000}
CHECK_REPEAT = 300


# -- the data ---------------------------------------------------------------------------------------------
def make_parquet(path: Path, rows: int) -> float:
    """`rows` deterministic rows written by DuckDB; returns the seconds it took."""
    import duckdb

    started = time.perf_counter()
    cities = ", ".join(f"'{c}'" for c in CITIES)
    categories = ", ".join(f"'{c}'" for c in CATEGORIES)
    with duckdb.connect() as con:
        # Multiplicative hashes of the row number spread the values (no row group holds one city only).
        con.execute(f"""COPY (SELECT
              ([{cities}])[1 + (i * 7 + i // 13) % 11] AS city,
              ([{categories}])[1 + (i * 31 + i // 7) % 6] AS category,
              '2026-' || lpad(CAST(1 + (i // 1000) % 10 AS VARCHAR), 2, '0') AS month,
              'ST-' || lpad(CAST((i * 2654435761) % 20000 AS VARCHAR), 5, '0') AS store_id,
              'CU-' || CAST((i * 40503) % 3000000 AS VARCHAR) AS customer_id,
              CAST(500 + (i * 48271) % 199500 AS BIGINT) AS amount_cents,
              CAST(1 + (i * 16807) % 30 AS INTEGER) AS items
            FROM range({int(rows)}) t(i)) TO '{path}' (FORMAT parquet)""")
    return time.perf_counter() - started


# -- set-up -----------------------------------------------------------------------------------------------
def seed(url: str, storage_url: str, parquet: Path) -> dict[str, Any]:
    """A migrated database with a `privacy_computing` product sold (its entitlement active), the file
    published as its release and the sandbox policy set, all through the API in-process."""
    from tests.deliveryflow import entitlement_of, pay, signed_trade

    with seeding_app(url, storage_url) as (app, api):
        vendor, buyer = api.vendor(), api.enterprise()
        trade = signed_trade(api, vendor, buyer, delivery_mode="privacy_computing", data_format="parquet",
                             title="大湾区零售小票汇总 Greater Bay Area retail baskets (sandbox bench)",
                             price={"model": "one_time", "amount": 5_000_000, "currency": "CNY", "period": None})
        trade = pay(api, buyer, trade["id"])
        ent = entitlement_of(api, buyer, trade["id"])
        product_id = trade["product_id"]
        r = api.post(f"products/{product_id}/releases", vendor, json={"label": "bench", "notes": "10M rows"})
        if r.status_code != 201:
            raise RuntimeError(f"release: {r.status_code} {r.get_json()}")
        release_id = r.get_json()["id"]
        with open(parquet, "rb") as body:
            r = api.client.put(f"/api/v1/releases/{release_id}/files/{FILE_NAME}", input_stream=body,
                               content_length=parquet.stat().st_size,
                               headers={**vendor.headers, "Content-Type": "application/octet-stream"})
        if r.status_code != 201:
            raise RuntimeError(f"upload: {r.status_code} {r.get_json()}")
        sha256 = r.get_json()["sha256"]
        r = api.post(f"releases/{release_id}/publish", vendor)
        if r.status_code != 200:
            raise RuntimeError(f"publish: {r.status_code} {r.get_json()}")
        r = api.request("PUT", f"products/{product_id}/sandbox-policy", vendor, json=POLICY)
        if r.status_code != 200:
            raise RuntimeError(f"sandbox policy: {r.status_code} {r.get_json()}")
        limits = {"threads": int(app.config["QUERY_THREADS"]), "memory_mb": int(app.config["QUERY_MEMORY_MB"]),
                  "workers": int(app.config["QUERY_WORKERS"])}
        return {"buyer": buyer.token, "entitlement_id": ent["id"], "release_id": release_id, "sha256": sha256,
                "product_id": product_id, "limits": limits}


# -- the two sides ----------------------------------------------------------------------------------------
@contextmanager
def on_core(cpus: str) -> Iterator[None]:
    """The calling thread on `cpus` (threads it starts meanwhile inherit it)."""
    if not PIN:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


class Api:
    """One keep-alive connection to the server, as the buyer."""

    def __init__(self, server: Server, token: str, entitlement_id: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.path = f"/api/v1/entitlements/{entitlement_id}/queries"

    def query(self, sql: str) -> tuple[float, dict[str, Any]]:
        body = json.dumps({"sql": sql}).encode()
        with on_core(CLIENT_CPUS):
            started = time.perf_counter()
            self.conn.request("POST", self.path, body=body, headers=self.headers)
            resp = self.conn.getresponse()
            answer = resp.read()
            took = time.perf_counter() - started
        got = json.loads(answer)
        if resp.status != 201 or got.get("status") != "succeeded":
            raise RuntimeError(f"query answered {resp.status}: {answer[:500]!r}")
        return took, got

    def close(self) -> None:
        self.conn.close()


def direct_sql(executed_sql: str, path: Path) -> str:
    """The sandbox's query with its table read straight from the file: the rewrite names the table
    once (`FROM "sales"`) and qualifies its columns with it, so the file gets the table's name."""
    from delivery.sandbox_sql import quote

    source = f"FROM {quote(TABLE)}"
    if executed_sql.count(source) != 1:
        raise RuntimeError(f"expected {source!r} once in the executed SQL: {executed_sql}")
    return executed_sql.replace(source, f"FROM read_parquet('{path}') AS {quote(TABLE)}")


def plan(sql: str) -> Any:
    from delivery import sandbox_sql

    return sandbox_sql.check(sql, tables={TABLE}, blocked=set(POLICY["blocked_columns"]),
                             allowed_aggregates=tuple(POLICY["allowed_aggregates"]), noised=False)


def released(sql: str, names: list[str], raw: list[tuple[Any, ...]]) -> list[list[Any]]:
    """What the sandbox releases from the engine's raw rows (exact mode: k threshold, max_groups)."""
    from delivery import privacy

    done = privacy.finish(plan(sql), names, [list(r) for r in raw], k=POLICY["min_group_size"],
                          max_groups=POLICY["max_groups"], epsilon=None, bounds={}, rows_per_person=1)
    return done.rows


def _same(api_rows: list[list[Any]], direct_rows: list[list[Any]]) -> bool:
    """The API's rows are DuckDB's (floats to 1e-9 relative: the answer went through JSON)."""
    if len(api_rows) != len(direct_rows):
        return False
    for a, d in zip(api_rows, direct_rows, strict=True):
        if len(a) != len(d):
            return False
        for x, y in zip(a, d, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if not math.isclose(float(x), float(y), rel_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def check_timings(repeat: int) -> dict[str, Any]:
    """`delivery.sandbox_sql.check` and the rewrite (`Plan.sql`) alone on each query, in-process."""
    from delivery.sandbox import RAW_GROUP_CAP

    out: dict[str, Any] = {}
    everything: list[float] = []
    for name, sql in QUERIES.items():
        plan(sql).sql(min_rows=POLICY["min_group_size"], cap=RAW_GROUP_CAP)  # imports and caches
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            plan(sql).sql(min_rows=POLICY["min_group_size"], cap=RAW_GROUP_CAP)
            samples.append((time.perf_counter() - started) * 1000)
        out[name] = latency(samples)
        everything += samples
    out["all"] = latency(everything)
    return out


# -- the benchmark ----------------------------------------------------------------------------------------
def measure(*, repeat: int, rows: int = ROWS) -> dict[str, Any]:
    started = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=OUT, prefix="sandbox-"))
    try:
        return _measure(work, repeat=repeat, rows=rows) | {"seconds": time.perf_counter() - started}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(work: Path, *, repeat: int, rows: int) -> dict[str, Any]:
    import duckdb

    parquet, root = work / FILE_NAME, work / "storage"
    root.mkdir()
    generated = make_parquet(parquet, rows)
    size = parquet.stat().st_size
    log(f"  {rows:,}-row Parquet file, {size / (1 << 20):.0f} MiB: {generated:.1f} s")
    url = sqlite_database("sandbox.db", fresh=True)
    ids = seed(url, "file://" + str(root), parquet)
    parquet.unlink()  # from here on both sides read the stored object
    stored = root / "objects" / ids["sha256"][:2] / ids["sha256"][2:4] / ids["sha256"]
    limits = ids["limits"]
    out: dict[str, Any] = {"rows": rows, "file_mib": size / (1 << 20), "generate_s": generated, "repeat": repeat,
                           "workers": 1, "duckdb": limits, "queries": {}}
    env = {"DATAFAIR_STORAGE_URL": "file://" + str(root), "DATAFAIR_ACCESS_LOG": "/dev/null",
           "DATAFAIR_LOG_LEVEL": "warning"}
    with Server("sandbox", "app:app", url, "/api/v1/health/live", workers=1, env=env) as server:
        client = Api(server, ids["buyer"], ids["entitlement_id"])
        with on_core(SERVER_CPUS):
            con = duckdb.connect(config={"threads": limits["threads"], "memory_limit": f"{limits['memory_mb']}MB"})
        try:
            # Warm both sides (the worker's pool, the page cache, the first parse); learn each executed SQL.
            plans: dict[str, str] = {}
            for name, sql in QUERIES.items():
                for _ in range(2):
                    _, answer = client.query(sql)
                plans[name] = direct_sql(answer["executed_sql"], stored)
                with on_core(SERVER_CPUS):
                    con.execute(plans[name]).fetchall()
            samples = {name: {"api": [], "direct": [], "engine": []} for name in QUERIES}
            answers: dict[str, dict[str, Any]] = {}
            direct_raw: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
            for _ in range(repeat):
                for name, sql in QUERIES.items():
                    with on_core(SERVER_CPUS):
                        t = time.perf_counter()
                        cursor = con.execute(plans[name])
                        raw = cursor.fetchall()
                        samples[name]["direct"].append((time.perf_counter() - t) * 1000)
                    direct_raw[name] = ([d[0] for d in cursor.description], raw)
                    took, answers[name] = client.query(sql)
                    samples[name]["api"].append(took * 1000)
                    samples[name]["engine"].append(float(answers[name]["elapsed_ms"]))
        finally:
            client.close()
            con.close()
    for name, sql in QUERIES.items():
        s, answer = samples[name], answers[name]
        api_ms, direct_ms = latency(s["api"]), latency(s["direct"])
        out["queries"][name] = {
            "sql": sql, "executed_sql": answer["executed_sql"], "groups": len(answer["rows"]),
            "suppressed_groups": answer["suppressed_groups"],
            "same_result": _same(answer["rows"], released(sql, *direct_raw[name])),
            "api_ms": api_ms, "direct_ms": direct_ms, "engine_ms": latency(s["engine"]),
            "ratio_p50": api_ms["p50"] / direct_ms["p50"], "added_p50_ms": api_ms["p50"] - direct_ms["p50"],
        }
        log(f"  {name}: API p50 {api_ms['p50']:.1f} ms (p95 {api_ms['p95']:.1f}), direct p50 "
            f"{direct_ms['p50']:.1f} ms (p95 {direct_ms['p95']:.1f}): {api_ms['p50'] / direct_ms['p50']:.2f}x")
    out["check_ms"] = check_timings(CHECK_REPEAT)
    log(f"  policy check and rewrite: p50 {out['check_ms']['all']['p50']:.2f} ms, "
        f"p95 {out['check_ms']['all']['p95']:.2f} ms")
    return out
