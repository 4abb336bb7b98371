"""CLI of identity: `create-operator`, and `seed-demo` (the demo organizations, then each layer's seeder)."""

from __future__ import annotations

import sys

import click
from flask import Flask

from exchange.db import db
from exchange.errors import DomainError
from exchange.identity import demo
from exchange.identity import services as identity


def init_app(app: Flask) -> None:
    @app.cli.command("create-operator")
    @click.option("--org", "org_name", required=True, help="Name of the exchange's operator organization")
    @click.option("--email", required=True)
    @click.option("--password", required=True, help="At least 12 characters")
    @click.option("--name", default="Exchange operator", show_default=True)
    def create_operator(org_name: str, email: str, password: str, name: str) -> None:
        """Create the exchange's operator organization (verified) and its admin; idempotent."""
        try:
            org, user, created = identity.create_operator(db.session, org_name=org_name, email=email,
                                                          password=password, name=name)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            click.echo(f"error: {exc.detail}", err=True)
            sys.exit(1)
        verb = "created" if created else "already exists"
        click.echo(f"operator {user.email} {verb} in organization {org.name} ({org.id})")

    @app.cli.command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Only seed a database that has no organizations yet")
    def seed_demo(if_empty: bool) -> None:
        """Load the demo data in layer order (each domain seeds its own); safe to run again."""
        if app.config["DATAFAIR_ENV"] == "production":
            raise click.ClickException("seed-demo refuses to run in production")
        if if_empty and demo.has_data(db.session):
            click.echo("database already has data; demo not re-seeded")
        else:
            demo.seed_all(db.session, app)
            db.session.commit()
        click.echo(f"demo logins (password: {demo.DEMO_PASSWORD}):")
        for email, org_type, name in demo.demo_logins(db.session):
            click.echo(f"  {org_type:<10} {email:<32} {name}")
