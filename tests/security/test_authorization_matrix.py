"""The authorization matrix (tests.security.matrix.ROWS): every route of the app x every principal.

Each answer must be the expected status, documented for that operation in the OpenAPI document,
problem+json when it is an error, and free of any private value (tests.world sentinels) the
principal may not see. A route in the app's URL map without a row fails.
"""

from __future__ import annotations

import re

from exchange.errors import PROBLEM_JSON
from tests.deliveryflow import CSV, entitlement_of, fetch, link, pay, release, signed_trade
from tests.security.matrix import ROWS, call, outside_api
from tests.world import PRINCIPALS, build_world

SAFE = {"HEAD", "OPTIONS"}


def openapi_path(flask_rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", flask_rule)


def app_routes(app) -> set[tuple[str, str]]:
    """The API's routes: not the document's, nor the gateway's data plane (a `dfk_` key is its only
    credential, so no principal of the matrix is one of its callers; tests/api/test_gateway.py)."""
    return {(method, openapi_path(rule.rule)) for rule in app.url_map.iter_rules()
            if not outside_api(rule) for method in rule.methods - SAFE}


def test_every_route_of_the_app_has_a_row(app):
    covered = {(row.method, row.rule) for row in ROWS}
    missing = sorted(app_routes(app) - covered)
    assert not missing, f"routes without a row in the authorization matrix: {missing}"
    stale = sorted(covered - app_routes(app))
    assert not stale, f"rows for routes the app does not have: {stale}"


def test_authorization_matrix(api):
    world = build_world(api)
    spec = api.get("/api/v1/openapi.json").get_json()
    failures: list[str] = []
    for row in ROWS:
        documented = spec["paths"][row.rule][row.method.lower()]["responses"]
        for principal in PRINCIPALS:
            r = call(world, row, principal)
            label = f"{row.method} {row.path} as {principal}"
            want = row.expect[principal]
            text = r.get_data(as_text=True)
            if r.status_code != want:
                failures.append(f"{label}: {r.status_code}, expected {want}: {text[:200]}")
            if str(r.status_code) not in documented:
                failures.append(f"{label}: {r.status_code} is not documented ({sorted(documented)})")
            if r.status_code >= 400 and r.mimetype != PROBLEM_JSON:
                failures.append(f"{label}: error answered as {r.mimetype}")
            leaked = [s for s, allowed in world.secrets.items() if principal not in allowed and s in text]
            if leaked:
                failures.append(f"{label}: leaks {leaked}")
    assert not failures, f"{len(failures)} matrix failures:\n" + "\n".join(failures)


def test_plain_members_of_the_buying_organization_get_links_and_the_sellers_do_not(api):
    """The matrix's `buyer` is an organization admin: a plain member of the buying organization gets a
    link too (the right is the organization's), a plain member of the seller does not."""
    vendor, buyer = api.vendor(), api.enterprise()
    trade = pay(api, buyer, signed_trade(api, vendor, buyer)["id"])
    ent = entitlement_of(api, buyer, trade["id"])
    rel = release(api, vendor, trade["product_id"])
    got = link(api, api.member(buyer), ent["id"], rel["id"])
    assert fetch(api, got["url"]).data == CSV
    r = api.post(f"entitlements/{ent['id']}/downloads", api.member(vendor),
                 json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and r.mimetype == PROBLEM_JSON, r.get_json()


def test_only_admins_of_the_buying_organization_manage_its_api_keys(api):
    """The matrix's `buyer` is an organization admin: a plain member of the buying organization sees
    the keys (the organization's) but neither creates nor revokes one; the key it could not revoke
    still shows as live."""
    vendor, buyer = api.vendor(), api.enterprise()
    trade = pay(api, buyer, signed_trade(api, vendor, buyer, delivery_mode="api")["id"])
    ent = entitlement_of(api, buyer, trade["id"])
    key = api.post(f"entitlements/{ent['id']}/api-keys", buyer, json={"label": "admin's"}).get_json()
    member = api.member(buyer)
    r = api.post(f"entitlements/{ent['id']}/api-keys", member, json={"label": "member's"})
    assert r.status_code == 403 and r.mimetype == PROBLEM_JSON, r.get_json()
    r = api.delete(f"entitlements/{ent['id']}/api-keys/{key['id']}", member)
    assert r.status_code == 403 and r.mimetype == PROBLEM_JSON, r.get_json()
    listed = api.get(f"entitlements/{ent['id']}/api-keys", member)
    assert listed.status_code == 200, listed.get_json()
    assert [(k["id"], k["revoked_at"]) for k in listed.get_json()["items"]] == [(key["id"], None)]
