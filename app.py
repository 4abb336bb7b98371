"""Composition root: builds the kernel, then each domain in layer order (gunicorn "app:app")."""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask

from exchange import demo as exchange_demo
from exchange import jobs
from exchange.db import db
from exchange.kernel import create_kernel
from exchange.ledger import routes as ledger_routes

ROOT = os.path.dirname(os.path.abspath(__file__))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app, api = create_kernel(__name__, ROOT, config)
    # exchange.ledger (issue 6): read API of the double-entry ledger.
    api.register_blueprint(ledger_routes.blp)
    _register_commands(app)
    return app


def _register_commands(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Only seed a database that has no organizations yet")
    def seed_demo(if_empty: bool) -> None:
        """Load the demo data in layer order (each domain seeds its own); safe to run again."""
        if app.config["DATAFAIR_ENV"] == "production":
            raise click.ClickException("seed-demo refuses to run in production")
        if if_empty and exchange_demo.has_data(db.session):
            click.echo("database already has data; demo not re-seeded")
        else:
            exchange_demo.seed(db.session)
            db.session.commit()
        click.echo(f"demo logins (password: {exchange_demo.DEMO_PASSWORD}):")
        for email, org_type, name in exchange_demo.demo_logins(db.session):
            click.echo(f"  {org_type:<10} {email:<32} {name}")

    @app.cli.command("sweep")
    def sweep() -> None:
        """Persist time-based states (expiries, ended notice periods) and purge old records."""
        # Every sweep registered with exchange.jobs.register_periodic (the same the worker runs).
        for name, result in jobs.run_group("sweep").items():
            click.echo(f"sweep: {name}: {result}")


app = create_app()
# Background jobs: `celery -A app:celery worker` and `celery -A app:celery beat` (deploy/README.md).
celery = app.extensions["celery"]
