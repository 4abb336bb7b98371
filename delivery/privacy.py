"""From the engine's groups to the buyer's answer: the k threshold, and differential privacy where
people are in the data.

Exact mode (no budget): groups of fewer than k rows were dropped by the query itself (and counted);
the others are released as computed.

Under a budget (`epsilon` for this query), every released number is noised through OpenDP's Laplace
mechanism (`opendp.measurements.make_laplace`; on integers it is the discrete Laplace):

- the query's epsilon is split evenly over its measures: the row count `_n` of every group (used for
  the k threshold and for `count(*)`), and one measure per other aggregate (`count(col)`,
  `count(DISTINCT col)`, a sum; an average is a sum and a count, divided after noising);
- one person contributes at most `rows_per_person` rows, so over all groups together a count moves
  by at most `rows_per_person` (the L1 sensitivity of the vector of counts) and a clamped sum by
  `rows_per_person * max(|low|, |high|)`: the scale is sensitivity / (its share of epsilon), and
  OpenDP's own privacy map checks that the measurement spends no more than that share;
- a group is released only when its **noised** row count reaches the threshold
  `max(k, r + b * ln(1 / (2 * DELTA)))`, `b` the count's Laplace scale and `r` the rows per person;
  the dropped ones are counted.

Which groups exist at all is not hidden by noise alone (only groups with rows can be released). A
group of one person passes the threshold only if its noise exceeds `b * ln(1/(2 DELTA))`, which
happens with probability DELTA: the key set is (epsilon, DELTA)-DP, the usual rule for releasing the
groups of a DP GROUP BY (docs/decisions.md). A threshold of plain k would release a one-person
group's key about half the time at a small epsilon, where the noise dwarfs k. Rounding and
clamping after the noise are post-processing: free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from delivery.sandbox_sql import Plan

MICRO = 1_000_000
DELTA = 1e-6  # the probability that a group of one person's rows is released at all


@dataclass(frozen=True)
class Answer:
    columns: list[str]
    rows: list[list[Any]]
    suppressed_groups: int
    truncated: bool


@cache
def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def laplace(values: list[Any], *, sensitivity: float, epsilon: float, integer: bool) -> list[Any]:
    """`values` with Laplace noise of scale sensitivity/epsilon (discrete on integers), through OpenDP;
    the measurement's privacy map is checked to spend at most `epsilon`."""
    if not values:
        return []
    dp = _opendp()
    scale = sensitivity / epsilon
    if integer:
        space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
        d_in: Any = int(sensitivity)
    else:
        space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)
        d_in = float(sensitivity)
        values = [float(v) for v in values]
    meas = dp.m.make_laplace(*space, scale=scale)
    spent = meas.map(d_in=d_in)
    if spent > epsilon * (1 + 1e-9):  # pragma: no cover - OpenDP's own accounting disagreeing with ours
        raise RuntimeError("the noise would spend more than its share of epsilon")
    return list(meas(values))


def finish(plan: Plan, names: list[str], rows: list[list[Any]], *, k: int, max_groups: int,
           epsilon: float | None, bounds: dict[str, list[float]], rows_per_person: int) -> Answer:
    """The buyer's answer from the engine's rows (`names`: `_suppressed`, `_k*`, `_n`, `_m*`, `_c*`)."""
    col = {name: i for i, name in enumerate(names)}
    suppressed = int(rows[0][col["_suppressed"]] or 0) if rows else 0
    groups = [r for r in rows if r[col["_n"]] is not None]
    if epsilon is not None:
        groups, dropped = _noised(plan, col, groups, epsilon=epsilon, k=k, bounds=bounds, r=rows_per_person)
        suppressed += dropped
    out = [[_cell(plan, i, o, g, col, noised=epsilon is not None, bounds=bounds) for i, o in enumerate(plan.outputs)]
           for g in groups]
    for name, desc in reversed(plan.order):
        j = plan.names.index(name)
        # Nulls last either way (the flag orders them; their value is never compared).
        out.sort(key=lambda row, j=j, desc=desc: ((row[j] is None) != desc, 0 if row[j] is None else row[j]),
                 reverse=desc)
    return Answer(columns=plan.names, rows=out[:max_groups], suppressed_groups=suppressed,
                  truncated=len(out) > max_groups)


def _measures(col: dict[str, int]) -> list[str]:
    return ["_n"] + [name for name in col if name.startswith(("_m", "_c"))]


def _noised(plan: Plan, col: dict[str, int], groups: list[list[Any]], *, epsilon: float, k: int,
            bounds: dict[str, list[float]], r: int) -> tuple[list[list[Any]], int]:
    measures = _measures(col)
    share = epsilon / len(measures)
    noised = [list(g) for g in groups]
    for name in measures:
        j = col[name]
        values = [g[j] or 0 for g in groups]
        output = plan.outputs[int(name[2:])] if name != "_n" else None
        if output is None or name.startswith("_c") or output.func in ("count", "count_distinct"):
            result = laplace(values, sensitivity=r, epsilon=share, integer=True)
            result = [max(0, int(v)) for v in result]
        else:  # a clamped sum
            low, high = bounds[output.column or ""]
            integer = all(isinstance(v, int) for v in values) and float(low).is_integer() and float(high).is_integer()
            sensitivity = r * max(abs(low), abs(high))
            result = laplace([int(v) for v in values] if integer else values,
                             sensitivity=int(sensitivity) if integer else float(sensitivity), epsilon=share,
                             integer=integer)
        for g, v in zip(noised, result, strict=True):
            g[j] = v
    threshold = release_threshold(k=k, rows_per_person=r, share=share)
    kept = [g for g in noised if g[col["_n"]] >= threshold]
    return kept, len(noised) - len(kept)


def release_threshold(*, k: int, rows_per_person: int, share: float) -> float:
    """The noised row count a group needs to be released: k, or more where the count's noise (scale
    rows_per_person / share) could lift a one-person group past k with probability above DELTA."""
    scale = rows_per_person / share
    return max(float(k), rows_per_person + scale * math.log(1 / (2 * DELTA)))


def _cell(plan: Plan, i: int, output: Any, g: list[Any], col: dict[str, int], *, noised: bool,
          bounds: dict[str, list[float]]) -> Any:
    if output.func is None:
        return g[col[f"_k{plan.keys.index(output.column)}"]]
    if output.func == "count" and output.column is None:
        return g[col["_n"]]
    value = g[col[f"_m{i}"]]
    if noised and output.func == "avg":
        count = g[col[f"_c{i}"]]
        low, high = bounds[output.column]
        return None if count <= 0 else min(max(value / count, low), high)
    return value
