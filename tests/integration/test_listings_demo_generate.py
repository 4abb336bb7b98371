"""Demo catalog and the benchmark generator."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Text, func, select, text

from exchange.db import db
from exchange.identity import demo as exchange_demo
from listings import catalog, fairs, search
from listings import demo as listings_demo
from listings.models import Fair, Product, ProductVersion, Stall
from listings.states import FairPhase
from tests.bench.generate import run as generate
from tests.bench.generate.listings import GenerationError, _product, _vendor_rows, generate_products

HAN = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]{3}")


def test_demo_catalog(app):
    with app.app_context():
        orgs = exchange_demo.seed(db.session)
        seeded = listings_demo.seed(db.session, orgs)
        db.session.commit()
        products = seeded["products"]
        assert len(products) >= 12
        assert {p.status for p in products} == {"draft"}, "certification lists them"
        assert len({p.category for p in products}) >= 6
        assert {p.origin_region for p in products} >= {"GD", "HK", "MO"}
        vendors = ("gz_transport", "sz_port", "hk_finance", "mo_tourism", "zh_energy")
        assert {p.owner_org_id for p in products} == {orgs[k].id for k in vendors}
        for version in db.session.execute(select(ProductVersion)).scalars():
            assert HAN.search(version.title) and LATIN.search(version.title), version.title
            assert HAN.search(version.description) and LATIN.search(version.description)
        fair = seeded["fair"]
        assert fair.name == "2026 广州数据交易会 Guangzhou Data Fair 2026"
        assert fairs.fair_phase(fair) == FairPhase.LIVE
        assert (fair.ends_at - fair.starts_at).days == 31
        assert db.session.execute(select(func.count()).select_from(Stall)).scalar_one() == 5
        # Seeding again adds nothing.
        listings_demo.seed(db.session, exchange_demo.seed(db.session))
        db.session.commit()
        assert db.session.execute(select(func.count()).select_from(Product)).scalar_one() == len(products)
        assert db.session.execute(select(func.count()).select_from(Fair)).scalar_one() == 1


def test_seed_demo_command_seeds_the_catalog(app):
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Product)).scalar_one() >= 12


def test_generated_rows_are_deterministic_per_seed():
    vendors = _vendor_rows(3)
    first = [_product(random.Random(3), 3, i, vendors) for i in range(1)]
    rng_a, rng_b, rng_c = random.Random(3), random.Random(3), random.Random(4)
    a = [_product(rng_a, 3, i, vendors) for i in range(50)]
    b = [_product(rng_b, 3, i, vendors) for i in range(50)]
    c = [_product(rng_c, 4, i, _vendor_rows(4)) for i in range(50)]
    assert a == b and a[0] == first[0]
    assert [r["body"] for r in a] != [r["body"] for r in c]
    assert len({r["id"] for r in a}) == 50


def test_generator_inserts_listed_searchable_products(app):
    with app.app_context():
        progress = []
        summary = generate_products(db.engine, count=120, seed=11, batch=50,
                                    progress=lambda done, total: progress.append(done))
        assert (summary.products, summary.vendors) == (120, 40)
        assert progress == [50, 100, 120]
        with pytest.raises(GenerationError):
            generate_products(db.engine, count=1, seed=11)
        generate_products(db.engine, count=5, seed=12)
        listed = db.session.execute(
            select(func.count()).select_from(Product).where(Product.status == "listed")).scalar_one()
        assert listed == 125
        assert catalog.search_catalog(db.session, principal=None, q="数据")["total"] >= 1
        # The bulk path indexes exactly what the API's write path would.
        for product in db.session.execute(select(Product).limit(15)).scalars():
            version = db.session.get(ProductVersion, (product.id, 1))
            expected = search.document(version)
            if db.session.get_bind().dialect.name == "postgresql":
                stored = db.session.execute(text("SELECT search_document::text FROM products WHERE id = :p"),
                                            {"p": product.id}).scalar_one()
                wanted = db.session.execute(select(search.pg_document(
                    expected["title"], expected["keywords"], expected["summary"], expected["description"],
                ).cast(Text))).scalar_one()
                assert stored == wanted
            else:
                row = db.session.execute(text(
                    "SELECT title, summary, description, keywords FROM product_fts WHERE rowid = :r"),
                    {"r": product.search_rowid}).one()
                assert dict(row._mapping) == expected


ROOT = Path(__file__).resolve().parents[2]


def test_generate_command(app, database):
    """`python -m tests.bench.generate` runs on the environment's DATABASE_URL; a seed runs once."""
    env = {**os.environ, "DATABASE_URL": database.url, "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tests.bench.generate", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    result = cli("--products", "30", "--seed", "21", "--batch", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "generated 30 listed products" in result.stdout and "certified 30 products" in result.stdout
    again = cli("--products", "30", "--seed", "21")
    assert again.returncode != 0 and "seed 21" in again.stderr
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Product)).scalar_one() == 30


def test_generator_refuses_to_run_in_production(app):
    app.config["DATAFAIR_ENV"] = "production"
    with pytest.raises(GenerationError, match="production"):
        generate(app, products=5, seed=1, echo=lambda _: None)
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Product)).scalar_one() == 0


def test_the_app_has_no_generate_command(app):
    """Benchmark tooling is not part of the product: `flask --app app generate` is gone."""
    result = app.test_cli_runner().invoke(args=["generate", "--products", "5"])
    assert result.exit_code == 2 and "No such command" in result.output


def test_demo_stalls_show_products_once_listed(app):
    from exchange.identity.models import User
    from exchange.principal import Principal
    from listings import services

    with app.app_context():
        orgs = exchange_demo.seed(db.session)
        seeded = listings_demo.seed(db.session, orgs)
        product = seeded["products"][0]
        owner = db.session.execute(select(User).where(User.org_id == product.owner_org_id)).scalars().first()
        revision = services.submit_for_review(db.session, product_id=product.id, actor=Principal.of(owner))
        services.mark_listed(db.session, product_id=product.id, version=revision.version,
                             certificate_number="DFX-2026-000001")
        listings_demo.show_listed_products(db.session)
        db.session.commit()
        stats = fairs.fair_stats(db.session, seeded["fair"])
        assert stats["stalls"] == 5 and stats["products_on_show"] == 1
        hits = catalog.search_catalog(db.session, principal=None, q="交通")["items"]
        assert [p.id for p, _, _ in hits] == [product.id]
