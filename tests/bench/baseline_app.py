"""Same-run baselines, served by gunicorn with the same settings as datafair (`tests.bench.baseline_app:app`).

- B_json: `GET /json` — bare Flask returning a small JSON object.
- B_db: `GET /products/<id>` — bare Flask and one SQLAlchemy Core primary-key select of a product
  row (every column but the search document) on the same engine options and pool as the API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, abort
from sqlalchemy import bindparam, select

from exchange.db import db, engine_options, normalize_database_url
from listings.models import Product

ROOT = str(Path(__file__).resolve().parents[2])

app = Flask(__name__)
_uri = normalize_database_url(os.environ["DATABASE_URL"], ROOT)
app.config.update(SQLALCHEMY_DATABASE_URI=_uri, SQLALCHEMY_ENGINE_OPTIONS=engine_options(_uri))
db.init_app(app)
_products = Product.__table__
_by_id = select(*(c for c in _products.c if c.name != "search_document")).where(
    _products.c.id == bindparam("id"))


@app.get("/json")
def small_json() -> Any:
    return {"status": "ok", "database": "not checked"}


@app.get("/products/<product_id>")
def product(product_id: str) -> Any:
    with db.engine.connect() as conn:
        row = conn.execute(_by_id, {"id": product_id}).mappings().first()
    if row is None:
        abort(404)
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
