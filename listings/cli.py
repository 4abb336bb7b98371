"""CLI of the catalog: `flask --app app generate --products N [--seed S]` (benchmark data)."""

from __future__ import annotations

import time

import click
from flask import Flask

from exchange.db import db


def init_app(app: Flask) -> None:
    @app.cli.command("generate")
    @click.option("--products", "count", type=click.IntRange(1, 10_000_000), required=True,
                  help="How many listed synthetic products to insert")
    @click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=1, show_default=True,
                  help="Same seed, same products")
    @click.option("--batch", type=click.IntRange(100, 50_000), default=5000, show_default=True)
    def generate(count: int, seed: int, batch: int) -> None:
        """Insert N synthetic bilingual listed products (deterministic per seed) for benchmarks."""
        from listings.generate import GenerationError, generate_products

        if app.config["DATAFAIR_ENV"] == "production":
            raise click.ClickException("generate refuses to run in production")
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            click.echo(f"  {done:>9,}/{total:,} products  ({rate:,.0f}/s)")

        try:
            summary = generate_products(db.engine, count=count, seed=seed, batch=batch, progress=progress)
        except GenerationError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"generated {summary.products:,} listed products for {summary.vendors} vendors "
                   f"(seed {seed}) in {time.perf_counter() - started:.1f} s")
