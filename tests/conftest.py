"""Test fixtures: a real SQLite file (copied from a migrated template per test) or a real PostgreSQL
database (created fresh for this run, migrated once, truncated per test).

`DATAFAIR_TEST_DB=postgres` with `TEST_POSTGRES_URL` selects PostgreSQL; the default is SQLite.
Tests marked `postgres` need real concurrent connections and are skipped (visibly) on SQLite.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

os.environ.setdefault("DATAFAIR_ENV", "testing")
os.environ.setdefault("DATAFAIR_SECRET_KEY", "test-secret-key-" + "x" * 40)
# The module-level `app` of app.py must not touch the developer's instance database.
os.environ.setdefault("DATABASE_URL", "sqlite:///" + os.path.join(tempfile.gettempdir(),
                                                                    f"datafair-import-{os.getpid()}.db"))

from app import create_app
from exchange.db import db
from tests.localstripe import localstripe, webhook_receiver  # noqa: F401 - fixtures for Stripe tests

BACKEND = os.environ.get("DATAFAIR_TEST_DB", "sqlite")
PG_URL = os.environ.get("TEST_POSTGRES_URL", "")
TEST_CONFIG = {
    "DATAFAIR_ENV": "testing",
    "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
    "LOGIN_RATE_LIMIT": "1000/minute",
    "WRITE_RATE_LIMIT": "10000/minute",
    # The suite registers many organizations from one address; the registration tests lower it.
    "REGISTRATION_RATE_LIMIT": "100000/hour",
    "REDIS_URL": None,
}


class NextStepCheckingClient(FlaskClient):
    """Every 403 and 409 problem the suite is answered must say what to do next (`next_step`).

    Installed as every Flask app's test client (`Flask.test_client_class`), so each response of the
    whole suite, whichever app or fixture made the client, is checked."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        if response.status_code in (403, 409) and response.mimetype == "application/problem+json":
            body = response.get_json(silent=True) or {}
            step = body.get("next_step")
            if not (isinstance(step, str) and step.strip()):
                request = response.request
                pytest.fail(f"{response.status_code} without a next_step: {request.method} {request.path}: "
                            f"{response.get_data(as_text=True)}", pytrace=False)
        return response


Flask.test_client_class = NextStepCheckingClient


def pytest_report_header(config: Any) -> str:
    return f"datafair test database: {BACKEND}" + (f" ({_redact(PG_URL)})" if BACKEND == "postgres" else "")


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True) if url else ""


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if BACKEND == "postgres":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (run with DATAFAIR_TEST_DB=postgres TEST_POSTGRES_URL=...)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


# -- xdist scheduling -------------------------------------------------------------------------------------
# `make test` runs `-n 2 --dist loadfile`: a module's tests share one worker, so a module-scoped world
# (shared_world, the sandbox's bought products, the localstripe lock) is built once. xdist hands the
# files out largest test count first, which puts the few files of one or five very long tests (the
# schemathesis sweep, the state machines, the gunicorn peers) last: one worker then runs them alone
# while the other has finished. The order below only changes which file starts first, never what runs.
#
# Rough seconds of each slow file on 2 busy cores (--durations, SQLite run); files not listed follow in
# xdist's own order.
SLOW_FILES = {
    "tests/api/test_schemathesis.py": 720,
    "tests/integration/test_entitlement_machine.py": 300,
    "tests/integration/test_scaleout_proof.py": 120,  # PostgreSQL only
    "tests/integration/test_worker_kill.py": 90,  # PostgreSQL only
    "tests/api/test_ratelimit.py": 70,
    "tests/api/test_stats_exact.py": 55,
    "tests/integration/test_usage_money.py": 45,
    "tests/security/test_api6_business_flows.py": 45,
    "tests/security/test_gateway_edges.py": 42,
    "tests/api/test_dossiers.py": 40,
    "tests/integration/test_ledger_verify_large.py": 37,
    "tests/security/test_api1_bola.py": 33,
    "tests/api/test_catalog_search.py": 29,
    "tests/security/test_authorization_matrix.py": 28,
    "tests/security/test_api3_property_authorization.py": 27,
    "tests/api/test_metrics_and_health.py": 27,
    "tests/security/test_chunked_body_limit.py": 25,
    "tests/security/test_api2_authentication.py": 22,
    "tests/unit/test_sandbox_sql.py": 21,
    "tests/security/test_api4_resource_consumption.py": 20,
    "tests/security/test_api8_misconfiguration.py": 19,
    "tests/security/test_api5_function_authorization.py": 18,
    "tests/api/test_openapi_gate.py": 17,
    "tests/api/test_delivery_entitlements.py": 17,
    "tests/api/test_fault_injection.py": 15,
}
# Files whose tests share no module-scoped fixture and are each long: one work unit per test, so that
# both workers share them (each schemathesis principal builds its own world through `api`).
PER_TEST_FILES = {"tests/api/test_schemathesis.py"}


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    """`--dist load` and `--dist loadfile`: file-grouped units, the slowest files first (see above)."""
    if config.getvalue("dist") not in ("load", "loadfile"):
        return None
    from xdist.scheduler import LoadFileScheduling

    class SlowFirstFileScheduling(LoadFileScheduling):
        _ordered = False

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path in PER_TEST_FILES else path

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:  # the queue is complete on the first assignment
                self._ordered = True
                units = list(self.workqueue.items())
                rank = {scope: i for i, (scope, _) in enumerate(units)}
                units.sort(key=lambda u: (-SLOW_FILES.get(u[0].split("::", 1)[0], 0), rank[u[0]]))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return SlowFirstFileScheduling(config, log)


class Database:
    """One database for this test run, reset to its migrated state before each test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        if BACKEND == "postgres":
            if not PG_URL:
                raise RuntimeError("DATAFAIR_TEST_DB=postgres needs TEST_POSTGRES_URL")
            base = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            self.name = f"datafair_test_{os.getpid()}_{secrets.token_hex(4)}"
            self.admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.url = base.set(database=self.name).render_as_string(hide_password=False)
        else:
            self.template = tmp / "template.db"
            self.path = tmp / "test.db"
            self.url = f"sqlite:///{self.path}"

    def migrate(self, app: Any) -> None:
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
            db.engine.dispose()
            if BACKEND == "postgres":
                with db.engine.connect() as conn:
                    self.tables = [r[0] for r in conn.execute(text(
                        "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename<>'alembic_version'"
                    ))]
            else:
                shutil.copyfile(self.path, self.template)

    def reset(self, app: Any) -> None:
        with app.app_context():
            db.session.remove()
            if BACKEND == "postgres":
                with db.engine.begin() as conn:
                    conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in self.tables)
                                      + " RESTART IDENTITY CASCADE"))
            else:
                db.engine.dispose()
                for suffix in ("", "-wal", "-shm"):
                    Path(str(self.path) + suffix).unlink(missing_ok=True)
                shutil.copyfile(self.template, self.path)

    def drop(self) -> None:
        if BACKEND == "postgres":
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.admin.dispose()


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(tmp_path_factory.mktemp("db"))
    yield database
    database.drop()


@pytest.fixture(scope="session")
def _session_app(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # Release files of this worker's tests (content-addressed, so tests never collide).
    storage = "file://" + str(tmp_path_factory.mktemp("storage"))
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database.url, "STORAGE_URL": storage})
    database.migrate(app)
    # Engines are created lazily; make sure this app's engine points at the per-test database.
    with app.app_context():
        db.engine.dispose()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(_session_app: Any, database: Database) -> Iterator[Any]:
    """The application on a freshly reset database; config changes are undone after the test."""
    saved = dict(_session_app.config)
    database.reset(_session_app)
    yield _session_app
    _session_app.config.clear()
    _session_app.config.update(saved)
    with _session_app.app_context():
        db.session.remove()


@pytest.fixture
def make_app(database: Database, app: Any) -> Any:
    """Build another app instance on the same (already reset) database, with config overrides."""
    made: list[Any] = []

    def factory(**overrides: Any) -> Any:
        new = create_app({**TEST_CONFIG, "DATABASE_URL": database.url, **overrides})
        made.append(new)
        return new

    yield factory
    for new in made:
        with new.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def session(app: Any) -> Iterator[Any]:
    """A database session inside an app context, for service-level tests."""
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def api(app: Any) -> Any:
    from tests.factories import ApiHelper

    return ApiHelper(app)


@pytest.fixture(scope="module")
def shared_world(_session_app: Any, database: Database) -> Iterator[Any]:
    """One populated exchange (tests.world) for a whole module whose tests do not disturb each other
    (refusals, sweeps of reads, writes of their own objects). Such a module uses only this fixture:
    a test asking for `app` or `api` would reset the database under the others."""
    from tests.factories import ApiHelper
    from tests.world import build_world

    saved = dict(_session_app.config)
    database.reset(_session_app)
    yield build_world(ApiHelper(_session_app))
    _session_app.config.clear()
    _session_app.config.update(saved)
    with _session_app.app_context():
        db.session.remove()
