"""CLI of the exchange's signing keys: `keys rotate`, `keys list`."""

from __future__ import annotations

import sys

import click
from flask import Flask

from exchange.db import db
from exchange.errors import DomainError
from exchange.fields import iso_z
from exchange.signing import services as signing


def init_app(app: Flask) -> None:
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
