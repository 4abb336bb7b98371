"""Kernel CLI: `create-operator`, the `keys` group (the exchange's signing keys) and `ledger verify`."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask

from exchange import identity, signing
from exchange.db import db, write_intent
from exchange.errors import DomainError
from exchange.fields import iso_z
from exchange.ledger.verify import verify as verify_ledger


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

    @app.cli.group("ledger")
    def ledger_group() -> None:
        """The double-entry ledger."""

    @ledger_group.command("verify")
    @click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000),
                  help="Entries read per query")
    @click.option("--quiet", is_flag=True, help="No progress lines")
    def ledger_verify(batch_size: int, quiet: bool) -> None:
        """Recompute the hash chain, every entry's balance and every cached balance; exit 1 if invalid."""
        shown = [0]

        def progress(done: int, total: int) -> None:
            # About every 5% (and at the end): readable on a terminal and in a CI log alike.
            if not quiet and (done == total or done - shown[0] >= max(total // 20, 1)):
                shown[0] = done
                click.echo(f"verified {done}/{total} entries ({100 * done // max(total, 1)}%)", err=True)

        # A read-only transaction: on SQLite one WAL snapshot without holding the write lock.
        token = write_intent.set(False)
        try:
            result = verify_ledger(db.session, batch_size=batch_size, progress=progress)
        finally:
            db.session.rollback()
            write_intent.reset(token)
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        if result["valid"]:
            click.echo(f"ledger valid: {result['entries']} entries, head seq {result['head_seq']}", err=True)
            return
        where = (f"first bad seq {result['first_bad_seq']}" if result["first_bad_seq"] is not None
                 else "cached account balances disagree with their postings")
        click.echo(f"ledger INVALID: {where} ({result['problem_count']} problem(s))", err=True)
        sys.exit(1)
