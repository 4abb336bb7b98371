"""CLI of the catalog: `flask --app app generate --products N [--seed S]` (benchmark data)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import click
from flask import Flask
from sqlalchemy.engine import Engine

from exchange.db import db

# A later step of `generate`, added by the composition root (e.g. certification's certificates):
# called with the engine and a progress printer once the products are in.
GenerateStep = Callable[[Engine, Callable[[str, int, int], None]], str]


def init_app(app: Flask, *, then: Sequence[GenerateStep] = ()) -> None:
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
        for step in then:
            step_started = time.perf_counter()

            def step_progress(what: str, done: int, total: int, _t: float = step_started) -> None:
                rate = done / max(time.perf_counter() - _t, 1e-9)
                click.echo(f"  {done:>9,}/{total:,} {what}  ({rate:,.0f}/s)")

            click.echo(f"{step(db.engine, step_progress)} in {time.perf_counter() - step_started:.1f} s")
