"""OWASP API1:2023 Broken Object Level Authorization: a sweep over every id parameter.

For each id a request can carry — in the path of every operation, in a query, in a body — an object
of another organization that the caller may not see must be answered exactly as an id that does not
exist (same status, type, title, detail): never 2xx, never a 403 that confirms it exists.
"""

from __future__ import annotations

from typing import Any

import pytest

from exchange.db import new_id
from tests.security.matrix import ROWS, send
from tests.world import operations

# path parameter -> an object private to the owner/buyer (invisible to the attackers below)
PRIVATE = {
    "org_id": "pending_org", "product_id": "draft", "certification_id": "cert_review", "objection_id": "objection",
    "procurement_id": "procurement_invited", "offer_id": "offer", "contract_id": "contract",
    "trade_id": "trade_read", "payment_id": "payment", "key_id": "key",
    "entitlement_id": "entitlement", "release_id": "release_draft",
}
PREFIXES = {"org_id": "org", "product_id": "prd", "certification_id": "crt", "objection_id": "obj",
            "procurement_id": "prc", "offer_id": "ofr", "contract_id": "ctr", "trade_id": "trd",
            "payment_id": "pay", "key_id": "key", "entitlement_id": "ent", "release_id": "rel"}
ATTACKERS = ("anonymous", "vendor2", "enterprise2", "assessor2")
# objects an attacker above may see by right (the objection's author is enterprise2)
ENTITLED = {"objection": {"enterprise2"}}


# One populated exchange for the whole module: these tests only add objects of their own.
@pytest.fixture
def world(shared_world):
    return shared_world


@pytest.fixture
def api(shared_world):
    return shared_world.api


def _shape(r: Any) -> tuple[Any, ...]:
    body = r.get_json(silent=True) or {}
    return r.status_code, body.get("type"), body.get("title"), body.get("detail"), body.get("errors")


def _body(world, method: str, rule: str, principal: str) -> Any:
    row = next((row for row in ROWS if row.method == method and row.rule == rule and row.body is not None), None)
    if row is not None:
        return row.body_for(world, principal)
    return {} if method in ("POST", "PATCH", "PUT") else None


def test_every_path_id_of_another_organization_looks_like_an_unknown_id(api, world):
    spec = api.get("/api/v1/openapi.json").get_json()
    swept, failures = 0, []
    for method, path, _op in operations(spec):
        names = [n for n in PRIVATE if f"{{{n}}}" in path]
        if not names:
            continue
        real = path
        fake = path
        for name in names:
            real = real.replace(f"{{{name}}}", world.ids[PRIVATE[name]])
            fake = fake.replace(f"{{{name}}}", new_id(PREFIXES[name]))
        real, fake = world.path(real), world.path(fake)
        for attacker in ATTACKERS:
            if any(attacker in ENTITLED.get(PRIVATE[n], ()) for n in names):
                continue
            actor = world.actors[attacker]
            body = _body(world, method, path, attacker)
            seen = send(world, method, real, actor, body)
            unknown = send(world, method, fake, actor, body)
            swept += 1
            if seen.status_code < 300 or _shape(seen) != _shape(unknown):
                failures.append(f"{method} {path} as {attacker}: {_shape(seen)} vs unknown {_shape(unknown)}")
    assert swept >= 4 * 40, swept
    assert not failures, "\n".join(failures)


def test_ids_in_queries_and_bodies_reveal_nothing_either(api, world):
    ids = world.ids
    vendor2, ent2, owner = world.actors["vendor2"], world.actors["enterprise2"], world.actors["owner"]
    price_terms = {"price": {"amount": 1_000, "currency": "CNY"},
                   "terms": {"scope": "commercial", "duration_days": 30, "delivery_mode": "api"}}
    cases = [
        # (actor, method, path, body with the private id, the same body with an unknown id)
        (ent2, "GET", f"ledger/entries?trade_id={ids['trade_read']}", None,
         ("GET", f"ledger/entries?trade_id={new_id('trd')}")),
        (ent2, "GET", f"payments?trade_id={ids['trade_read']}", None,
         ("GET", f"payments?trade_id={new_id('trd')}")),
        (vendor2, "GET", f"payments?trade_id={ids['trade_read']}&status=succeeded", None,
         ("GET", f"payments?trade_id={new_id('trd')}&status=succeeded")),
        (ent2, "POST", "offers", {"product_id": ids["draft"], **price_terms}, {"product_id": new_id("prd")}),
        (ent2, "POST", "offers", {"product_id": ids["product"], "procurement_id": ids["procurement_invited"],
                                  **price_terms}, {"procurement_id": new_id("prc")}),
        (owner, "POST", "offers", {"product_id": ids["product"], "to_org_id": ids["pending_org"], **price_terms},
         {"to_org_id": new_id("org")}),
        (vendor2, "POST", "certifications", {"product_id": ids["draft"], "documents": []},
         {"product_id": new_id("prd")}),
        (world.actors["buyer"], "POST", "procurements",
         {"title": "t", "description": "d", "category": "transport", "budget": {"max_amount": 1, "currency": "CNY"},
          "deadline": "2099-01-01T00:00:00Z", "visibility": "invited", "invited_org_ids": [ids["pending_org"]]},
         {"invited_org_ids": [new_id("org")]}),
    ]
    for actor, method, path, body, unknown in cases:
        seen = api.request(method, path, actor, json=body)
        if isinstance(unknown, tuple):
            other = api.request(unknown[0], unknown[1], actor)
        else:
            other = api.request(method, path, actor, json={**body, **unknown})
        assert seen.status_code >= 400 and _shape(seen) == _shape(other), (path, _shape(seen), _shape(other))
    # Filters by another organization's id show nothing of it.
    accounts = api.get(f"ledger/accounts?owner_id={ids['owner_org']}", ent2).get_json()
    assert accounts["items"] == [] and accounts["total"] == 0
    payout = api.post("payouts", world.actors["operator"], json={"org_id": ids["owner_org"], "currency": "CNY",
                                                                "amount": 1})
    assert payout.status_code == 201, payout.get_json()
    assert [p["id"] for p in api.get("payouts", owner).get_json()["items"]] == [payout.get_json()["id"]]
    payouts = api.get(f"payouts?org_id={ids['owner_org']}", vendor2).get_json()
    assert payouts["items"] == [] and payouts["total"] == 0
    assert api.get("disputes", ent2).get_json()["total"] == 0 and api.get("payments", ent2).get_json()["total"] == 0
    mine = api.get(f"products?mine=true&vendor_id={ids['owner_org']}", vendor2).get_json()
    assert all(p["owner_org_id"] == vendor2.org_id for p in mine["items"])


def test_another_organizations_signing_key_is_an_unknown_key(api):
    from tests.tradeflow import contract_for

    vendor, buyer = api.vendor(), api.enterprise()
    from tests.world import new_public_key

    key = api.post(f"organizations/{vendor.org_id}/keys", vendor, json={"public_key": new_public_key()}).get_json()
    contract = contract_for(api, vendor, buyer)
    signature = "A" * 86 + "=="
    seen = api.post(f"contracts/{contract['id']}/signatures", buyer,
                    json={"key_id": key["key_id"], "signature": signature})
    unknown = api.post(f"contracts/{contract['id']}/signatures", buyer,
                       json={"key_id": new_id("key"), "signature": signature})
    assert seen.status_code == 422 and _shape(seen) == _shape(unknown)
    assert api.get(f"contracts/{contract['id']}", buyer).get_json()["signatures"] == []
