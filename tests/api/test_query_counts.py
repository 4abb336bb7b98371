"""N+1 guard: every list endpoint runs the same number of SQL statements for a page of 1 and of 20.

Counts statements (SQLAlchemy `before_cursor_execute`), never time, so it is stable in CI. The data
is made through the API and the services (the bulk generator for the catalog, certificates,
procurements, contracts, trades and ledger entries; the API for the rest), with more than 20 rows
behind each list so a page of 20 is full.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import event, select

from exchange.db import db, utcnow
from exchange.fields import iso_z
from exchange.identity.models import Organization
from tests.bench.generate import run as generate

PAGE = 20


@pytest.fixture
def world(app, api):
    generate(app, products=260, seed=77, batch=100, echo=lambda _: None)
    op = api.operator()
    vendor = api.vendor()
    with app.app_context():
        vendors = db.session.execute(select(Organization.id).where(Organization.id.startswith("org_gen"),
                                                                   Organization.type == "vendor")
                                     .order_by(Organization.id).limit(PAGE + 1)).scalars().all()
    expires = iso_z(utcnow() + timedelta(days=30))
    fair_ids = []
    for n in range(PAGE + 1):
        r = api.post("fairs", op, json={"name": f"Fair {n}", "venue": "琶洲 Pazhou", "starts_at": iso_z(utcnow()),
                                        "ends_at": expires})
        assert r.status_code == 201, r.get_json()
        fair_ids.append(r.get_json()["id"])
        r = api.post("whitelist", op, json={"category": "transport", "from_region": "GD", "to_region": "HK",
                                            "max_classification": "important", "expires_at": expires})
        assert r.status_code == 201, r.get_json()
        r = api.post(f"organizations/{vendor.org_id}/members", vendor,
                     json={"email": f"m{n}@qc.test", "password": "correct horse battery", "name": f"M {n}",
                           "role": "member"})
        assert r.status_code == 201, r.get_json()
        raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        r = api.post(f"organizations/{vendor.org_id}/keys", vendor,
                     json={"public_key": base64.b64encode(raw).decode(), "label": f"key {n}"})
        assert r.status_code == 201, r.get_json()
    for n, org_id in enumerate(vendors):
        r = api.post(f"fairs/{fair_ids[0]}/stalls", op, json={"org_id": org_id, "code": f"A-{n:02d}",
                                                               "product_ids": []})
        assert r.status_code == 201, r.get_json()
    return {"op": op, "vendor": vendor, "fair": fair_ids[0]}


LISTS = [
    ("products", None), ("fairs", None), ("fairs/{fair}/stalls", None), ("organizations", "op"),
    ("certifications", "op"), ("whitelist", "op"), ("procurements", "op"), ("offers", "op"), ("contracts", "op"),
    ("trades", "op"), ("payments", "op"), ("ledger/accounts", "op"), ("ledger/entries", "op"), ("audit", "op"),
    ("organizations/{vendor_org}/members", "vendor"), ("organizations/{vendor_org}/keys", "vendor"),
]


def _count(app, api, path, actor):
    with app.app_context():
        engine = db.engine
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        r = api.get(path, actor)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert r.status_code == 200, (path, r.get_json())
    return len(statements), r.get_json()


def test_list_endpoints_run_the_same_queries_for_any_page_size(app, api, world):
    grown = []
    for template, who in LISTS:
        path = template.format(fair=world["fair"], vendor_org=world["vendor"].org_id)
        actor = world[who] if who else None
        sep = "&" if "?" in path else "?"
        _count(app, api, f"{path}{sep}per_page=1", actor)  # warm-up (first-use work of any kind)
        one, small = _count(app, api, f"{path}{sep}per_page=1", actor)
        many, page = _count(app, api, f"{path}{sep}per_page={PAGE}", actor)
        assert len(small["items"]) == 1 and len(page["items"]) == PAGE, (path, page["total"])
        if many != one:
            grown.append(f"{path}: {one} statements for 1 item, {many} for {PAGE}")
    assert not grown, "N+1 queries:\n" + "\n".join(grown)
