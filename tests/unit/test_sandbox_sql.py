"""The sandbox's SQL checker on its own: queries of the grammar are accepted and rebuilt, a blocked
column is refused wherever it appears, and no text whatever makes the checker fail otherwise than
with a refusal (property-based, hypothesis)."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.sandbox_sql import Refused, check

TABLES = {"retail"}
COLUMNS = ("city", "month", "amount", "items")
BLOCKED = {"phone"}
AGGS = ("count", "count_distinct", "sum", "avg")

column = st.sampled_from(COLUMNS)
NUMERIC = {"amount", "items"}
number = st.integers(-10**6, 10**6).map(str)
text = st.text("abc广州'", max_size=5).map(lambda t: "'" + t.replace("'", "''") + "'")


def literal_for(col: str) -> st.SearchStrategy[str]:
    """A literal of the column's type (a mismatch is the engine's own refusal, tested elsewhere)."""
    return number if col in NUMERIC else text


@st.composite
def predicate(draw, cols=column):
    c = draw(cols)
    literal = literal_for(c)
    kind = draw(st.sampled_from(["cmp", "in", "between", "null"]))
    if kind == "cmp":
        return f"{c} {draw(st.sampled_from(['=', '<>', '<', '<=', '>', '>=']))} {draw(literal)}"
    if kind == "in":
        return f"{c} IN ({', '.join(draw(st.lists(literal, min_size=1, max_size=3)))})"
    if kind == "between":
        return f"{c} BETWEEN {draw(literal)} AND {draw(literal)}"
    return f"{c} IS {draw(st.sampled_from(['', 'NOT ']))}NULL"


@st.composite
def condition(draw, cols=column, depth=2):
    if depth == 0 or draw(st.booleans()):
        return draw(predicate(cols))
    op = draw(st.sampled_from(["AND", "OR", "NOT"]))
    if op == "NOT":
        return f"NOT ({draw(condition(cols, depth - 1))})"
    return f"({draw(condition(cols, depth - 1))} {op} {draw(condition(cols, depth - 1))})"


def aggregate(func: str, col: str) -> str:
    return {"count": f"count({col})", "count_distinct": f"count(DISTINCT {col})"}.get(func, f"{func}({col})")


@st.composite
def grammar_query(draw, cols=column):
    keys = draw(st.lists(cols, max_size=2, unique=True))
    aggs = []
    for _ in range(draw(st.integers(1, 3))):
        func = draw(st.sampled_from(AGGS))
        col = draw(cols)
        aggs.append(aggregate(func if func in ("count", "count_distinct") or col in NUMERIC else "count", col))
    outputs = keys + [f"{a} AS m{i}" for i, a in enumerate(aggs)] + ["count(*) AS n"]
    sql = f"SELECT {', '.join(outputs)} FROM retail"
    if draw(st.booleans()):
        sql += f" WHERE {draw(condition(cols))}"
    if keys:
        sql += f" GROUP BY {', '.join(keys)}"
    if draw(st.booleans()):
        sql += f" ORDER BY n {draw(st.sampled_from(['ASC', 'DESC']))}"
    return sql


@settings(max_examples=150, deadline=None)
@given(grammar_query())
def test_every_query_of_the_grammar_is_accepted_and_its_rebuilt_form_binds(sql):
    plan = check(sql, tables=TABLES, blocked=BLOCKED)
    assert plan.table == "retail" and plan.columns <= set(COLUMNS)
    rebuilt = plan.sql(min_rows=10, cap=1000)
    # The rebuilt query is valid DuckDB over a table of those columns (bound, planned, run).
    con = duckdb.connect()
    con.execute("CREATE TABLE retail (city VARCHAR, month VARCHAR, amount BIGINT, items BIGINT)")
    con.execute("INSERT INTO retail VALUES ('广州', '2026-01', 10, 1)")
    try:
        (row,) = con.execute(rebuilt).fetchall()
        assert row[0] in (0, 1)  # the count of groups dropped (one row, under k = 10), nothing else
    finally:
        con.close()


@settings(max_examples=150, deadline=None)
@given(grammar_query(cols=st.sampled_from((*COLUMNS, "phone"))).filter(lambda q: "phone" in q))
def test_a_blocked_column_is_refused_wherever_it_appears(sql):
    with pytest.raises(Refused) as refused:
        check(sql, tables=TABLES, blocked=BLOCKED)
    assert refused.value.code == "blocked_column", (sql, refused.value.reason)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_plan_or_a_refusal_never_a_crash(text):
    try:
        plan = check(text, tables=TABLES, blocked=BLOCKED)
    except Refused as refused:
        assert refused.code and ":" not in refused.code
    else:
        assert plan.table in TABLES and not plan.columns & BLOCKED


@settings(max_examples=200, deadline=None)
@given(grammar_query(), st.sampled_from([
    " LIMIT 1", " OFFSET 1", " QUALIFY 1", " HAVING count(*) > 1", " USING SAMPLE 10%", "; SELECT 1",
    " UNION ALL SELECT count(*) FROM retail", " WINDOW w AS ()",
]))
def test_a_clause_outside_the_grammar_is_refused_whatever_it_follows(sql, tail):
    with pytest.raises(Refused):
        check(sql + tail, tables=TABLES, blocked=BLOCKED)
