"""OWASP API3:2023 Broken Object Property Level Authorization.

Mass assignment: every writable schema of the OpenAPI document, and every object nested in it,
refuses the properties a client must never set (status, owner, amounts and fees it does not own,
ids, timestamps, versions...) with 422 naming the property — and nothing is written.
Excessive exposure: responses carry private properties only for those allowed (the sentinels of the
authorization matrix prove it for values; here, for property names of the shared objects).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from exchange.db import db
from listings.models import Product
from tests.certflow import product_body
from tests.openapi_walk import body_schema, key, nest, objects
from tests.security.matrix import body_caller
from tests.tradeflow import terms
from tests.world import build_world, operations
from trading.models import Offer

# property -> a value an attacker would like the server to take
FORBIDDEN: dict[str, Any] = {
    "id": "prd_attacker", "status": "listed", "owner": "org_attacker", "owner_org_id": "org_attacker",
    "org_id": "org_attacker", "buyer_org_id": "org_attacker", "seller_org_id": "org_attacker",
    "from_org_id": "org_attacker", "amount": 1, "fee": 0, "fee_bps": 0, "paid_amount": 10**9,
    "refunded_amount": 0, "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z",
    "version": 99, "certificate_number": "DFX-2026-999999", "approvals": ["usr_attacker"], "role": "admin",
    "is_operator": True, "verified": True, "trade_id": "trd_attacker", "digest": "0" * 64,
    "signed_at": "2020-01-01T00:00:00Z", "balance": 10**9, "stripe_account_id": "acct_ATTACKER",
    "type": "operator", "region": "HK",
}


def test_no_writable_schema_accepts_a_property_it_does_not_declare(api):
    world = build_world(api)
    spec = api.get("/api/v1/openapi.json").get_json()
    checked, failures = 0, []
    for method, path, op in operations(spec):
        schema = body_schema(op)
        if schema is None:
            continue
        actor, target = body_caller(world, method, path)
        for prefix, declared in objects(spec, schema):
            for prop, value in FORBIDDEN.items():
                if prop in declared:
                    continue
                r = api.request(method, target, actor, json=nest(prefix, {prop: value}))
                field = key(prefix, prop)
                errors = (r.get_json() or {}).get("errors") or {}
                checked += 1
                if r.status_code != 422 or field not in errors:
                    failures.append(f"{method} {path} with {field}: {r.status_code} {errors}")
    assert checked > 500, checked
    assert not failures, "\n".join(failures[:50])


def test_a_valid_body_with_one_smuggled_property_writes_nothing(api, app):
    vendor, buyer = api.vendor(), api.enterprise()
    from tests.certflow import certify

    product = certify(api, vendor)
    with app.app_context():
        products_before = db.session.scalar(select(func.count()).select_from(Product))
        offers_before = db.session.scalar(select(func.count()).select_from(Offer))
    for smuggled in ({"status": "listed"}, {"owner_org_id": buyer.org_id}, {"id": "prd_mine"},
                     {"certificate_number": "DFX-2026-000001"}):
        r = api.post("products", vendor, json={**product_body(), **smuggled})
        assert r.status_code == 422 and set(smuggled) <= set(r.get_json()["errors"]), r.get_json()
    offer = {"product_id": product["id"], "price": {"amount": 1_000, "currency": "CNY"}, "terms": terms(product)}
    for smuggled in ({"fee": 0}, {"seller_org_id": buyer.org_id}, {"status": "accepted"}, {"amount": 1}):
        r = api.post("offers", buyer, json={**offer, **smuggled})
        assert r.status_code == 422, r.get_json()
    r = api.post("offers", buyer, json={**offer, "price": {**offer["price"], "fee": 0}})
    assert r.status_code == 422 and "price.fee" in r.get_json()["errors"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Product)) == products_before
        assert db.session.scalar(select(func.count()).select_from(Offer)) == offers_before


def test_operator_only_properties_are_403_for_an_org_admin_and_private_ones_hidden_from_others(api):
    vendor, other, op = api.vendor(), api.enterprise(), api.operator()
    for prop in ("status", "type", "region", "stripe_account_id"):
        value = {"status": "suspended", "type": "enterprise", "region": "HK", "stripe_account_id": "acct_ME1"}[prop]
        r = api.patch(f"organizations/{vendor.org_id}", vendor, json={prop: value})
        assert r.status_code == 403, (prop, r.get_json())
    private = {"contact_email", "stripe_account_id", "status_reason", "status_changed_at"}
    assert private <= set(api.get(f"organizations/{vendor.org_id}", vendor).get_json())
    assert private <= set(api.get(f"organizations/{vendor.org_id}", op).get_json())
    for viewer in (other, None):
        assert not private & set(api.get(f"organizations/{vendor.org_id}", viewer).get_json())
    product = create = api.post("products", vendor, json=product_body()).get_json()
    assert "latest_version" in create
    api.app.config["NOTICE_DAYS"] = 0
    from tests.factories import list_product

    list_product(api, vendor, product["id"])
    assert "latest_version" not in api.get(f"products/{product['id']}", other).get_json()
    assert "latest_version" not in api.get(f"products/{product['id']}").get_json()
