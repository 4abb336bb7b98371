"""Kernel CLI: `create-operator` and the `keys` group (the exchange's signing keys)."""

from __future__ import annotations

import sys

import click
from flask import Flask

from exchange import identity, signing
from exchange.db import db
from exchange.errors import DomainError
from exchange.fields import iso_z


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

    @app.cli.group("keys")
    def keys() -> None:
        """The exchange's Ed25519 signing keys (published at /.well-known/jwks.json)."""

    @keys.command("rotate")
    def rotate() -> None:
        """Make a new active signing key; the previous one is retired but stays published. Prints the new kid."""
        try:
            key = signing.rotate(db.session)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            click.echo(f"error: {exc.detail}", err=True)
            sys.exit(1)
        click.echo(key.kid)

    @keys.command("list")
    def list_keys() -> None:
        """Every exchange key: kid, state, creation and retirement times."""
        for jwk in signing.jwks(db.session)["keys"]:
            key = db.session.get(signing.ExchangeKey, jwk["kid"])
            state = "active" if key.active else f"retired {iso_z(key.retired_at)}"
            click.echo(f"{key.kid}  created {iso_z(key.created_at)}  {state}")
