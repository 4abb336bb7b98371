"""Authorization comes before the body (issue 21): a caller who may never do a write gets its 403 (or
the 404 of an object it may not see) whatever it sends, never a 422 that lists the fields it would
have to fill in to learn it.

Table-driven over the authorization matrix (tests.security.matrix.ROWS): every write with a body and
a 403 or 404 for some principal is sent, as that principal, an empty body (`{}`; an empty upload for
a file upload) and a body of the wrong type (`[]`), and must answer the matrix's status, changing
nothing in the database.
"""

from __future__ import annotations

import hashlib

import pytest

from exchange.db import db
from exchange.errors import PROBLEM_JSON
from tests.certflow import product_body
from tests.security.matrix import ROWS, Row, send
from tests.world import PRINCIPALS

BODY_METHODS = {"POST", "PATCH", "PUT"}
REFUSALS = (403, 404)
# Bookkeeping that a refusal may write by design (STYLE: it survives the rollback): rate-limit counters
# and Idempotency-Key records. Every other table must be byte for byte the same after a refusal.
BOOKKEEPING = {"rate_limit_counters", "idempotency_keys", "alembic_version"}


# Where the matrix's 404 comes from an object named in the body, not in the URL, a caller who may do the
# operation gets the 422 of its empty body: without the body there is nothing it could not see.
BODY_NAMES_THE_OBJECT = {("POST", "/api/v1/certifications"): {"vendor2": 422}}


def _refused(row: Row) -> list[str]:
    return [p for p in PRINCIPALS if p != "anonymous" and row.expect[p] in REFUSALS]


def _expected(row: Row, principal: str) -> int:
    return BODY_NAMES_THE_OBJECT.get((row.method, row.rule), {}).get(principal, row.expect[principal])


ROWS_WITH_BODY = [row for row in ROWS if row.method in BODY_METHODS and row.body is not None and _refused(row)]


@pytest.fixture
def world(shared_world):
    return shared_world


def _digest(app) -> dict[str, str]:
    """table -> sha256 of its rows (in a stable order): what a write would change."""
    out = {}
    with app.app_context():
        tables = [t for t in db.metadata.sorted_tables if t.name not in BOOKKEEPING]
        for table in tables:
            rows = db.session.execute(table.select()).all()
            out[table.name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
        db.session.rollback()
    return out


def _bodies(row: Row) -> list[tuple[str, object]]:
    if isinstance(row.body, bytes):
        return [("an empty upload", b"")]
    return [("{}", {}), ("[]", [])]


def test_the_class_covers_the_writes_it_is_about():
    """Guard against a matrix change silently emptying the table this test walks."""
    rules = {(row.method, row.rule) for row in ROWS_WITH_BODY}
    assert ("POST", "/api/v1/products") in rules
    assert ("POST", "/api/v1/offers/{offer_id}/counter") in rules
    assert ("PUT", "/api/v1/releases/{release_id}/files/{name}") in rules
    assert len(rules) >= 40


def test_refusals_come_before_the_body_is_validated(world):
    failures: list[str] = []
    app = world.api.app
    for row in ROWS_WITH_BODY:
        before = _digest(app)
        for principal in _refused(row):
            want = _expected(row, principal)
            for label, body in _bodies(row):
                r = send(world, row.method, world.fill(row.path), world.actors[principal], body)
                if r.status_code != want or r.mimetype != PROBLEM_JSON:
                    failures.append(f"{row.method} {row.path} as {principal} with {label}: {r.status_code} "
                                    f"{r.mimetype}, expected {want}: {r.get_data(as_text=True)[:160]}")
        after = _digest(app)
        changed = sorted(name for name in before if before[name] != after.get(name))
        if changed:
            failures.append(f"{row.method} {row.path}: refusals changed {changed}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


def test_a_caller_who_may_write_still_gets_the_fields_it_missed(world):
    """The check moves refusals ahead of validation, not validation away: the owner's empty product
    is a 422 naming the required fields."""
    r = send(world, "POST", "/api/v1/products", world.actors["owner"], {})
    assert r.status_code == 422 and r.mimetype == PROBLEM_JSON, r.get_json()
    assert "title" in r.get_json()["errors"], r.get_json()



def test_a_pending_vendor_learns_it_may_not_list_without_filling_in_a_product(world):
    """The issue's case: 403 naming the reason, for an empty body, a complete one, and one that would
    be refused for what it holds (a NUL character) alike."""
    pending = world.api.vendor(verified=False)
    for body in ({}, product_body(), {**product_body(), "title": "nul\u0000"}):
        r = send(world, "POST", "/api/v1/products", pending, body)
        assert r.status_code == 403 and r.mimetype == PROBLEM_JSON, r.get_json()
        assert "pending" in r.get_json()["detail"], r.get_json()
