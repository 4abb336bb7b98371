"""Composition root: builds the kernel, then each domain in layer order (gunicorn "app:app")."""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask

import certification
import console
import delivery
import listings
import trading
from exchange.jobs import scheduler as jobs
from exchange.kernel import create_kernel, finish_kernel

ROOT = os.path.dirname(os.path.abspath(__file__))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app, api = create_kernel(__name__, ROOT, config)
    # Each domain wires itself on this app (routes, CLI, jobs, event types, ledger access, metrics, demo).
    listings.init_app(app, api)        # catalog, revisions, search, fairs and stalls
    certification.init_app(app, api)   # reviews, certificates, objections, cross-border white list
    trading.init_app(app, api)         # procurement, matching, offers, contracts, trades, settlement
    delivery.init_app(app, api)        # entitlements, releases and storage, downloads, the access log
    console.init_app(app, api)         # the web console: pages over the same services (CONSOLE.md)
    finish_kernel(app, api)
    _register_commands(app)
    return app


def _register_commands(app: Flask) -> None:
    @app.cli.command("sweep")
    def sweep() -> None:
        """Persist time-based states (expiries, ended notice periods) and purge old records."""
        # Every sweep registered with exchange.jobs.register_sweep or register_periodic (the same the
        # worker runs).
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
