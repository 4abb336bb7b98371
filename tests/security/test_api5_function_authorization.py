"""OWASP API5:2023 Broken Function Level Authorization: every operator-only function (the rows of the
authorization matrix only operators pass) is refused to every other kind of organization, admins and
plain members alike, and the refusals change nothing; organization-admin functions are refused to
plain members."""

from __future__ import annotations

from tests.security.matrix import OPERATOR_ONLY, call
from tests.world import build_world


def _fingerprint(api, op):
    """What an operator-only function would change: the audit trail, the ledger, organizations, the list."""
    audit = api.get("audit?per_page=1", op).get_json()["total"]
    ledger = api.get("ledger/verify", op).get_json()
    orgs = {o["id"]: o["status"] for o in api.get("organizations?per_page=100", op).get_json()["items"]}
    whitelist = api.get("whitelist?include_expired=true", op).get_json()["total"]
    fairs = api.get("fairs").get_json()["total"]
    return audit, ledger["entries"], ledger["head"], orgs, whitelist, fairs


def test_every_operator_only_function_is_refused_to_everyone_else(api):
    world = build_world(api)
    op = world.actors["operator"]
    rows = {(row.method, row.rule) for row in OPERATOR_ONLY}
    # The matrix's operator-only rows cover at least these functions (a guard against a thinned table).
    assert len(rows) >= 20, sorted(rows)
    callers = {name: actor for name, actor in world.actors.items() if name != "operator"}
    for admin in ("owner", "buyer", "assessor"):
        callers[f"{admin} member"] = api.member(world.actors[admin])
    before = _fingerprint(api, op)
    failures = []
    for row in OPERATOR_ONLY:
        for name, actor in callers.items():
            world.actors["_caller"] = actor
            try:
                r = call(world, row, "_caller")
            finally:
                del world.actors["_caller"]
            expected = 401 if actor is None else 403
            if r.status_code != expected:
                failures.append(f"{row.method} {row.path} as {name}: {r.status_code} {r.get_json()}")
    assert not failures, "\n".join(failures)
    assert _fingerprint(api, op) == before


def test_organization_admin_functions_are_refused_to_plain_members(api):
    vendor = api.vendor()
    member = api.member(vendor)
    from tests.world import new_public_key

    for method, path, body in (
        ("PATCH", f"organizations/{vendor.org_id}", {"display_name": "taken over"}),
        ("POST", f"organizations/{vendor.org_id}/members",
         {"email": "sneaky@vendor.test", "password": "correct horse battery staple", "name": "x", "role": "admin"}),
        ("POST", f"organizations/{vendor.org_id}/keys", {"public_key": new_public_key()}),
    ):
        r = api.request(method, path, member, json=body)
        assert r.status_code == 403, (path, r.get_json())
    key = api.post(f"organizations/{vendor.org_id}/keys", vendor, json={"public_key": new_public_key()}).get_json()
    assert api.delete(f"organizations/{vendor.org_id}/keys/{key['key_id']}", member).status_code == 403
    assert api.get(f"organizations/{vendor.org_id}", vendor).get_json()["display_name"] is None
