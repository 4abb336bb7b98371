"""`python -m tests.bench.generate --products N [--seed S] [--batch B]` on the environment's DATABASE_URL."""

from __future__ import annotations

import click


@click.command()
@click.option("--products", "count", type=click.IntRange(1, 10_000_000), required=True,
              help="How many listed synthetic products to insert")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=1, show_default=True,
              help="Same seed, same products")
@click.option("--batch", type=click.IntRange(100, 50_000), default=5000, show_default=True)
def main(count: int, seed: int, batch: int) -> None:
    """Insert N synthetic bilingual listed products (deterministic per seed), their certificates,
    procurements and trades, for benchmarks."""
    from app import create_app
    from tests.bench.generate import GenerationError, run

    # The app the `flask --app app` commands get: configured from the environment (DATABASE_URL, ...).
    app = create_app()
    try:
        run(app, products=count, seed=seed, batch=batch, echo=click.echo)
    except GenerationError as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
