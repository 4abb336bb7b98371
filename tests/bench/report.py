"""The results of `make bench` as rows (figure, baseline, ratio, goal, met?), a Markdown table and a chart."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

STEP_NAMES = {"offer": "offer", "accept": "accept offer", "sign_buyer": "sign (buyer)",
              "sign_seller": "sign (seller)", "pay": "pay", "confirm": "confirm payment", "deliver": "deliver",
              "acceptance": "accept delivery"}


def _spread(s: dict[str, float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def _row(figure: str, value: str, baseline: str, ratio: str, goal: str, met: bool | None) -> dict[str, Any]:
    return {"figure": figure, "value": value, "baseline": baseline, "ratio": ratio, "goal": goal, "met": met}


def rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    size = "100k" if not r["machine"].get("quick") else "quick"
    if "health" in r:
        h = r["health"]
        out.append(_row("`GET /health` throughput, req/s", _spread(h["figure_rps"]),
                        f"B_json {_spread(h['baseline_rps'])}",
                        _spread(h["ratio"], "{:.2f}"), ">= 0.8 x B_json", h["ratio"]["median"] >= 0.8))
    if "product" in r:
        p = r["product"]
        out.append(_row("`GET /products/{id}` throughput, req/s", _spread(p["figure_rps"]),
                        f"B_db {_spread(p['baseline_rps'])}", _spread(p["ratio"], "{:.2f}"), ">= 0.5 x B_db",
                        p["ratio"]["median"] >= 0.5))
    for db in ("postgresql", "sqlite"):
        s = r.get(f"search_{db}")
        if s:
            like = s["like_scan"]
            out.append(_row(f"catalog search p95 at {size}, {db} (p50)",
                            f"{s['all']['p95']:.1f} ms ({s['all']['p50']:.1f})",
                            f"LIKE scan p95 {like['p95']:.0f} ms", f"{like['p95'] / s['all']['p95']:.0f}x faster",
                            "p95 <= 20 ms", s["all"]["p95"] <= 20))
    for db in ("postgresql", "sqlite"):
        m = r.get(f"matching_{db}")
        if m:
            naive = m["naive"]
            out.append(_row(f"matching p95 at {size}, {db} (p50)", f"{m['p95']:.1f} ms ({m['p50']:.1f})",
                            f"naive full scan p50 {naive['p50']:.0f} ms", f"{naive['p50'] / m['p95']:.0f}x faster",
                            "p95 <= 20 ms", m["p95"] <= 20))
    st = r.get("settlement")
    if st:
        for clients in ("1", "4", "8"):
            c = st[clients]
            out.append(_row(f"settlement (acceptance) at {clients} client(s), trades/s", _spread(c["tps"]),
                            f"P_tpcb {_spread(c['pgbench_tps'])} tps", _spread(c["ratio"], "{:.2f}"),
                            ">= 0.5 x P_tpcb", c["ratio"]["median"] >= 0.5))
    flow = r.get("trade_flow")
    if flow and st:
        floor = 1000 / st["1"]["pgbench_tps"]["median"]
        for step, name in STEP_NAMES.items():
            ms = flow["steps"][step]["p95"]
            out.append(_row(f"trade flow: {name}, p95", f"{ms:.1f} ms", f"P_tpcb 1-client latency {floor:.1f} ms",
                            f"{ms / floor:.1f}x", "p95 <= 30 ms", ms <= 30))
    mem = r.get("memory_after_search")
    if mem:
        rss = max(w["rss_mb"] for w in mem)
        pss = max(w["pss_mb"] for w in mem)
        base = max(w["rss_mb"] for w in r["baseline_memory"])
        out.append(_row(f"gunicorn worker RSS after the search mix at {size} (PSS)", f"{rss:.0f} MB ({pss:.0f})",
                        f"bare Flask worker {base:.0f} MB", f"{rss / base:.2f}", "RSS <= 150 MB", rss <= 150))
    out += _delivery_rows(r.get("delivery"))
    out += _gateway_rows(r.get("gateway"))
    out += _sandbox_rows(r.get("sandbox"))
    growth = r.get("growth", {})
    sizes = sorted(growth, key=int)
    for what in ("search", "matching"):
        for a, b in pairwise(sizes):
            pa = growth[a][what]["all"]["p95"] if what == "search" else growth[a][what]["p95"]
            pb = growth[b][what]["all"]["p95"] if what == "search" else growth[b][what]["p95"]
            factor = int(b) / int(a)
            out.append(_row(f"{what} p95 growth, PostgreSQL, {int(a):,} -> {int(b):,} products",
                            f"{pa:.1f} -> {pb:.1f} ms", f"linear: x{factor:.0f}", f"x{pb / pa:.2f}",
                            "sub-linear", pb / pa < factor))
    return out


def _delivery_rows(d: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not d:
        return []
    up, down, rng = d["upload"], d["download"], d["range"]
    size = f"{d['mib'] / 1024:g} GiB" if d["mib"] >= 1024 else f"{d['mib']} MiB"
    return [
        _row(f"release upload (`PUT`, {size}, 1 worker), MiB/s", _spread(up["mib_s"]),
             f"`cp` + fsync {_spread(up['cp_fsync_mib_s'])}", _spread(up["ratio_cp_fsync"], "{:.2f}"),
             ">= 0.5 x cp+fsync", up["ratio_cp_fsync"]["median"] >= 0.5),
        _row(f"release upload, {size}, against `cp` without fsync", _spread(up["mib_s"]),
             f"`cp` {_spread(up['cp_mib_s'])}, `cat` {_spread(up['cat_mib_s'])}", _spread(up["ratio_cp"], "{:.2f}"),
             "(context)", None),
        _row("worker RSS growth during the upload", f"{up['rss_growth_mb']['max']:.1f} MB",
             f"worker before {d['worker_rss_before_mb']:.0f} MB", "", "< 20 MB", up["rss_growth_mb"]["max"] < 20),
        _row(f"release download (`GET` link, {size}), MiB/s", _spread(down["mib_s"]),
             f"`cat` {_spread(down['cat_mib_s'])}", _spread(down["ratio_cat"], "{:.2f}"), ">= 0.5 x cat",
             down["ratio_cat"]["median"] >= 0.5),
        _row(f"release download, {size}, against bare sendfile over loopback", _spread(down["mib_s"]),
             f"sendfile(2) to the same client {_spread(down['sendfile_mib_s'])}",
             _spread(down["ratio_sendfile"], "{:.2f}"), "(context)", None),
        _row("worker RSS growth during the download", f"{down['rss_growth_mb']['max']:.1f} MB",
             f"worker before {d['worker_rss_before_mb']:.0f} MB", "", "< 20 MB", down["rss_growth_mb"]["max"] < 20),
        _row(f"download `Range` last 1 MiB ({rng['status']}), p95 (p50)",
             f"{rng['ms']['p95']:.1f} ms ({rng['ms']['p50']:.1f})",
             f"`GET /health/live` p95 {rng['health_live_ms']['p95']:.1f} ms",
             f"{rng['ms']['p95'] / rng['health_live_ms']['p95']:.0f}x", "206, p95 <= 30 ms",
             rng["status"] == 206 and rng["ms"]["p95"] <= 30),
    ]


def _gateway_rows(g: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not g:
        return []
    setup = f"{g['clients']} clients, {g['upstream_delay_ms']:.0f} ms upstream, {g['workers']}x{g['threads']} gthread"
    m, sync = g["metering"], g["sync"]
    return [
        _row(f"API gateway throughput ({setup}), req/s", _spread(g["gateway_rps"]),
             f"upstream called directly {_spread(g['direct_rps'])}", _spread(g["ratio"], "{:.2f}"),
             ">= 0.7 x direct", g["ratio"]["median"] >= 0.7),
        _row("API gateway added latency p50 (p99)", f"{_spread(g['added_p50_ms'], '{:.1f}')} ms",
             f"direct p50 {g['pairs'][0]['direct']['p50']:.1f} ms",
             f"p99 +{g['added_p99_ms']['median']:.1f} ms", "<= 5 ms added p50", g["added_p50_ms"]["median"] <= 5),
        _row(f"API gateway on {g['workers']} sync workers, req/s", f"{sync['rps']:.0f}",
             f"gthread {_spread(g['gateway_rps'])}", f"{sync['rps'] / g['gateway_rps']['median']:.2f}",
             "(context: the worker model)", None),
        _row("metered calls/s (one entitlement; every 200 counted once)", _spread(m["metered_calls_s"]),
             f"metered {m['metered_in_timed_runs']}, 200s received {m['answered_200']}", "",
             "exact", m["exact"]),
        _row("PostgreSQL work per gateway call", f"{g['per_call']['statements']} statements",
             f"in {g['per_call']['transactions']} transactions", "", "(context)", None),
        _row("`usage` ledger entries per hour", f"{m['ledger_entries_per_hour']:g}",
             "entitlements with calls x 60 / period minutes", "", "(not per call)", None),
    ]


def _sandbox_rows(s: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not s:
        return []
    rows_ = f"{s['rows'] / 1e6:g}M" if s["rows"] >= 1_000_000 else f"{s['rows']:,}"
    out = []
    for name, q in s["queries"].items():
        api, direct = q["api_ms"], q["direct_ms"]
        out.append(_row(f"sandbox query, {rows_} rows: {name}, p50 (p95)", f"{api['p50']:.1f} ms ({api['p95']:.1f})",
                        f"DuckDB on the file {direct['p50']:.1f} ms ({direct['p95']:.1f})",
                        f"{q['ratio_p50']:.2f}x", "<= 1.3 x direct p50, same rows",
                        q["ratio_p50"] <= 1.3 and q["same_result"]))
    web = sorted(q["api_ms"]["p50"] - q["engine_ms"]["p50"] for q in s["queries"].values())
    engine = sorted(q["engine_ms"]["p50"] - q["direct_ms"]["p50"] for q in s["queries"].values())
    out.append(_row("sandbox added latency p50, median over the queries: where it goes",
                    f"web {web[len(web) // 2]:.1f} ms, engine process {engine[len(engine) // 2]:.1f} ms",
                    "API p50 - elapsed_ms; elapsed_ms - direct p50", "", "(context)", None))
    check = s["check_ms"]["all"]
    out.append(_row("sandbox policy check and rewrite alone, p95 (p50)", f"{check['p95']:.2f} ms ({check['p50']:.2f})",
                    "", "", "<= 5 ms", check["p95"] <= 5))
    return out


def _table(rows_: list[dict[str, Any]]) -> list[str]:
    lines = ["| figure | value: median (min–max) | same-run baseline | ratio | goal | met? |",
             "|---|---:|---:|---:|---|:---:|"]
    for row in rows_:
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        cells = (row["figure"], row["value"], row["baseline"], row["ratio"], row["goal"], met)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def console(rows_: list[dict[str, Any]], r: dict[str, Any]) -> str:
    return "\n".join(["", *_table(rows_), "", _footer(r)])


def _footer(r: dict[str, Any]) -> str:
    m = r["machine"]
    gen = ", ".join(f"{k}: {v:.0f} s" for k, v in r.get("generate_seconds", {}).items())
    text = (f"{m['cpus']} cores, server pinned to one core and the load generator to the other: {m['pinned']}; "
            f"gunicorn workers: {m['workers']} " + (f"gthread x {m['threads']} threads" if m.get("threads", 1) > 1
                                                    else "sync")
            + " (delivery: 1; gateway: 2 x 4 threads; sandbox: 1).")
    if gen:
        text += f" Generation ({gen})."
    if "total_seconds" in r:
        text += f" Whole run: {r['total_seconds'] / 60:.1f} min."
    if "delivery" in r:
        d = r["delivery"]
        same = d["verified"]["sha256"] == d["verified"]["manifest_file_sha256"]
        text += (f" Delivery: {d['mib']} MiB random file, {d['rounds']} rounds, sha256 of the download = the"
                 f" manifest's: {same}, {d['seconds']:.0f} s.")
    if "sandbox" in r:
        s = r["sandbox"]
        text += (f" Sandbox: {s['rows']:,} rows ({s['file_mib']:.0f} MiB Parquet), {s['repeat']} runs per query,"
                 f" DuckDB {s['duckdb'].get('threads')} thread(s) on both sides, {s['seconds']:.0f} s.")
    return text


def markdown(rows_: list[dict[str, Any]], r: dict[str, Any]) -> str:
    return "\n".join(["<!-- written by `make bench` (tests/bench/run.py) -->", *_table(rows_), "", _footer(r), ""])


def chart(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle("datafair benchmarks (same-run baselines; medians, bars min–max)", fontsize=13)

    ax = axes[0][0]
    labels, values, lows, highs, goals = [], [], [], [], []
    for key, label, goal in (("health", "health\n/ B_json", 0.8), ("product", "product\n/ B_db", 0.5)):
        if key in r:
            s = r[key]["ratio"]
            labels.append(label), values.append(s["median"]), lows.append(s["median"] - s["min"])
            highs.append(s["max"] - s["median"]), goals.append(goal)
    for clients in ("1", "4", "8"):
        if "settlement" in r:
            s = r["settlement"][clients]["ratio"]
            labels.append(f"settle x{clients}\n/ P_tpcb"), values.append(s["median"])
            lows.append(s["median"] - s["min"]), highs.append(s["max"] - s["median"]), goals.append(0.5)
    xs = range(len(labels))
    ax.bar(xs, values, yerr=[lows, highs], color=["tab:green" if v >= g else "tab:red"
                                                  for v, g in zip(values, goals, strict=True)], capsize=4)
    for x, g in zip(xs, goals, strict=True):
        ax.plot([x - 0.4, x + 0.4], [g, g], color="black", linestyle="--")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("throughput ratio (dashed: goal)")
    ax.set_title("Throughput against the same-run baseline")

    ax = axes[0][1]
    names, p95s, bases = [], [], []
    for db, short in (("postgresql", "PG"), ("sqlite", "SQLite")):
        if f"search_{db}" in r:
            names.append(f"search\n{short}"), p95s.append(r[f"search_{db}"]["all"]["p95"])
            bases.append(r[f"search_{db}"]["like_scan"]["p95"])
    for db, short in (("postgresql", "PG"), ("sqlite", "SQLite")):
        if f"matching_{db}" in r:
            names.append(f"match\n{short}"), p95s.append(r[f"matching_{db}"]["p95"])
            bases.append(r[f"matching_{db}"]["naive"]["p50"])
    xs = list(range(len(names)))
    ax.bar([x - 0.2 for x in xs], p95s, width=0.4, label="datafair p95", color="tab:blue")
    ax.bar([x + 0.2 for x in xs], bases, width=0.4, label="naive full scan (LIKE / score all)", color="tab:gray")
    ax.axhline(20, color="black", linestyle="--", label="goal 20 ms")
    ax.set_yscale("log")
    ax.set_xticks(xs, names, fontsize=8)
    ax.set_ylabel("ms (log)")
    ax.set_title("Search and matching at 100k products")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    growth = r.get("growth", {})
    sizes = sorted(growth, key=int)
    if sizes:
        xs_g = [int(s) for s in sizes]
        search = [growth[s]["search"]["all"]["p95"] for s in sizes]
        match = [growth[s]["matching"]["p95"] for s in sizes]
        ax.plot(xs_g, search, marker="o", label="search p95")
        ax.plot(xs_g, match, marker="s", label="matching p95")
        ax.plot(xs_g, [search[0] * x / xs_g[0] for x in xs_g], linestyle=":", color="gray", label="linear from search")
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.set_xlabel("listed products (PostgreSQL)"), ax.set_ylabel("ms (log)")
        ax.legend(fontsize=8)
    ax.set_title("Growth with the catalog")

    ax = axes[1][1]
    flow = r.get("trade_flow")
    if flow:
        steps = list(STEP_NAMES)
        vals = [flow["steps"][s]["p95"] for s in steps]
        ax.bar(range(len(steps)), vals, color=["tab:green" if v <= 30 else "tab:red" for v in vals])
        ax.axhline(30, color="black", linestyle="--", label="goal 30 ms")
        ax.set_xticks(range(len(steps)), [STEP_NAMES[s].replace(" ", "\n", 1) for s in steps], fontsize=8)
        ax.set_ylabel("p95 ms")
    mem = r.get("memory_after_search")
    if mem:
        rss = max(w["rss_mb"] for w in mem)
        ax.set_title(f"Trade flow steps (PostgreSQL); worker RSS {rss:.0f} MB (goal 150)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
