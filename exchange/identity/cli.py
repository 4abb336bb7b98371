"""CLI of identity: `create-operator`."""

from __future__ import annotations

import sys

import click
from flask import Flask

from exchange.db import db
from exchange.errors import DomainError
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
