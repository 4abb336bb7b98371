"""The privacy-computing sandbox under attack (issue 18, API.md § "Privacy computing").

Every attack goes through the real API (`POST /entitlements/{id}/queries`) against a real release in a
real DuckDB worker, and is either refused (status `refused`, a reason code, no rows, nothing spent under
a budget, logged `refused` in the access log) or harmless (it runs, but what runs is the rebuilt query
and nothing but allowed aggregates comes out). Below the API: the engine's time limit (the pool kills a
runaway worker), the worker's own lock-down (hostile SQL sent straight to `sandbox_worker.run`), the
budget under 100 concurrent queries (PostgreSQL), and a differencing attack tested statistically.

One product per policy is bought once for the module (`world`); no test here asks for `app` or `api`
(they would reset the database under the others).
"""

from __future__ import annotations

import json
import math
import os
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from delivery import privacy, sandbox_engine, sandbox_sql, sandbox_worker
from exchange.db import db
from tests.deliveryflow import access_log
from tests.factories import ApiHelper
from tests.sandboxflow import DP_POLICY, EXACT_POLICY, query, retail_rows, sandbox_bought

# One person with a `month` nobody else has: the differencing attack's target.
PERSON = {"customer_id": "c99999", "phone": "13899999999", "city": "广州", "month": "2026-12", "amount": 1000,
          "items": 3}
ROWS = [*retail_rows(), PERSON]
PHONES = {r["phone"] for r in ROWS}
CUSTOMERS = {r["customer_id"] for r in ROWS}
BUDGET = 50.0
EPS = 0.01  # what an attack asks for under the budget (a refusal must not spend it)


@pytest.fixture(scope="module")
def world(_session_app: Any, database: Any) -> Any:
    saved = dict(_session_app.config)
    database.reset(_session_app)
    api = ApiHelper(_session_app)
    exact = sandbox_bought(api, EXACT_POLICY, ROWS)
    dp = sandbox_bought(api, {**DP_POLICY, "epsilon_budget": BUDGET}, ROWS)
    # The schema of each release is described once; warm both up so that timing tests below time the query.
    assert query(api, exact, "SELECT count(*) FROM retail")["status"] == "succeeded"
    assert query(api, dp, "SELECT count(*) FROM retail", epsilon=EPS)["status"] == "succeeded"
    yield SimpleNamespace(app=_session_app, api=api, exact=exact, dp=dp)
    _session_app.config.clear()
    _session_app.config.update(saved)
    with _session_app.app_context():
        db.session.remove()


def code_of(answer: dict[str, Any]) -> str:
    return (answer["refused_reason"] or "").split(":", 1)[0]


def assert_no_data(text_: str | None) -> None:
    """A reason never quotes a value of the data (a phone number or a customer id of the release)."""
    if not text_:
        return
    for value in PHONES | CUSTOMERS:
        assert value not in text_, f"the reason quotes the data: {text_!r}"


def ask(w: Any, got: dict[str, Any], sql: str, **body: Any) -> dict[str, Any]:
    if got is w.dp:
        body.setdefault("epsilon", EPS)
    return query(w.api, got, sql, **body)


def remaining(w: Any) -> float:
    """What the DP buyer has left, as the tables endpoint shows it (asks nothing of the budget)."""
    r = w.api.get(f"entitlements/{w.dp['ent']['id']}/tables", w.dp["buyer"])
    assert r.status_code == 200, r.get_json()
    return r.get_json()["epsilon_remaining"]


def logged(w: Any, got: dict[str, Any], query_id: str) -> dict[str, Any]:
    (entry,) = [a for a in access_log(w.api, got["buyer"], got["ent"]["id"]) if a["object"] == query_id]
    return entry


# -- 1. the grammar's attacks -------------------------------------------------------------------------------
# (id, sql, the reason code under both policies — or "harmless": it runs, nothing but aggregates comes out)
ATTACKS: list[tuple[str, str, str]] = [
    # every column at once
    ("star", "SELECT * FROM retail", "output"),
    ("star_and_count", "SELECT *, count(*) FROM retail", "output"),
    ("columns_regex", "SELECT COLUMNS('.*') FROM retail", "not_allowed"),
    ("columns_in_count", "SELECT count(COLUMNS('.*')) FROM retail", "not_allowed"),
    ("star_exclude", "SELECT * EXCLUDE (phone) FROM retail", "output"),
    ("count_star_exclude", "SELECT count(* EXCLUDE (phone)) FROM retail", "not_allowed"),
    ("table_star", "SELECT retail.* FROM retail", "not_allowed"),
    ("group_by_all", "SELECT city, count(*) FROM retail GROUP BY ALL", "not_allowed"),
    ("row_as_struct", "SELECT retail FROM retail", "not_grouped"),
    ("row_as_struct_grouped", "SELECT retail, count(*) FROM retail GROUP BY retail", "unknown_column"),
    ("struct_literal", "SELECT {'p': phone} AS s, count(*) FROM retail GROUP BY s", "not_allowed"),
    ("natural_join", "SELECT count(*) FROM retail NATURAL JOIN retail", "not_allowed"),
    ("join_using", "SELECT count(*) FROM retail JOIN retail AS r2 USING (city)", "not_allowed"),
    # a blocked column, every way in
    ("blocked_selected", "SELECT phone FROM retail", "blocked_column"),
    ("blocked_grouped", "SELECT phone, count(*) FROM retail GROUP BY phone", "blocked_column"),
    ("blocked_group_only", "SELECT count(*) FROM retail GROUP BY customer_id", "blocked_column"),
    ("blocked_filtered", "SELECT count(*) FROM retail WHERE phone = '13800000001'", "blocked_column"),
    ("blocked_filtered_flipped", "SELECT count(*) FROM retail WHERE '13800000001' = phone", "blocked_column"),
    ("blocked_is_null", "SELECT count(*) FROM retail WHERE phone IS NOT NULL", "blocked_column"),
    ("blocked_between", "SELECT count(*) FROM retail WHERE phone BETWEEN '1380' AND '1381'", "blocked_column"),
    ("blocked_in", "SELECT count(*) FROM retail WHERE customer_id IN ('c00001', 'c00002')", "blocked_column"),
    ("blocked_like", "SELECT count(*) FROM retail WHERE phone LIKE '138%'", "not_allowed"),
    ("blocked_ordered", "SELECT city, count(*) FROM retail GROUP BY city ORDER BY phone", "order_by"),
    ("blocked_aliased", "SELECT phone AS p, count(*) FROM retail GROUP BY p", "blocked_column"),
    ("blocked_cast", "SELECT CAST(phone AS BIGINT) AS p, count(*) FROM retail GROUP BY p", "output"),
    ("blocked_cast_sum", "SELECT sum(phone::BIGINT) FROM retail", "bare_column"),
    ("blocked_cast_where", "SELECT count(*) FROM retail WHERE CAST(phone AS BIGINT) > 0", "where"),
    ("blocked_count_distinct", "SELECT count(DISTINCT customer_id) FROM retail", "blocked_column"),
    ("blocked_count", "SELECT count(phone) FROM retail", "blocked_column"),
    ("blocked_in_function", "SELECT sum(length(phone)) FROM retail", "not_allowed"),
    ("blocked_in_function_where", "SELECT count(*) FROM retail WHERE left(phone, 3) = '138'", "not_allowed"),
    ("blocked_in_case", "SELECT sum(CASE WHEN phone = '13800000001' THEN amount END) FROM retail", "not_allowed"),
    ("blocked_in_case_where", "SELECT count(*) FROM retail WHERE CASE WHEN phone > '1' THEN TRUE END",
     "not_allowed"),
    ("blocked_qualified", "SELECT count(*) FROM retail WHERE retail.phone = '1'", "not_allowed"),
    ("blocked_quoted_upper", 'SELECT count(*) FROM retail WHERE "PHONE" = \'1\'', "blocked_column"),
    ("blocked_mixed_case", "SELECT Phone, count(*) FROM retail GROUP BY Phone", "blocked_column"),
    ("blocked_quoted_mixed", 'SELECT count(DISTINCT "Customer_ID") FROM retail', "blocked_column"),
    ("blocked_trailing_space", 'SELECT count(*) FROM retail WHERE "phone " = \'1\'', "unknown_column"),
    ("blocked_fullwidth", "SELECT count(*) FROM retail WHERE ｐｈｏｎｅ = '1'", "unknown_column"),
    ("blocked_zero_width", 'SELECT count(DISTINCT "pho\u200bne") FROM retail', "unknown_column"),
    ("blocked_struct_field", "SELECT count(*) FROM retail WHERE retail['phone'] = '1'", "not_allowed"),
    # padded counts
    ("cross_join_values", "SELECT count(*) FROM retail CROSS JOIN (VALUES (1), (2), (3)) v(x)", "not_allowed"),
    ("self_join", "SELECT count(*) FROM retail a, retail b", "not_allowed"),
    ("self_join_on", "SELECT count(*) FROM retail a JOIN retail b ON a.city = b.city", "not_allowed"),
    ("union_all", "SELECT count(*) FROM retail UNION ALL SELECT count(*) FROM retail", "not_a_select"),
    ("union_all_subquery", "SELECT count(*) FROM (SELECT * FROM retail UNION ALL SELECT * FROM retail)",
     "not_allowed"),
    ("unnest_join", "SELECT count(*) FROM retail, unnest([1, 2, 3])", "not_allowed"),
    ("unnest_output", "SELECT unnest([1, 2]), count(*) FROM retail", "not_allowed"),
    ("range_table", "SELECT count(*) FROM range(1000000)", "not_allowed"),
    ("range_join", "SELECT count(*) FROM retail, range(100)", "not_allowed"),
    ("values_table", "SELECT count(*) FROM (VALUES (1), (2))", "not_allowed"),
    ("cte", "WITH x AS (SELECT * FROM retail) SELECT count(*) FROM x", "not_allowed"),
    ("subquery_in_where", "SELECT count(*) FROM retail WHERE city IN (SELECT city FROM retail)", "not_allowed"),
    # conditional aggregates that isolate one row
    ("sum_case_id", "SELECT sum(CASE WHEN customer_id = 'c00042' THEN amount ELSE 0 END) FROM retail",
     "not_allowed"),
    ("sum_case_month", "SELECT sum(CASE WHEN month = '2026-12' THEN amount ELSE 0 END) FROM retail", "not_allowed"),
    ("filter_where", "SELECT sum(amount) FILTER (WHERE customer_id = 'c00042') FROM retail", "not_allowed"),
    ("filter_non_blocked", "SELECT count(*) FILTER (WHERE month = '2026-12') FROM retail", "not_allowed"),
    ("iif", "SELECT sum(if(month = '2026-12', amount, 0)) FROM retail", "not_allowed"),
    # aggregates that return rows
    ("list", "SELECT list(amount) FROM retail", "not_allowed"),
    ("list_blocked", "SELECT list(phone) FROM retail", "not_allowed"),
    ("array_agg", "SELECT array_agg(city) FROM retail", "not_allowed"),
    ("string_agg", "SELECT string_agg(city, ',') FROM retail", "not_allowed"),
    ("histogram", "SELECT histogram(amount) FROM retail", "not_allowed"),
    ("mode", "SELECT mode(amount) FROM retail", "not_allowed"),
    ("first", "SELECT first(amount) FROM retail", "not_allowed"),
    ("any_value", "SELECT any_value(amount) FROM retail", "not_allowed"),
    ("arg_max", "SELECT arg_max(city, amount) FROM retail", "not_allowed"),
    ("arg_max_blocked", "SELECT arg_max(phone, amount) FROM retail", "not_allowed"),
    ("quantile_disc", "SELECT quantile_disc(amount, 0.5) FROM retail", "not_allowed"),
    ("median", "SELECT median(amount) FROM retail", "not_allowed"),
    # windows, grouping extensions, sampling, limits
    ("window", "SELECT sum(amount) OVER () FROM retail", "not_allowed"),
    ("window_partition", "SELECT count(*) OVER (PARTITION BY city) FROM retail", "not_allowed"),
    ("qualify", "SELECT city, count(*) FROM retail GROUP BY city QUALIFY row_number() OVER () = 1", "not_allowed"),
    ("rollup", "SELECT city, count(*) FROM retail GROUP BY ROLLUP (city)", "not_allowed"),
    ("cube", "SELECT city, count(*) FROM retail GROUP BY CUBE (city)", "not_allowed"),
    ("grouping_sets", "SELECT city, count(*) FROM retail GROUP BY GROUPING SETS ((city), ())", "not_allowed"),
    ("having", "SELECT city, count(*) FROM retail GROUP BY city HAVING count(*) < 12", "not_allowed"),
    ("using_sample", "SELECT count(*) FROM retail USING SAMPLE 10%", "not_allowed"),
    ("tablesample", "SELECT count(*) FROM retail TABLESAMPLE 1 ROWS", "not_allowed"),
    ("limit", "SELECT city, count(*) FROM retail GROUP BY city LIMIT 1", "not_allowed"),
    ("offset", "SELECT city, count(*) FROM retail GROUP BY city OFFSET 1", "not_allowed"),
    ("distinct_select", "SELECT DISTINCT city, count(*) FROM retail GROUP BY city", "not_allowed"),
    # statements that are not a SELECT of the grammar
    ("summarize", "SUMMARIZE retail", "not_a_select"),
    ("summarize_select", "SUMMARIZE SELECT * FROM retail", "not_a_select"),
    ("describe", "DESCRIBE retail", "not_a_select"),
    ("show", "SHOW TABLES", "not_a_select"),
    ("pivot", "PIVOT retail ON city USING sum(amount)", "not_a_select"),
    ("pivot_subquery", "SELECT * FROM (PIVOT retail ON city USING sum(amount))", "not_allowed"),
    ("bare_from", "FROM retail", "output"),
    # files and the outside world
    ("file_path", "SELECT count(*) FROM 'retail.csv'", "unknown_table"),
    ("file_etc_passwd", "SELECT count(*) FROM '/etc/passwd'", "unknown_table"),
    ("read_csv", "SELECT count(*) FROM read_csv('/etc/passwd')", "not_allowed"),
    ("read_csv_auto", "SELECT * FROM read_csv_auto('/etc/passwd')", "not_allowed"),
    ("read_text", "SELECT count(*) FROM read_text('/etc/passwd')", "not_allowed"),
    ("glob", "SELECT count(*) FROM glob('/*')", "not_allowed"),
    ("getenv", "SELECT count(*) FROM retail WHERE city = getenv('HOME')", "not_allowed"),
    ("current_setting", "SELECT count(*), current_setting('allowed_paths') FROM retail", "not_allowed"),
    ("schema_qualified", "SELECT count(*) FROM main.retail", "not_allowed"),
    ("catalog_table", "SELECT count(*) FROM duckdb_settings()", "not_allowed"),
    ("copy_to", "COPY retail TO '/tmp/datafair-sandbox-copy.csv'", "not_a_select"),
    ("copy_select_to", "COPY (SELECT * FROM retail) TO '/tmp/datafair-sandbox-copy.csv'", "not_a_select"),
    ("attach", "ATTACH '/tmp/datafair-sandbox.db' AS x", "not_a_select"),
    ("pragma", "PRAGMA database_list", "not_a_select"),
    ("pragma_table_info", "PRAGMA table_info('retail')", "not_a_select"),
    ("set_external_access", "SET enable_external_access = true", "not_a_select"),
    ("set_lock", "SET lock_configuration = false", "not_a_select"),
    ("reset", "RESET allowed_paths", "not_a_select"),
    ("install_httpfs", "INSTALL httpfs", "not_a_select"),
    ("load_httpfs", "LOAD httpfs", "not_a_select"),
    # DDL and DML
    ("create_table", "CREATE TABLE t AS SELECT * FROM retail", "not_a_select"),
    ("create_view", "CREATE VIEW v AS SELECT * FROM retail", "not_a_select"),
    ("insert", "INSERT INTO retail VALUES (1)", "not_a_select"),
    ("drop", "DROP VIEW retail", "not_a_select"),
    ("delete", "DELETE FROM retail", "not_a_select"),
    ("update", "UPDATE retail SET phone = '1'", "not_a_select"),
    # several statements, comments
    ("two_statements", "SELECT count(*) FROM retail; SELECT phone FROM retail", "one_statement"),
    ("then_drop", "SELECT count(*) FROM retail; DROP VIEW retail", "one_statement"),
    ("comment_then_statement", "SELECT count(*) FROM retail /* x */; SELECT * FROM retail", "one_statement"),
    ("line_comment_then_statement", "SELECT count(*) FROM retail -- x\n; SELECT * FROM retail", "one_statement"),
    ("statement_in_block_comment", "SELECT count(*) FROM retail /* ; SELECT phone FROM retail */", "harmless"),
    ("statement_in_line_comment", "SELECT count(*) FROM retail -- ; DROP VIEW retail", "harmless"),
    # names that look like blocked columns but are not them
    ("alias_named_like_blocked", "SELECT count(*) AS phone FROM retail ORDER BY phone", "harmless"),
    ("key_aliased_as_blocked", "SELECT city AS customer_id, count(*) FROM retail GROUP BY city", "harmless"),
    ("from_first", "FROM retail SELECT count(*) AS n", "harmless"),
    # other syntax the grammar does not have
    ("column_vs_column", "SELECT count(*) FROM retail WHERE city = month", "where"),
    ("arithmetic", "SELECT count(*) FROM retail WHERE amount > 1 + 1", "not_allowed"),
    ("placeholder", "SELECT count(*) FROM retail WHERE city = ?", "not_allowed"),
    ("collate", "SELECT count(*) FROM retail WHERE city = 'x' COLLATE nocase", "not_allowed"),
    ("tuple", "SELECT count(*) FROM retail WHERE (city, month) = ('a', 'b')", "not_allowed"),
    ("table_alias", "SELECT count(*) FROM retail AS phone", "not_allowed"),
    ("unknown_table", "SELECT count(*) FROM customers", "unknown_table"),
    ("unknown_column", "SELECT count(salary) FROM retail", "unknown_column"),
    ("empty", " ", "syntax_error"),
    ("garbage", "SELECT FROM WHERE (", "syntax_error"),
    # huge or nested input
    ("deep_parentheses", "SELECT count(*) FROM retail WHERE " + "(" * 4000 + "items = 1" + ")" * 4000,
     "syntax_error"),
    ("deep_parentheses_output", "SELECT " + "(" * 4900 + "count(*)" + ")" * 4900 + " FROM retail", "syntax_error"),
    ("deep_not", "SELECT count(*) FROM retail WHERE " + "NOT " * 2400 + "items = 1", "syntax_error"),
    ("deep_negation", "SELECT count(*) FROM retail WHERE items = " + "-" * 9000 + "1", "syntax_error"),
    ("long_in_list", "SELECT count(*) FROM retail WHERE items IN (" + ", ".join(["1"] * 2000) + ")", "where"),
    ("ten_thousand_chars", "SELECT count(*) FROM retail WHERE city IN ("
     + ", ".join(["'x'"] * 2000)[:9950] + "'x')", "where"),
]


@pytest.mark.parametrize("mode", ["exact", "dp"])
@pytest.mark.parametrize(("sql", "expected"), [pytest.param(s, e, id=i) for i, s, e in ATTACKS])
def test_attack_is_refused_or_harmless(world: Any, mode: str, sql: str, expected: str) -> None:
    got = getattr(world, mode)
    before = remaining(world)
    answer = ask(world, got, sql)
    assert_no_data(answer["refused_reason"])
    if expected == "harmless":
        assert answer["status"] == "succeeded", answer["refused_reason"]
        # What ran is the rebuilt query: no comment, no second statement, no blocked column.
        assert "--" not in answer["executed_sql"] and "/*" not in answer["executed_sql"]
        assert "DROP" not in answer["executed_sql"] and '"phone"' not in answer["executed_sql"]
        assert not PHONES & {str(v) for row in answer["rows"] for v in row}
        return
    assert answer["status"] == "refused", answer
    assert code_of(answer) == expected, answer["refused_reason"]
    assert answer["rows"] == [] and answer["columns"] == [] and answer["result_sha256"] is None
    assert answer["receipt"] is None and answer["epsilon_spent"] is None
    if mode == "dp":
        # Nothing spent: what is left is what was left after the query before it.
        assert answer["epsilon_remaining"] == pytest.approx(before)
        assert remaining(world) == pytest.approx(before)
    entry = logged(world, got, answer["id"])
    assert entry["status"] == "refused" and entry["refused_reason"] == answer["refused_reason"]


def test_a_chain_of_or_is_checked_and_run(world: Any) -> None:
    """300 `OR`s (a long, legitimate filter) are checked, rebuilt and run: an answer, not a crash."""
    sql = "SELECT count(*) FROM retail WHERE " + " OR ".join(["items = 1"] * 300)
    answer = ask(world, world.exact, sql)
    assert answer["status"] in ("succeeded", "failed"), answer
    assert_no_data(answer["refused_reason"])


def test_a_deeper_chain_of_or_is_refused_not_a_crash(world: Any) -> None:
    sql = "SELECT count(*) FROM retail WHERE " + "OR ".join(["city=1"] * 950)
    assert len(sql) <= sandbox_sql.MAX_SQL_CHARS
    answer = ask(world, world.exact, sql)
    assert answer["status"] == "refused", answer


@pytest.mark.parametrize("body", [{"sql": "x" * 10_001}, {"sql": ["SELECT count(*) FROM retail"]},
                                  {"sql": "SELECT count(*) FROM retail\x00; DROP VIEW retail"},
                                  {"sql": "SELECT count(*) FROM retail", "epsilon": 0},
                                  {"sql": "SELECT count(*) FROM retail", "epsilon": -1},
                                  {"sql": "SELECT count(*) FROM retail", "epsilon": 1e308}],
                         ids=["too_long", "not_a_string", "nul", "epsilon_zero", "epsilon_negative", "epsilon_huge"])
def test_malformed_bodies_are_422_and_spend_nothing(world: Any, body: dict[str, Any]) -> None:
    before = query(world.api, world.dp, "SELECT count(*) FROM retail WHERE month = 'none'", epsilon=EPS)
    r = world.api.post(f"entitlements/{world.dp['ent']['id']}/queries", world.dp["buyer"], json=body)
    assert r.status_code == 422, r.get_json()
    after = query(world.api, world.dp, "SELECT count(*) FROM retail WHERE month = 'none'", epsilon=EPS)
    assert after["epsilon_remaining"] == pytest.approx(before["epsilon_remaining"] - EPS)


# Odd literals and names inside the grammar: any outcome but a crash, and never a value of the data.
ODD = [
    "SELECT count(*) FROM retail WHERE amount > 1e999999",
    "SELECT count(*) FROM retail WHERE amount > 999999999999999999999999999999999999999999999",
    "SELECT count(*) FROM retail WHERE amount < -1e308",
    "SELECT count(*) FROM retail WHERE month = DATE 'not a date'",
    "SELECT count(*) FROM retail WHERE month = TIMESTAMP '2026-13-45 99:00'",
    "SELECT count(*) FROM retail WHERE amount IN (NULL)",
    "SELECT count(*) FROM retail WHERE amount = TRUE",
    "SELECT count(*) FROM retail WHERE city = '\u202e广州'",
    "SELECT count(*) FROM retail WHERE city = '' OR city = '''' OR city = '\\'",
    "SELECT count(*) FROM RETAIL WHERE CITY = '广州'",
    'SELECT count(*) AS "a""b", sum(amount) AS "" FROM retail',
    "SELECT sum(amount) AS s, avg(amount) AS s2, count(DISTINCT month) AS m FROM retail GROUP BY city ORDER BY s DESC",
]


@pytest.mark.parametrize("mode", ["exact", "dp"])
@pytest.mark.parametrize("sql", ODD)
def test_odd_input_inside_the_grammar_never_crashes(world: Any, mode: str, sql: str) -> None:
    answer = ask(world, getattr(world, mode), sql)
    assert answer["status"] in ("succeeded", "refused", "failed"), answer
    assert_no_data(answer["refused_reason"])
    assert not (PHONES | CUSTOMERS) & {str(v) for row in answer["rows"] for v in row}


# (id, sql, the reason code without a budget, under one)
BY_MODE = [
    ("max", "SELECT max(amount) FROM retail", "aggregate_not_allowed", "min_max_under_budget"),
    ("min_grouped", "SELECT city, min(amount) FROM retail GROUP BY city", "aggregate_not_allowed",
     "min_max_under_budget"),
    ("sum_without_bounds", "SELECT sum(month) FROM retail", "engine_error", "bounds_required"),
]


@pytest.mark.parametrize(("sql", "exact", "dp"), [pytest.param(s, e, d, id=i) for i, s, e, d in BY_MODE])
def test_aggregates_that_reveal_one_value_are_refused(world: Any, sql: str, exact: str, dp: str) -> None:
    before = remaining(world)
    assert code_of(ask(world, world.exact, sql)) == exact
    answer = ask(world, world.dp, sql)
    assert (answer["status"], code_of(answer)) == ("refused", dp)
    assert answer["rows"] == [] and remaining(world) == pytest.approx(before)


def test_a_filter_that_isolates_one_person_is_suppressed(world: Any) -> None:
    """The person's unique `month` makes a group of one row: below k, dropped and counted, nothing out."""
    answer = ask(world, world.exact, "SELECT sum(amount) AS s, count(*) AS n FROM retail WHERE month = '2026-12'")
    assert answer["status"] == "succeeded"
    assert answer["rows"] == [] and answer["suppressed_groups"] == 1
    grouped = ask(world, world.exact, "SELECT month, sum(amount) AS s FROM retail GROUP BY month")
    assert "2026-12" not in {row[0] for row in grouped["rows"]} and grouped["suppressed_groups"] == 1


# -- 3. errors that would quote a value -------------------------------------------------------------------------
# DuckDB's own messages quote the offending value ("Could not convert string '广州' to INT32"): never shown.
ERRORS = [
    ("sum_of_text", "SELECT sum(city) FROM retail", {"exact": "failed:engine_error", "dp": "refused:bounds_required"}),
    ("avg_of_text", "SELECT avg(month) FROM retail", {"exact": "failed:engine_error", "dp": "refused:bounds_required"}),
    ("number_vs_text", "SELECT count(*) FROM retail WHERE amount = 'abc'", {"exact": "failed:engine_error",
                                                                            "dp": "failed:engine_error"}),
    ("text_vs_number", "SELECT count(*) FROM retail WHERE city = 1", {"exact": "failed:engine_error",
                                                                      "dp": "failed:engine_error"}),
    ("text_vs_date", "SELECT count(*) FROM retail WHERE city > DATE '2026-01-01'", {"exact": "failed:engine_error",
                                                                                     "dp": "failed:engine_error"}),
]


@pytest.mark.parametrize("mode", ["exact", "dp"])
@pytest.mark.parametrize(("sql", "expected"), [pytest.param(s, e, id=i) for i, s, e in ERRORS])
def test_engine_errors_never_quote_the_data(world: Any, mode: str, sql: str, expected: dict[str, str]) -> None:
    got = getattr(world, mode)
    answer = ask(world, got, sql)
    status, code = expected[mode].split(":")
    assert (answer["status"], code_of(answer)) == (status, code), answer
    assert answer["rows"] == [] and answer["result_sha256"] is None
    assert_no_data(answer["refused_reason"])
    for value in {r["city"] for r in ROWS} | {r["month"] for r in ROWS}:
        assert value not in answer["refused_reason"], answer["refused_reason"]
    entry = logged(world, got, answer["id"])
    assert entry["status"] == status


# -- 2. the time limit ----------------------------------------------------------------------------------------
def test_a_query_past_the_time_limit_is_killed_failed_logged_and_still_spends(world: Any) -> None:
    """A time limit far below what any query takes: the worker is killed, the query is `failed` with
    `timeout`, the access log says `failed`, and the epsilon debited before it ran is not given back."""
    before = query(world.api, world.dp, "SELECT count(*) FROM retail WHERE month = 'none'", epsilon=EPS)
    world.app.config["QUERY_TIMEOUT_S"] = 0.001
    try:
        answer = query(world.api, world.dp, "SELECT city, sum(amount) AS s FROM retail GROUP BY city", epsilon=0.25)
        exact = query(world.api, world.exact, "SELECT city, sum(amount) AS s FROM retail GROUP BY city")
    finally:
        world.app.config["QUERY_TIMEOUT_S"] = 20.0
    assert (answer["status"], code_of(answer)) == ("failed", "timeout"), answer
    assert answer["rows"] == [] and answer["receipt"] is None
    assert answer["epsilon_spent"] == pytest.approx(0.25)
    assert answer["epsilon_remaining"] == pytest.approx(before["epsilon_remaining"] - 0.25)
    assert logged(world, world.dp, answer["id"])["status"] == "failed"
    assert (exact["status"], code_of(exact)) == ("failed", "timeout"), exact
    assert logged(world, world.exact, exact["id"])["status"] == "failed"
    # The pool recovers: the next query with the ordinary limit runs.
    after = query(world.api, world.dp, "SELECT count(*) FROM retail", epsilon=EPS)
    assert after["status"] == "succeeded"
    assert after["epsilon_remaining"] == pytest.approx(before["epsilon_remaining"] - 0.25 - EPS)


def small_csv(tmp_path: Any) -> dict[str, str]:
    path = tmp_path / "t.csv"
    path.write_text("city,amount\n广州,1\n深圳,2\n")
    return {"table": "t", "path": str(path), "format": "csv"}


def test_the_pool_kills_a_runaway_worker_and_answers_the_next_request(tmp_path: Any) -> None:
    pool = sandbox_engine.Pool(1)
    files = [small_csv(tmp_path)]
    base = {"files": files, "memory_mb": 256, "threads": 1, "table": "t", "columns": [], "cap": 10}
    try:
        assert pool.run({**base, "sql": "SELECT count(*) FROM t"}, timeout_s=10)["rows"] == [[2]]
        (worker,) = pool._idle
        pid = worker.proc.pid
        with pytest.raises(sandbox_engine.EngineFailed) as failed:
            pool.run({**base, "sql": "SELECT sum(i) FROM range(1000000000000) r(i)"}, timeout_s=1.0)
        assert failed.value.code == "timeout"
        assert worker.proc.poll() is not None, "the runaway worker is still running"
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert pool.processes() == 0
        answer = pool.run({**base, "sql": "SELECT count(*) FROM t"}, timeout_s=10)
        assert answer == {"ok": True, "names": ["count_star()"], "rows": [[2]]}
        assert pool._idle[0].proc.pid != pid
    finally:
        pool.close()


# -- 4. the worker's own walls ----------------------------------------------------------------------------------
HOSTILE = [
    "SELECT * FROM read_csv('/etc/passwd', header=false, sep='|')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/etc/*')",
    "COPY t TO '{out}'",
    "COPY (SELECT 1) TO '{out}'",
    "ATTACH '{db}' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET allowed_paths = ['/etc/passwd']",
    "SET lock_configuration = false",
    "RESET enable_external_access",
    "SELECT * FROM read_csv('https://example.com/x.csv')",
    "CREATE VIEW p AS SELECT * FROM read_csv('/etc/passwd')",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_the_worker_refuses_hostile_sql_on_its_own(tmp_path: Any, sql: str) -> None:
    """The second wall: raw SQL that the checker would never pass, straight to the worker's `run`."""
    out, dbfile = tmp_path / "out.csv", tmp_path / "x.db"
    request = {"files": [small_csv(tmp_path)], "memory_mb": 256, "threads": 1, "table": "t", "columns": [],
               "cap": 10, "sql": sql.format(out=out, db=dbfile)}
    answer = sandbox_worker.run(request)
    assert answer == {"ok": False, "code": "engine_error"}
    assert "root:" not in json.dumps(answer)
    assert not out.exists() and not dbfile.exists()


def test_the_worker_stays_locked_after_a_refused_unlock(tmp_path: Any) -> None:
    """Each request gets a fresh connection, locked before the buyer's SQL: a second request after an
    attempt to unlock cannot read outside the release either (here through the real worker process)."""
    pool = sandbox_engine.Pool(1)
    base = {"files": [small_csv(tmp_path)], "memory_mb": 256, "threads": 1, "table": "t", "columns": [], "cap": 10}
    try:
        for sql in ("SET enable_external_access = true", "SELECT * FROM read_text('/etc/passwd')"):
            answer = pool.run({**base, "sql": sql}, timeout_s=10)
            assert answer == {"ok": False, "code": "engine_error"}
    finally:
        pool.close()


def test_the_worker_runs_with_an_empty_environment(tmp_path: Any) -> None:
    """No secret of the web process reaches the worker (DuckDB's getenv would read it)."""
    pool = sandbox_engine.Pool(1)
    base = {"files": [small_csv(tmp_path)], "memory_mb": 256, "threads": 1, "table": "t", "columns": [], "cap": 10}
    try:
        answer = pool.run({**base, "sql": "SELECT getenv('DATAFAIR_SECRET_KEY') AS s"}, timeout_s=10)
        assert not answer.get("ok") or answer["rows"] == [[None]] or answer["rows"] == [[""]], answer
        assert os.environ["DATAFAIR_SECRET_KEY"] not in json.dumps(answer)
    finally:
        pool.close()


# -- 5. one budget, 100 concurrent queries ----------------------------------------------------------------------
@pytest.mark.postgres
def test_100_concurrent_queries_never_overspend_the_budget(world: Any) -> None:
    """Budget 5.0, 100 queries of 0.1 each at once (own threads, clients, connections): exactly 50 are
    debited (succeeded, or failed after the debit), 50 refused `budget_exhausted`, and the row says 5.0."""
    got = sandbox_bought(world.api, {**DP_POLICY, "epsilon_budget": 5.0}, ROWS)
    url = f"/api/v1/entitlements/{got['ent']['id']}/queries"
    body = {"sql": "SELECT city, count(*) AS n FROM retail GROUP BY city", "epsilon": 0.1}
    barrier = threading.Barrier(100)
    answers: list[Any] = [None] * 100
    crashed: list[BaseException] = []

    def worker(i: int) -> None:
        client = world.app.test_client()
        try:
            barrier.wait()
            r = client.post(url, json=body, headers=got["buyer"].headers)
            answers[i] = (r.status_code, r.get_json())
        except BaseException as exc:  # reported below: a thread's exception must fail the test
            crashed.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not crashed, crashed
    assert all(a is not None for a in answers), "a query did not finish in time"
    assert {status for status, _ in answers} == {201}, [a for a in answers if a[0] != 201][:3]
    spent = [a for _, a in answers if a["status"] in ("succeeded", "failed")]
    refused = [a for _, a in answers if a["status"] == "refused"]
    assert len(spent) == 50 and len(refused) == 50, sorted(a["status"] for _, a in answers)
    assert {code_of(a) for a in refused} == {"budget_exhausted"}
    assert all(a["epsilon_spent"] == pytest.approx(0.1) for a in spent)
    assert min(a["epsilon_remaining"] for a in spent) == pytest.approx(0.0)
    with world.app.app_context():
        row = db.session.execute(text("SELECT spent_micro, queries FROM privacy_budgets WHERE product_id = :p"),
                                 {"p": got["trade"]["product_id"]}).one()
        db.session.remove()
    assert tuple(row) == (5_000_000, 50)
    log = access_log(world.api, got["buyer"], got["ent"]["id"])
    assert sum(1 for e in log if e["kind"] == "query") == 100
    assert sum(1 for e in log if e["kind"] == "query" and e["status"] == "refused") == 50


# -- 6. differencing under a budget -----------------------------------------------------------------------------
GROUP = "SELECT sum(amount) AS s FROM retail WHERE city = '广州'"
WITHOUT = "SELECT sum(amount) AS s FROM retail WHERE city = '广州' AND month <> '2026-12'"


def best_threshold_accuracy(a: list[float], b: list[float]) -> float:
    """The accuracy of the best rule "b if x > t else a" (or its mirror) on equal-sized samples."""
    points = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    best, below_a, below_b = 0.5, 0, 0
    n = len(a)
    for _x, label in points:
        below_a += label == 0
        below_b += label == 1
        accuracy = (below_a + (n - below_b)) / (2 * n)
        best = max(best, accuracy, 1 - accuracy)
    return best


def max_bucket_ratio(a: list[float], b: list[float], buckets: int = 8) -> float:
    """The largest ratio of frequencies of one bucket under the two hypotheses, over buckets cut at the
    pooled quantiles (so every bucket holds about len/buckets samples: the ratios are well estimated)."""
    pooled = sorted(a + b)
    cuts = [pooled[len(pooled) * i // buckets] for i in range(1, buckets)]

    def counts(xs: list[float]) -> list[int]:
        out = [0] * buckets
        for x in xs:
            out[sum(x >= c for c in cuts)] += 1
        return out

    ca, cb = counts(a), counts(b)
    return max(max(x, 1) / max(y, 1) if x >= y else max(y, 1) / max(x, 1) for x, y in zip(ca, cb, strict=True))


def differences(value: int, *, epsilon: float, n: int, exact_total: int) -> list[float]:
    """`n` runs of the attack: noised(sum of the group with the person worth `value`) minus noised(sum of
    the group without them), through the same mechanism `privacy.finish` uses for a sum (Laplace on
    the clamped sum, its share epsilon/2 — the other half noises the row count — and sensitivity
    rows_per_person * max(|low|, |high|) = 1000). One vector call noises the n runs independently."""
    share = epsilon / 2
    with_person = privacy.laplace([exact_total + value] * n, sensitivity=1000, epsilon=share, integer=True)
    without = privacy.laplace([exact_total] * n, sensitivity=1000, epsilon=share, integer=True)
    return [float(x - y) for x, y in zip(with_person, without, strict=True)]


def test_differencing_does_not_reveal_the_person_under_the_budget() -> None:
    """The attack: `sum(amount)` over 广州, then the same minus the one person whose `month` is unique;
    the difference estimates their amount. Hypotheses: the person's amount is 1000 (the policy's upper
    bound, the most distinguishable) or 0. Under epsilon = 0.5 per query the first answer is 0.5-DP in
    the person's value (the second does not depend on it), so for every set S of outcomes
    P(diff in S | 1000) <= e^0.5 * P(diff in S | 0), and no test tells the two apart with accuracy above
    e^eps/(1+e^eps) = 0.622 under an even prior.

    Statistics, 4000 runs per hypothesis (a fixed count, fresh OpenDP noise):
    - the best threshold classifier (chosen on the same samples, so optimistic) has accuracy below
      0.622 + 0.03 (its sampling sd is about 0.008; the exact Laplace accuracy here is about 0.55);
    - over 8 buckets cut at the pooled quantiles (~1000 samples each), every frequency ratio is below
      e^0.5 * 1.25 (sampling error of a ratio of two counts near 500: about 9%).
    The same two statistics must catch a leak: at epsilon 40 (noise scale 50) the classifier is above 0.99
    and a bucket ratio is far beyond e^0.5 — so the test can fail.
    """
    total = 100 * 450  # about what the group sums to; the difference does not depend on it
    eps, n = 0.5, 4000
    a = differences(0, epsilon=eps, n=n, exact_total=total)
    b = differences(1000, epsilon=eps, n=n, exact_total=total)
    bound = math.exp(eps) / (1 + math.exp(eps))
    assert best_threshold_accuracy(a, b) < bound + 0.03
    assert max_bucket_ratio(a, b) < math.exp(eps) * 1.25
    # The statistics have power: with little noise the person is plain to see.
    leak_a = differences(0, epsilon=40, n=1000, exact_total=total)
    leak_b = differences(1000, epsilon=40, n=1000, exact_total=total)
    assert best_threshold_accuracy(leak_a, leak_b) > 0.99
    assert max_bucket_ratio(leak_a, leak_b) > 10


def test_finish_noises_a_sum_at_the_scale_the_statistics_assume() -> None:
    """`privacy.finish` (what the service calls on the engine's rows) noises the sum with Laplace of
    scale 1000 / (epsilon / 2): the mean absolute error of a Laplace variable is its scale, estimated
    from 400 runs within 20% (its sd is about 5%). Ties the statistical test above to the real path."""
    plan = sandbox_sql.check(GROUP, tables={"retail"}, blocked={"phone", "customer_id"}, noised=True)
    sql = plan.sql(min_rows=0, cap=10, bounds={"amount": (0, 1000)})
    assert "least(greatest(" in sql  # the sum is clamped to the bounds before it is noised
    errors = []
    for _ in range(400):
        done = privacy.finish(plan, ["_suppressed", "_n", "_m0"], [[0, 100, 45_000]], k=10, max_groups=10,
                              epsilon=0.5, bounds={"amount": [0, 1000]}, rows_per_person=1)
        errors.append(abs(done.rows[0][0] - 45_000))
    scale = 1000 / (0.5 / 2)
    assert 0.8 * scale < sum(errors) / len(errors) < 1.2 * scale


def test_differencing_through_the_api_is_noised_and_spent(world: Any) -> None:
    """A handful of attack pairs through the API at the documented epsilon: every answer is noised (it
    is not the exact sum), the noise is of the size above, and both queries of each pair are spent."""
    exact_with = sum(r["amount"] for r in ROWS if r["city"] == "广州")
    exact_without = exact_with - PERSON["amount"]
    start = query(world.api, world.dp, "SELECT count(*) FROM retail WHERE month = 'none'", epsilon=EPS)
    left = start["epsilon_remaining"]
    answers = []
    for _ in range(3):
        for sql, exact in ((GROUP, exact_with), (WITHOUT, exact_without)):
            a = query(world.api, world.dp, sql, epsilon=0.5)
            assert a["status"] == "succeeded", a
            left -= 0.5
            assert a["epsilon_remaining"] == pytest.approx(left)
            answers.append(a["rows"][0][0] - exact)
    scale = 1000 / 0.25
    assert any(err != 0 for err in answers)
    assert all(abs(err) < 15 * scale for err in answers)  # P(|Laplace| > 15 b) = e^-15 per answer


def test_exact_mode_differencing_reveals_the_value_as_documented(world: Any) -> None:
    """Why personal data needs a budget: without noise the same two queries give the person's amount
    exactly (docs/decisions: exact mode cannot stop differencing across queries)."""
    with_person = query(world.api, world.exact, GROUP)["rows"][0][0]
    without = query(world.api, world.exact, WITHOUT)["rows"][0][0]
    assert with_person - without == PERSON["amount"]



def test_a_one_person_group_is_not_released_at_a_small_epsilon(world: Any) -> None:
    """The person's amount (1000, nobody else's) grouped on, filtered to their unique month: the answer's
    key would be their value. 20 tries at epsilon 0.01 (0.2 of the budget in all) must never show it;
    with the threshold on a count noised at scale 2 / 0.01 = 200, each try shows it with p ~ 0.48."""
    sql = "SELECT amount, count(*) AS n FROM retail WHERE month = '2026-12' GROUP BY amount"
    shown = 0
    for _ in range(20):
        answer = query(world.api, world.dp, sql, epsilon=0.01)
        assert answer["status"] == "succeeded", answer
        shown += any(row[0] == PERSON["amount"] for row in answer["rows"])
    assert shown == 0, f"the person's amount was released as a group key in {shown} of 20 answers"
