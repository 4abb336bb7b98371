"""Composition root: builds the kernel, then each domain in layer order (gunicorn "app:app")."""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask

from certification import demo as certification_demo
from certification import routes as certification_routes
from certification import services as certification_services
from exchange.db import db
from exchange.identity import demo as exchange_demo
from exchange.jobs import scheduler as jobs
from exchange.kernel import create_kernel
from listings import demo as listings_demo
from listings import routes as listings_routes
from trading import demo as trading_demo
from trading import routes as trading_routes
from trading import services as trading_services

ROOT = os.path.dirname(os.path.abspath(__file__))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app, api = create_kernel(__name__, ROOT, config)
    # listings: catalog, revisions, search, fairs and stalls
    api.register_blueprint(listings_routes.blp)
    api.register_blueprint(listings_routes.fairs_blp)
    # certification: reviews, certificates, objections, cross-border white list
    api.register_blueprint(certification_routes.blp)
    # trading: procurement, matching, offers, contracts, signatures, trades and their money flow
    api.register_blueprint(trading_routes.blp)
    certification_services.register_jobs()
    trading_services.register_jobs()
    trading_services.register_metrics()
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
            orgs = exchange_demo.seed(db.session)
            listings_demo.seed(db.session, orgs)
            certification_demo.seed(db.session, orgs)
            trading_demo.seed(db.session, orgs)
            db.session.commit()
        click.echo(f"demo logins (password: {exchange_demo.DEMO_PASSWORD}):")
        for email, org_type, name in exchange_demo.demo_logins(db.session):
            click.echo(f"  {org_type:<10} {email:<32} {name}")

    @app.cli.command("sweep")
    def sweep() -> None:
        """Persist time-based states (expiries, ended notice periods) and purge old records."""
        # Every sweep registered with exchange.jobs.register_periodic (the same the worker runs).
        failed = []
        for name, result in jobs.run_group("sweep").items():
            click.echo(f"sweep: {name}: {result}")
            if isinstance(result, str) and result.startswith("error"):
                failed.append(name)
        if failed:
            # Each job ran in its own transaction: the others' work is kept; cron and CI see the failure.
            raise click.ClickException(f"sweep jobs failed: {', '.join(failed)}")


app = create_app()
# Background jobs: `celery -A app:celery worker` and `celery -A app:celery beat` (deploy/README.md).
celery = app.extensions["celery"]
