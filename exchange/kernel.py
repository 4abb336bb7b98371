"""Builds the kernel on a Flask app: config, database, migrations, API, error model, request hooks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import UnicodeConverter

from exchange import http, logs, metrics, ratelimit, sequences  # noqa: F401 - sequences registers its table
from exchange.api import Api, JSONProvider, init_api
from exchange.config import load_config, validate_config
from exchange.db import db, engine_options, normalize_database_url, replica_binds
from exchange.db import init_app as db_teardown
from exchange.errors import register_error_handlers

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
MAX_PATH_VALUE = 64


class BoundedString(UnicodeConverter):
    """The default path converter with an upper bound (ids, certificate numbers), documented as maxLength."""

    def __init__(self, map: Any, minlength: int = 1, maxlength: int | None = MAX_PATH_VALUE,
                 length: int | None = None) -> None:
        super().__init__(map, minlength=minlength, maxlength=maxlength, length=length)
migrate = Migrate()


def create_kernel(import_name: str, root: str, config: dict[str, Any] | None = None) -> tuple[Flask, Api]:
    """A Flask app with the kernel installed; domains register their blueprints on the returned Api."""
    settings = load_config()
    settings.update(config or {})
    validate_config(settings)
    # No static folder: every route is an API route in the OpenAPI document (the docs serve their own).
    app = Flask(import_name, root_path=root, instance_path=os.path.join(root, "instance"), static_folder=None)
    # Every <id> in a route is at most MAX_PATH_VALUE characters (longer: no route matches, 404).
    app.url_map.converters["default"] = BoundedString
    app.json_provider_class = JSONProvider
    app.json = JSONProvider(app)
    app.config.update(settings)
    app.config["DEBUG"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(settings["DATABASE_URL"], root)
    pool = {"pool_size": settings["DB_POOL_SIZE"], "max_overflow": settings["DB_MAX_OVERFLOW"],
            "lock_timeout_ms": settings["LOCK_TIMEOUT_MS"], "statement_timeout_ms": settings["STATEMENT_TIMEOUT_MS"],
            "idle_in_transaction_timeout_ms": settings["IDLE_IN_TRANSACTION_TIMEOUT_MS"],
            "application_name": settings["DB_APPLICATION_NAME"]}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config["SQLALCHEMY_DATABASE_URI"], **pool)
    app.config["SQLALCHEMY_BINDS"] = replica_binds(settings.get("DATABASE_REPLICA_URL"), root, **pool)
    if settings.get("TRUSTED_PROXIES"):
        n = int(settings["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    logs.configure()
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)
    ratelimit.init_app(app)
    api = init_api(app)
    register_error_handlers(app)
    http.init_app(app)
    from exchange import events, identity, jobs, ledger, payments, signing

    # The kernel's subpackages in their layer order, each wiring itself (routes, CLI, collectors, jobs).
    identity.init_app(app, api)
    signing.init_app(app, api)
    events.init_app(app, api)
    ledger.init_app(app, api)
    payments.init_app(app, api)
    jobs.init_app(app, api)
    metrics.init_app(app)
    db_teardown(app)
    return app, api


def finish_kernel(app: Flask, api: Api) -> None:
    """After every domain's init_app: what the kernel documents from the domains' registrations
    (the webhook endpoints' event types and the ledger's account purposes in the OpenAPI document)."""
    from exchange import events, ledger

    events.document_event_types(app, api)
    ledger.document_purposes(app, api)
