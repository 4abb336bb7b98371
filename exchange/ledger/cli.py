"""CLI of the ledger: `ledger verify`."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask

from exchange.db import db, write_intent
from exchange.ledger.verify import verify as verify_ledger


def init_app(app: Flask) -> None:
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
