"""The sandbox's SQL: a buyer's query, parsed and checked against an allow-list, rebuilt before it runs.

The buyer's text is parsed by sqlglot (DuckDB dialect) and checked twice on its syntax tree, never by
string matching:

1. every node of the tree is one of a short list of **exact** expression classes (`ALLOWED_NODES`:
   `Sum`, `Count`, `EQ`, ... — never a base class such as "any aggregate function"), so a window, a
   `FILTER`, a `CASE`, a join, a subquery, a table function or an unknown function is refused by its
   kind, whatever it is nested in;
2. the shape is the grammar of API.md and nothing else: one `SELECT` over one table of the release;
   every output is `count(*)` or an allowed aggregate of one bare column, or a `GROUP BY` key (a bare
   column); `WHERE` compares bare columns with literals, combined with `AND`/`OR`/`NOT`; `ORDER BY`
   names outputs. No argument of a node may be set beyond those the grammar uses (`DISTINCT`,
   `LIMIT`, `HAVING`, `SAMPLE`, `QUALIFY`, `GROUP BY ALL`, `ROLLUP`, `* EXCLUDE`... are arguments).
   Blocked columns may appear nowhere.

What runs is `Plan.sql()`: a new query written from the checked parts (identifiers quoted, literals
re-rendered from their values), with a per-group row count added, never the buyer's text. A refusal
names a reason code and the construct (never a value of the data); the buyer's own identifiers may be
named, they are the buyer's text.

`check(...)` costs well under a millisecond for a typical query (`make bench`, part `sandbox`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max")
DEFAULT_AGGREGATES = ("count", "count_distinct", "sum", "avg")
MAX_SQL_CHARS = 10_000
MAX_OUTPUTS = 32
MAX_KEYS = 8
MAX_IN_LIST = 1000
# Nesting of the syntax tree: a long AND/OR chain is a left-deep tree. The checker recurses along it
# and the rebuilt query parenthesizes each level (DuckDB has its own depth limit): capped first.
MAX_DEPTH = 400

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to a Command" is a refusal here

# The exact node classes the grammar is made of. Anything else anywhere in the tree is refused.
ALLOWED_NODES: frozenset[type[exp.Expression]] = frozenset({
    exp.Select, exp.From, exp.Table, exp.Identifier, exp.Column, exp.Alias, exp.Where, exp.Group,
    exp.Order, exp.Ordered, exp.Count, exp.Star, exp.Distinct, exp.Sum, exp.Avg, exp.Min, exp.Max,
    exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.In,
    exp.Between, exp.Is, exp.Null, exp.Boolean, exp.Literal, exp.Neg, exp.Cast, exp.DataType,
})
COMPARISONS: dict[type[exp.Expression], str] = {exp.EQ: "=", exp.NEQ: "<>", exp.LT: "<", exp.LTE: "<=",
                                                 exp.GT: ">", exp.GTE: ">="}
FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
FUNCTIONS: dict[type[exp.Expression], str] = {exp.Sum: "sum", exp.Avg: "avg", exp.Min: "min", exp.Max: "max"}
DATE_TYPES = {exp.DataType.Type.DATE: "DATE", exp.DataType.Type.TIMESTAMP: "TIMESTAMP"}
NUMBER = re.compile(r"^[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?$|^\.[0-9]+([eE][+-]?[0-9]+)?$")
# The clauses a SELECT of the grammar may carry; every other argument of the node must be unset.
SELECT_ARGS = frozenset({"expressions", "from", "from_", "where", "group", "order"})


class Refused(Exception):
    """The query is outside the grammar: `code` is the reason code, `sentence` says what to change."""

    def __init__(self, code: str, sentence: str) -> None:
        super().__init__(f"{code}: {sentence}")
        self.code, self.sentence = code, sentence

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.sentence}"


@dataclass(frozen=True)
class Output:
    """One column of the answer: a group key (`column`, no `func`) or an aggregate (`func`)."""

    name: str
    func: str | None          # count | count_distinct | sum | avg | min | max; None for a key
    column: str | None        # None for count(*)


@dataclass(frozen=True)
class Plan:
    """A checked query: what the answer's columns are and what to compute for them."""

    table: str
    outputs: tuple[Output, ...]
    keys: tuple[str, ...]
    where: str | None                       # rendered from the checked tree
    order: tuple[tuple[str, bool], ...]     # (output name, descending)
    columns: frozenset[str] = field(default_factory=frozenset)

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def measures(self, bounds: dict[str, tuple[float, float]] | None) -> list[tuple[str, str]]:
        """(alias, SQL) of every aggregate computed besides the row count `_n`. Under a budget
        (`bounds` given) a sum is of values clamped to the column's bounds, and an average is such a
        sum and a count (each noised, then divided)."""
        out: list[tuple[str, str]] = []
        for i, o in enumerate(self.outputs):
            if o.func is None or o.column is None:
                continue  # a key, or count(*) (= _n)
            col = self.column_sql(o.column)
            if o.func == "count":
                out.append((f"_m{i}", f"count({col})"))
            elif o.func == "count_distinct":
                out.append((f"_m{i}", f"count(DISTINCT {col})"))
            elif bounds is not None and o.func in ("sum", "avg"):
                low, high = bounds[o.column]
                out.append((f"_m{i}", f"sum(least(greatest({col}, {literal_number(low)}), {literal_number(high)}))"))
                if o.func == "avg":
                    out.append((f"_c{i}", f"count({col})"))
            else:
                out.append((f"_m{i}", f"{o.func}({col})"))
        return out

    def column_sql(self, column: str) -> str:
        return f"{quote(self.table)}.{quote(column)}"

    def sql(self, *, min_rows: int, cap: int, bounds: dict[str, tuple[float, float]] | None = None) -> str:
        """The query that runs: the groups (keys `_k*`, row count `_n`, measures `_m*`/`_c*`) with at
        least `min_rows` rows, at most `cap` + 1 of them, and the number of smaller groups
        (`_suppressed`). `bounds` (under a budget) clamps summed columns."""
        select = [f"{self.column_sql(k)} AS _k{i}" for i, k in enumerate(self.keys)] + ["count(*) AS _n"]
        select += [f"{expr} AS {alias}" for alias, expr in self.measures(bounds)]
        # Written from the checked parts only: identifiers quoted, literals re-rendered from their values.
        inner = f"SELECT {', '.join(select)} FROM {quote(self.table)}"  # noqa: S608
        if self.where:
            inner += f" WHERE {self.where}"
        if self.keys:
            inner += " GROUP BY " + ", ".join(self.column_sql(k) for k in self.keys)
        order = ", ".join(f"_k{i}" for i in range(len(self.keys))) or "_n"
        # One row even when every group is dropped, so that the count of dropped groups is known
        # (the groups' columns are then null).
        return (f"WITH g AS MATERIALIZED ({inner}) "  # noqa: S608
                f"SELECT s._suppressed, kept.* FROM (SELECT count(*) AS _suppressed FROM g WHERE _n < {int(min_rows)}) "
                f"AS s LEFT JOIN (SELECT * FROM g WHERE _n >= {int(min_rows)} ORDER BY {order} LIMIT {int(cap) + 1}) "
                f"AS kept ON TRUE ORDER BY {order}")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal_number(value: float | int) -> str:
    return repr(int(value)) if isinstance(value, int) or float(value).is_integer() else repr(float(value))


def check(sql: Any, *, tables: frozenset[str] | set[str], blocked: frozenset[str] | set[str] = frozenset(),
          allowed_aggregates: tuple[str, ...] | list[str] = DEFAULT_AGGREGATES, noised: bool = False) -> Plan:
    """The checked plan of `sql`, or Refused. `tables` are the release's table names, `blocked` the
    policy's blocked columns (lower case), `noised` whether a budget applies (min/max refused)."""
    if not isinstance(sql, str) or not sql.strip():
        raise Refused("syntax_error", "the query is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise Refused("too_long", f"a query is at most {MAX_SQL_CHARS} characters")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError):
        raise Refused("syntax_error", "the query could not be parsed as DuckDB SQL") from None
    if len(statements) != 1:
        raise Refused("one_statement", "send exactly one SELECT statement")
    tree = statements[0]
    if type(tree) is not exp.Select:
        raise Refused("not_a_select", f"only a SELECT is allowed, not {_kind(tree)}")
    for node in tree.walk():
        if type(node) not in ALLOWED_NODES:
            raise Refused("not_allowed", f"{_kind(node)} is not part of the sandbox's grammar")
    _shallow(tree)
    try:
        return _Checker(set(tables), set(blocked), tuple(allowed_aggregates), noised).select(tree)
    except RecursionError:
        raise Refused("too_deep", "the query nests too deeply; write the condition flatter") from None


def _shallow(tree: exp.Expression) -> None:
    """Refused (`too_deep`) past MAX_DEPTH levels, measured without recursion."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Refused("too_deep", f"the query nests more than {MAX_DEPTH} levels deep (a long chain of AND/OR "
                          "counts one level each); use IN (...) or BETWEEN, or split the query")
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def _kind(node: Any) -> str:
    """A construct's name for a refusal (its class: `Join`, `Window`, `Filter`...), never its text."""
    name = type(node).__name__
    return {"Command": "this statement", "Anonymous": "this function", "Star": "*"}.get(name, name)


def _unset(node: exp.Expression, allowed: set[str] | frozenset[str], what: str) -> None:
    for key, value in node.args.items():
        if key in allowed or value in (None, False, "", []):
            continue
        raise Refused("not_allowed", f"{what} cannot carry {key.upper().replace('_', ' ').strip()}")


class _Checker:
    def __init__(self, tables: set[str], blocked: set[str], aggregates: tuple[str, ...], noised: bool) -> None:
        self.tables, self.blocked, self.aggregates, self.noised = tables, blocked, aggregates, noised
        self.columns: set[str] = set()
        self.table = ""

    def select(self, tree: exp.Select) -> Plan:
        _unset(tree, SELECT_ARGS, "the SELECT")
        source = tree.args.get("from_") or tree.args.get("from")
        if source is None:
            raise Refused("one_table", "the query must read FROM one table of the release")
        self.table = self._table(source)
        keys = self._group(tree.args.get("group"))
        outputs = self._outputs(tree.expressions, keys)
        where = tree.args.get("where")
        rendered = self._condition(where.this) if where is not None else None
        order = self._order(tree.args.get("order"), outputs)
        return Plan(table=self.table, outputs=tuple(outputs), keys=tuple(keys), where=rendered, order=order,
                    columns=frozenset(self.columns))

    def _table(self, source: exp.Expression) -> str:
        _unset(source, {"this"}, "FROM")
        table = source.this
        if type(table) is not exp.Table or type(table.this) is not exp.Identifier:
            raise Refused("one_table", "read FROM one table of the release by its name")
        _unset(table, {"this"}, "the table")
        name = self._identifier(table.this)
        if name not in self.tables:
            raise Refused("unknown_table", f"the release has no table {name!r}; its tables are "
                          + ", ".join(sorted(self.tables)))
        return name

    def _identifier(self, ident: exp.Expression) -> str:
        if type(ident) is not exp.Identifier or not isinstance(ident.this, str):
            raise Refused("not_allowed", "names must be plain identifiers")
        _unset(ident, {"this", "quoted"}, "a name")
        return ident.this.lower()  # DuckDB's identifiers are case-insensitive, quoted or not

    def column(self, node: exp.Expression, where: str) -> str:
        """A bare column (no table, no struct field, no star), not blocked."""
        if type(node) is not exp.Column:
            raise Refused("bare_column", f"{where} must be a bare column, not {_kind(node)}")
        _unset(node, {"this"}, "a column")
        if type(node.this) is not exp.Identifier:
            raise Refused("bare_column", f"{where} must be a bare column, not {_kind(node.this)}")
        name = self._identifier(node.this)
        if name in self.blocked:
            raise Refused("blocked_column", f"the column {name!r} is blocked by the vendor's policy")
        self.columns.add(name)
        return name

    def _group(self, group: exp.Expression | None) -> list[str]:
        if group is None:
            return []
        _unset(group, {"expressions"}, "GROUP BY")
        keys = [self.column(e, "a GROUP BY key") for e in group.expressions]
        if not keys or len(keys) > MAX_KEYS or len(set(keys)) != len(keys):
            raise Refused("group_by", f"GROUP BY takes 1 to {MAX_KEYS} different bare columns")
        return keys

    def _outputs(self, expressions: list[exp.Expression], keys: list[str]) -> list[Output]:
        if not expressions or len(expressions) > MAX_OUTPUTS:
            raise Refused("outputs", f"select 1 to {MAX_OUTPUTS} outputs")
        outputs: list[Output] = []
        for e in expressions:
            name = None
            if type(e) is exp.Alias:
                _unset(e, {"this", "alias"}, "an alias")
                name = self._identifier(e.args["alias"])
                e = e.this
            outputs.append(self._output(e, name, keys))
        names = [o.name for o in outputs]
        if len(set(names)) != len(names):
            raise Refused("duplicate_output", "give every output a different name (AS ...)")
        if not any(o.func is not None for o in outputs):
            raise Refused("no_aggregate", "select at least one aggregate, e.g. count(*)")
        return outputs

    def _output(self, e: exp.Expression, name: str | None, keys: list[str]) -> Output:
        if type(e) is exp.Column:
            col = self.column(e, "an output")
            if col not in keys:
                raise Refused("not_grouped", f"the output {col!r} must also be a GROUP BY key")
            return Output(name or col, None, col)
        if type(e) is exp.Count:
            _unset(e, {"this", "big_int"}, "count()")
            arg = e.this
            if type(arg) is exp.Star:
                _unset(arg, set(), "count(*)")
                return self._aggregate("count", None, name or "count(*)")
            if type(arg) is exp.Distinct:
                _unset(arg, {"expressions"}, "count(DISTINCT ...)")
                if len(arg.expressions) != 1:
                    raise Refused("aggregate_argument", "count(DISTINCT ...) takes one bare column")
                col = self.column(arg.expressions[0], "the argument of count(DISTINCT ...)")
                return self._aggregate("count_distinct", col, name or f"count_distinct({col})")
            if arg is None:
                raise Refused("aggregate_argument", "count takes * or one bare column")
            col = self.column(arg, "the argument of count()")
            return self._aggregate("count", col, name or f"count({col})")
        func = FUNCTIONS.get(type(e))
        if func is None:
            raise Refused("output", f"an output is a GROUP BY key or an aggregate, not {_kind(e)}")
        _unset(e, {"this"}, f"{func}()")
        col = self.column(e.this, f"the argument of {func}()")
        return self._aggregate(func, col, name or f"{func}({col})")

    def _aggregate(self, func: str, column: str | None, name: str) -> Output:
        if func in ("min", "max") and self.noised:
            raise Refused("min_max_under_budget", f"{func}() reveals one row's value; it is refused under a "
                          "privacy budget")
        if func not in self.aggregates:
            raise Refused("aggregate_not_allowed", f"{func} is not among this product's allowed aggregates ("
                          + ", ".join(self.aggregates) + ")")
        return Output(name, func, column)

    # -- WHERE ---------------------------------------------------------------------------------------------
    def _condition(self, node: exp.Expression) -> str:
        kind = type(node)
        if kind in (exp.And, exp.Or):
            _unset(node, {"this", "expression"}, kind.__name__.upper())
            word = "AND" if kind is exp.And else "OR"
            return f"({self._condition(node.this)} {word} {self._condition(node.expression)})"
        if kind is exp.Not:
            _unset(node, {"this"}, "NOT")
            return f"(NOT {self._condition(node.this)})"
        if kind is exp.Paren:
            _unset(node, {"this"}, "a parenthesis")
            return self._condition(node.this)
        if kind in COMPARISONS:
            _unset(node, {"this", "expression"}, "a comparison")
            op = COMPARISONS[kind]
            left, right = node.this, node.expression
            if type(left) is exp.Column:
                return f"({self._where_column(left)} {op} {self._literal(right)})"
            if type(right) is exp.Column:
                return f"({self._where_column(right)} {FLIPPED[op]} {self._literal(left)})"
            raise Refused("where", "a comparison is between a bare column and a literal")
        if kind is exp.In:
            _unset(node, {"this", "expressions"}, "IN")
            values = node.expressions
            if not values or len(values) > MAX_IN_LIST:
                raise Refused("where", f"IN takes 1 to {MAX_IN_LIST} literals")
            return f"({self._where_column(node.this)} IN ({', '.join(self._literal(v) for v in values)}))"
        if kind is exp.Between:
            _unset(node, {"this", "low", "high"}, "BETWEEN")
            return (f"({self._where_column(node.this)} BETWEEN {self._literal(node.args['low'])} "
                    f"AND {self._literal(node.args['high'])})")
        if kind is exp.Is:
            _unset(node, {"this", "expression"}, "IS")
            if type(node.expression) is not exp.Null:
                raise Refused("where", "IS is only IS NULL or IS NOT NULL")
            return f"({self._where_column(node.this)} IS NULL)"
        raise Refused("where", f"WHERE compares bare columns with literals, not {_kind(node)}")

    def _where_column(self, node: exp.Expression) -> str:
        return f"{quote(self.table)}.{quote(self.column(node, 'a WHERE operand'))}"

    def _literal(self, node: exp.Expression) -> str:
        kind = type(node)
        if kind is exp.Literal:
            _unset(node, {"this", "is_string"}, "a literal")
            text = node.this
            if not isinstance(text, str):
                raise Refused("where", "a literal must be a number or a string")
            if node.is_string:
                return "'" + text.replace("'", "''") + "'"
            if not NUMBER.match(text):
                raise Refused("where", "a number literal must be written in decimal")
            return text
        if kind is exp.Neg:
            _unset(node, {"this"}, "a negative number")
            inner = node.this
            if type(inner) is not exp.Literal or inner.is_string:
                raise Refused("where", "only a number can be negative")
            return f"-{self._literal(inner)}"
        if kind is exp.Boolean:
            return "TRUE" if node.this else "FALSE"
        if kind is exp.Cast:
            target = node.args.get("to")
            if (type(node.this) is not exp.Literal or not node.this.is_string or type(target) is not exp.DataType
                    or target.this not in DATE_TYPES or target.expressions):
                raise Refused("where", "the only typed literals are DATE '...' and TIMESTAMP '...'")
            return f"{DATE_TYPES[target.this]} {self._literal(node.this)}"
        raise Refused("where", f"a comparison's other side must be a literal, not {_kind(node)}")

    # -- ORDER BY ------------------------------------------------------------------------------------------
    def _order(self, order: exp.Expression | None, outputs: list[Output]) -> tuple[tuple[str, bool], ...]:
        if order is None:
            return ()
        _unset(order, {"expressions"}, "ORDER BY")
        names = {o.name for o in outputs}
        out = []
        for item in order.expressions:
            if type(item) is not exp.Ordered:
                raise Refused("order_by", "ORDER BY names outputs")
            _unset(item, {"this", "desc", "nulls_first"}, "an ORDER BY item")
            target = item.this
            if type(target) is not exp.Column or type(target.this) is not exp.Identifier:
                raise Refused("order_by", "ORDER BY names outputs (by their name or alias)")
            _unset(target, {"this"}, "an ORDER BY item")
            name = self._identifier(target.this)
            if name not in names:
                raise Refused("order_by", f"ORDER BY names an output; {name!r} is not one")
            out.append((name, bool(item.args.get("desc"))))
        return tuple(out)
