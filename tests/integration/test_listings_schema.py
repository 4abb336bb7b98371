"""The hand-written parts of the listings migration exist after `db upgrade` (autogenerate ignores them)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from exchange.db import db


def test_full_text_index_exists(app):
    with app.app_context():
        conn = db.session.connection()
        if conn.dialect.name == "postgresql":
            columns = dict(conn.execute(text(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'product_fts'"
            )).all())
            assert columns == {"product_id": "character varying", "document": "tsvector"}
            indexdef = conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'product_fts' "
                "AND indexname = 'ix_product_fts_document'"
            )).scalar_one()
            assert "USING gin (document)" in indexdef
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
