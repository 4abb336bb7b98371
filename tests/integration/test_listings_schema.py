"""The hand-written parts of the listings migration exist after `db upgrade` (autogenerate ignores them)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from exchange.db import db


def test_full_text_index_exists(app):
    with app.app_context():
        conn = db.session.connection()
        if conn.dialect.name == "postgresql":
            data_type = conn.execute(text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'products' AND column_name = 'search_document'"
            )).scalar_one()
            assert data_type == "tsvector"
            indexdef = conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'products' "
                "AND indexname = 'ix_products_search_document'"
            )).scalar_one()
            assert "USING gin (search_document)" in indexdef
        else:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'product_fts'")).scalar_one()
            assert "USING fts5" in sql and "product_id UNINDEXED" in sql
            conn.execute(text("SELECT count(*) FROM product_fts WHERE product_fts MATCH '\"x\"'")).scalar_one()


def test_check_constraints_guard_states(app):
    with app.app_context():
        names = {c["name"] for c in inspect(db.engine).get_check_constraints("products")}
        assert {"ck_products_status", "ck_products_listed_has_version", "ck_products_price_amount"} <= names
        versions = {c["name"] for c in inspect(db.engine).get_check_constraints("product_versions")}
        assert "ck_product_versions_status" in versions
