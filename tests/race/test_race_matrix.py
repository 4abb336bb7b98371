"""The race matrix (tests.race.matrix) on real PostgreSQL: every state-changing route raced with N
identical requests, and conflicting requests raced in pairs on one object. Each request runs in its
own thread, test client and app context, hence its own session and PostgreSQL connection.

A route of the app's URL map that writes (POST, PATCH, PUT, DELETE) without a row or an exemption fails.

Size when written: 55 rows over the 47 writing routes not exempted (2 are), x 8 requests, and 18
pairs of 8 or 12 requests (4 of each side) — about 600 racing requests, 40-75 s on 2 shared cores. The
`env` fixture prints the current numbers (`-s`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from app import create_app
from exchange.db import db
from tests.conftest import TEST_CONFIG
from tests.consistency import problems
from tests.factories import ApiHelper
from tests.race.harness import (
    Answer,
    Findings,
    N,
    changes,
    losers_are_refusals,
    release,
    scalar,
    serializable,
    watermark,
)
from tests.race.matrix import EXEMPT, PAIRS, ROWS, Env, Pair, Row
from tests.security.test_authorization_matrix import openapi_path

WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def _params(items: list[Any]) -> list[Any]:
    return [pytest.param(x, id=x.name, marks=[pytest.mark.xfail(strict=True, reason=x.xfail)] if x.xfail else [])
            for x in items]


def test_every_state_changing_route_has_a_row_or_an_exemption(_session_app):
    # The console's forms (console.*) call the very services these rows race through the API (it holds
    # no rule or lock of its own), so their races are these rows'.
    routes = {(m, openapi_path(rule.rule)) for rule in _session_app.url_map.iter_rules()
              if not rule.endpoint.startswith("console.") for m in rule.methods & WRITES}
    covered = {(row.method, row.rule) for row in ROWS} | set(EXEMPT)
    missing = sorted(routes - covered)
    assert not missing, f"state-changing routes without a race row or an exemption: {missing}"
    stale = sorted(covered - routes)
    assert not stale, f"race rows for routes the app does not have: {stale}"


@pytest.fixture(scope="module")
def env(_session_app: Any, database: Any) -> Any:
    """One exchange for the whole matrix (each row makes objects of its own), served by an app whose
    pool holds a connection for every racing request and its short bookkeeping transactions."""
    database.reset(_session_app)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database.url, "DB_POOL_SIZE": N + 4,
                      "DB_MAX_OVERFLOW": N + 4, "STORAGE_URL": _session_app.config["STORAGE_URL"]})
    started = time.perf_counter()
    built = Env(ApiHelper(app))
    print(f"race matrix: {len(ROWS)} rows x {N} requests, {len(PAIRS)} pairs; "
          f"world built in {time.perf_counter() - started:.1f}s")
    yield built
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _audit_count(env: Env, object_id: str | None, action: str | None) -> int:
    if not object_id or not action:
        return 0
    r = env.api.get(f"audit?object_id={object_id}&action={action}&per_page=100", env.op)
    assert r.status_code == 200, r.get_json()
    return len(r.get_json()["items"])


def _ledger_green(found: Findings, env: Env) -> None:
    """The ledger verifies (GET /ledger/verify) and every trade, payment, contract and balance agrees
    with it (tests.consistency)."""
    report = env.api.get("ledger/verify", env.op).get_json()
    found.check(report["balanced"] and report["chain_valid"], f"ledger verify: {report}")
    with env.app.app_context():
        found.items.extend(problems(db.session))


def _report(found: Findings, answers: list[Answer]) -> str:
    return "\n".join([*found.items, "answers:", *(a.show() for a in answers)])


@pytest.mark.postgres
@pytest.mark.parametrize("row", _params(ROWS))
def test_race_row(env: Env, row: Row) -> None:
    for _ in range(row.rounds):
        _race_row(env, row)


def _race_row(env: Env, row: Row) -> None:
    case = row.setup(env)
    since = watermark(env.app)
    audit_before = _audit_count(env, case.audit_id, case.audit)
    count_before = scalar(env.app, case.count[0], **case.count[1]) if case.count else 0
    answers = release(env.app, [case.call] * N)
    found = Findings()
    wins = [a for a in answers if a.ok]
    if row.kind == "create":
        found.check(len({a.raw for a in wins}) == 1, "the successes are not replays of one response")
        found.check(sum(1 for a in wins if not a.replayed) == 1,
                    f"{sum(1 for a in wins if not a.replayed)} original (not replayed) successes")
        for a in answers:
            if not a.ok:
                found.check(a.status == 409 and b"in flight" in a.raw, f"not a replay nor 'in flight': {a.show()}")
    elif row.kind == "once":
        found.check(len(wins) == 1, f"{len(wins)} successes, want exactly one")
    else:
        found.check(len(wins) == N, f"{len(wins)} of {N} repeatable edits succeeded")
    losers_are_refusals(found, answers, row.losers)
    if case.obj is not None:
        chain = changes(env.app, since, *case.obj)
        want = [(case.initial, case.target)] if wins else []
        found.check(chain == want, f"status changes of {case.obj}: {chain}, want {want}")
    if case.read is not None and case.target is not None:
        shown = env.api.get(case.read, case.reader or env.op).get_json()
        found.check(shown.get("status") == case.target, f"{case.read} shows {shown.get('status')}, want {case.target}")
    if case.count is not None:
        delta = scalar(env.app, case.count[0], **case.count[1]) - count_before
        found.check(delta == 1, f"{delta} rows created, want 1 ({case.count[0]})")
    if case.audit is not None:
        delta = _audit_count(env, case.audit_id, case.audit) - audit_before
        found.check(delta == 1, f"{delta} audit events {case.audit}, want 1")
    if case.check is not None:
        found.items.extend(case.check(env, answers))
    _ledger_green(found, env)
    assert not found, _report(found, answers)


@pytest.mark.postgres
@pytest.mark.parametrize("pair", _params(PAIRS))
def test_race_pair(env: Env, pair: Pair) -> None:
    case = pair.setup(env)
    since = watermark(env.app)
    answers = release(env.app, case.calls)
    found = Findings()
    losers_are_refusals(found, answers, pair.losers)
    if case.obj is not None:
        final = env.api.get(case.read, case.reader or env.op).get_json().get("status") if case.read else None
        serializable(found, answers, changes(env.app, since, *case.obj), case.initial, final, case.moves)
    if case.check is not None:
        found.items.extend(case.check(env, answers))
    _ledger_green(found, env)
    assert not found, _report(found, answers)
